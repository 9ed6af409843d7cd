"""report.html: escaping and colours in the markup, and the page as headless Chromium renders it."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from latent_env.bench.highlight import highlight_python
from latent_env.bench.report import gain_colour, render_report, token_span
from latent_env.bench.stats import summarize_policy
from latent_env.cli import main
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)
from tests.test_bench import bench_args

ROOT = Path(__file__).resolve().parents[1]
HANDMADE = ROOT / "tests" / "fixtures" / "handmade.jsonl"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
EVIL = '</pre><script>alert("x")</script><img src=x onerror=alert(1)>'


class TagCollector(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse_tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    collector = TagCollector()
    collector.feed(html)
    return collector.tags


def token_spans(html: str) -> list[dict[str, str | None]]:
    return [a for tag, a in parse_tags(html) if tag == "span" and a.get("class") == "tok"]


def evil_results() -> dict:
    record = {
        "policy": "hf:evil",
        "episode": 0,
        "task_id": 'id"><b>',
        "family": "<i>fam</i>",
        "context": EVIL,
        "continuation": " 16",
        "answer": "16",
        "action": EVIL,
        "latent": f"<python>{EVIL}</python><output>{EVIL}</output>",
        "tools": [
            {
                "tag": "python",
                "text": f"print('{EVIL}')",
                "status": "error",
                "output": EVIL,
                "error": EVIL,
                "meta": {},
            }
        ],
        "reward": 0.5,
        "gain": 0.5,
        "answer_hit": False,
        "answer_hit_without_latent": False,
        "tool_calls": 1,
        "tool_errors": 1,
        "latent_tokens": 30,
        "logp_with_latent": -1.0,
        "logp_without_latent": -1.5,
        "tokens": [" <script>", "16"],
        "token_gains": [1.5, -0.25],
    }
    summary = summarize_policy("hf:evil", [record], seed=0, wall_s=1.0, error=None)
    return {
        "policies": {"hf:evil": summary},
        "config": {"command": f"latent-env bench --policy '{EVIL}'"},
        "episodes": [record],
    }


def test_untrusted_text_is_escaped_everywhere():
    page = render_report(evil_results(), {})
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    tags = {tag for tag, _ in parse_tags(page)}
    assert "script" not in tags and "img" not in tags and "b" not in tags and "i" not in tags
    spans = token_spans(page)
    assert [s["data-gain"] for s in spans if s["title"].endswith("nats")][-2:] == [
        "1.500000",
        "-0.250000",
    ]


def test_token_colours_follow_the_sign_and_size_of_the_gain():
    assert gain_colour(0.5).startswith("rgba(22, 163, 74,")
    assert gain_colour(-0.5).startswith("rgba(220, 38, 38,")
    weak, strong = gain_colour(0.1), gain_colour(5.0)
    assert float(weak.rsplit(",", 1)[1][:-1]) < float(strong.rsplit(",", 1)[1][:-1]) == 0.9
    assert gain_colour(0.0) != gain_colour(0.01)
    span = token_span(' "x"', -1.0)
    assert 'data-gain="-1.000000"' in span and 'title="-1.0000 nats"' in span
    assert "&quot;x&quot;" in span


def test_highlighter_marks_python_and_escapes_it():
    html = highlight_python("def f(x):\n    return x < 2  # '<b>'\nprint(\"</pre>\", 3.5)")
    assert '<span class="py-keyword">def</span>' in html
    assert '<span class="py-defname">f</span>' in html
    assert '<span class="py-comment"># &#x27;&lt;b&gt;&#x27;</span>' in html
    assert '<span class="py-string">&quot;&lt;/pre&gt;&quot;</span>' in html
    assert '<span class="py-number">3.5</span>' in html
    assert '<span class="py-builtin">print</span>' in html
    assert "</pre>" not in html and "<b>" not in html


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    args = bench_args(out, "none", "oracle", "random")
    assert main(args) == 0
    return out


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_report_in_headless_chromium(report_dir, tmp_path):
    results = json.loads((report_dir / "results.json").read_text())
    url = (report_dir / "report.html").resolve().as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    spans = token_spans(dom.stdout)
    n_tokens = sum(len(r["tokens"]) for r in results["episodes"])
    legend = 5
    assert len(spans) == n_tokens + legend
    for span in spans:
        assert "background-color: rgba(" in span["style"]
        gain = float(span["data-gain"])
        colour = span["style"]
        if gain > 0:
            assert "rgba(22, 163, 74" in colour
        elif gain < 0:
            assert "rgba(220, 38, 38" in colour
    oracle_gains = [
        g for r in results["episodes"] if r["policy"] == "oracle" for g in r["token_gains"]
    ]
    assert any(g != 0 for g in oracle_gains)
    tags = parse_tags(dom.stdout)
    assert not any(tag == "script" for tag, _ in tags)
    images = [a for tag, a in tags if tag == "img"]
    assert len(images) == 2 and all(a["src"].startswith("data:image/png;base64,") for a in images)

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    done = chromium(
        f"--screenshot={shot}", "--window-size=1280,2000", url, profile=tmp_path / "profile-shot"
    )
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # a rendered page, not a blank one
