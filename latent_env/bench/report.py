"""``report.html``: one self-contained page (inline CSS, PNGs inlined as base64, no JavaScript).

The page holds the summary tables, the choice of latent kind per policy and family, the plots,
and per policy a list of episodes: the context, each tool block (Python highlighted) with its
output, and the continuation with every token coloured by its log-prob gain — green where the
latent helped, red where it hurt, stronger for larger magnitudes — as
``<span class="tok" data-gain="…" title="…">``.

Latents, tool outputs and task texts are untrusted (model output, user files): every string is
HTML-escaped on the way in, attributes included.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from latent_env.bench.choice import CHOICE_NOTE, choice_rows
from latent_env.bench.highlight import HIGHLIGHT_CSS, highlight_python
from latent_env.bench.table import (
    PAIRED_COLUMNS,
    SUMMARY_COLUMNS,
    failures,
    family_rows,
    fmt_num,
    paired_rows,
    summary_rows,
)

GAIN_SCALE = 2.0  # nats at which a token's colour is at full strength
MAX_EPISODES_SHOWN = 300  # per policy; the rest are in results.json
POSITIVE_RGB = (22, 163, 74)
NEGATIVE_RGB = (220, 38, 38)
NEUTRAL = "rgba(128, 128, 128, 0.14)"

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; color: #1f2328; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; white-space: normal; word-break: break-all;
                                 max-width: 320px; }
th { background: #f6f8fa; }
table.families th { white-space: normal; overflow-wrap: anywhere; max-width: 240px; }
table.choice th, table.choice td { padding: 3px 6px; }
table.choice th { white-space: normal; }
table.choice td:first-child { min-width: 140px; word-break: normal; overflow-wrap: anywhere; }
table.choice th:nth-child(2), table.choice td:nth-child(2) { text-align: left; }
tr.failed td { color: #b42318; }
ul.errors { color: #b42318; } ul.errors li { word-break: break-word; }
.config { color: #57606a; font-family: ui-monospace, monospace; font-size: 12px; }
img.plot { max-width: 100%; border: 1px solid #eee; margin: 8px 0; }
article.episode { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px;
                  margin: 10px 0; }
article.episode header { font-weight: 600; display: flex; gap: 12px; flex-wrap: wrap; }
.gain.pos { color: #15803d; } .gain.neg { color: #b91c1c; } .gain.zero { color: #57606a; }
.label { color: #57606a; font-size: 12px; margin-top: 6px; }
pre { background: #f6f8fa; padding: 6px 8px; border-radius: 4px; margin: 2px 0;
      white-space: pre-wrap; word-break: break-word; max-height: 320px; overflow: auto; }
pre.out { background: #eef6ee; } pre.out.bad { background: #fdeeee; }
p.tokens { font-family: ui-monospace, monospace; white-space: pre-wrap; margin: 4px 0; }
span.tok { border-radius: 3px; padding: 1px 0; border-right: 1px solid rgba(255, 255, 255, 0.9); }
.empty { color: #8c959f; font-style: italic; margin: 4px 0; }
.legend span.tok { padding: 1px 6px; }
""" + HIGHLIGHT_CSS


def gain_colour(gain: float) -> str:
    """Background colour of a token with this gain: green/red, alpha by magnitude."""
    if gain == 0.0:
        return NEUTRAL
    strength = min(1.0, abs(gain) / GAIN_SCALE)
    r, g, b = POSITIVE_RGB if gain > 0 else NEGATIVE_RGB
    return f"rgba({r}, {g}, {b}, {0.12 + 0.78 * strength:.3f})"


def token_span(text: str, gain: float) -> str:
    """One continuation token as a coloured span carrying its gain."""
    strong = abs(gain) >= 0.75 * GAIN_SCALE  # white text stays readable on the darkest colours
    style = f"background-color: {gain_colour(gain)}" + ("; color: #fff" if strong else "")
    return (
        f'<span class="tok" data-gain="{gain:.6f}" title="{escape(f"{gain:+.4f} nats")}" '
        f'style="{style}">{escape(text)}</span>'
    )


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], failed_col: int = -1, css: str = ""
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = []
    for row in rows:
        failed = failed_col >= 0 and row[failed_col] != "ok"
        cells = [f"<td>{escape(c)}</td>" for c in row]
        row_class = ' class="failed"' if failed else ""
        body.append(f"<tr{row_class}>{''.join(cells)}</tr>")
    return (f'<table class="{css}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _tool_call(call: Mapping[str, Any]) -> str:
    tag, status = str(call.get("tag", "")), str(call.get("status", ""))
    code = str(call.get("text", ""))
    body = highlight_python(code) if tag == "python" else escape(code)
    bad = "" if status == "ok" else " bad"
    return (
        f'<div class="call"><div class="label">&lt;{escape(tag)}&gt; · {escape(status)}</div>'
        f'<pre class="code">{body}</pre>'
        f'<pre class="out{bad}">{escape(str(call.get("output", "")))}</pre></div>'
    )


def _latent(record: Mapping[str, Any]) -> str:
    latent = record["latent"]
    calls = "".join(_tool_call(call) for call in record["tools"])
    if not latent and not calls:
        return '<p class="empty">empty latent (no latent data)</p>'
    scored = (
        f'<details><summary class="label">latent as scored ({record["latent_tokens"]} tokens)'
        f"</summary><pre>{escape(latent)}</pre></details>"
    )
    return calls + scored


def _answer_mark(hit: bool | None) -> str:
    return {True: "answer ✓", False: "answer ✗", None: "no answer"}[hit]


def episode_html(record: Mapping[str, Any]) -> str:
    """One episode: header, context, tool calls, coloured continuation."""
    gain = record["gain"]
    sign = "pos" if gain > 0 else "neg" if gain < 0 else "zero"
    tokens = "".join(token_span(t, g) for t, g in zip(record["tokens"], record["token_gains"]))
    return (
        '<article class="episode"><header>'
        f'<span class="id">{escape(record["task_id"])}</span>'
        f'<span class="fam">{escape(record["family"])}</span>'
        f'<span class="gain {sign}">{escape(fmt_num(gain))} nats</span>'
        f"<span>{_answer_mark(record['answer_hit'])}</span></header>"
        f'<div class="label">context</div><pre class="context">{escape(record["context"])}</pre>'
        f'<div class="label">latent data</div>{_latent(record)}'
        '<div class="label">continuation, each token coloured by its log-prob gain</div>'
        f'<p class="tokens">{tokens}</p></article>'
    )


def _policy_section(spec: str, summary: Mapping[str, Any], records: list[dict]) -> str:
    shown = records[:MAX_EPISODES_SHOWN]
    more = len(records) - len(shown)
    error = (f'<ul class="errors"><li>failed: {escape(summary["error"] or "")}</li></ul>'
             if summary["failed"] else "")
    note = f'<p class="empty">{more} more episodes in results.json</p>' if more > 0 else ""
    episodes = "".join(episode_html(r) for r in shown)
    return (
        f"<section><h2>Episodes: {escape(spec)}</h2>{error}"
        f"<details open><summary>{len(records)} episodes</summary>{episodes}{note}</details>"
        "</section>"
    )


def _failure_list(policies: Mapping[str, Any]) -> str:
    items = "".join(
        f"<li><b>{escape(spec)}</b>: {escape(error)}</li>" for spec, error in failures(policies)
    )
    return f'<ul class="errors">{items}</ul>' if items else ""


def _legend() -> str:
    samples = [-GAIN_SCALE, -0.5, 0.0, 0.5, GAIN_SCALE]
    spans = " ".join(token_span(f"{g:+.1f}", g) for g in samples)
    return f'<p class="legend">token colours (nats): {spans}</p>'


def _paired_section(paired: Mapping[str, Any] | None) -> str:
    if not paired or not paired.get("against"):
        return ""
    return (f"<h2>Paired against {escape(paired['baseline'])}</h2>"
            "<p>Each task counted once: gain difference with its own interval, answers the "
            "policy fixed or broke against the baseline.</p>"
            + _table(PAIRED_COLUMNS, paired_rows(paired["against"])))


def _choice_section(choice: Mapping[str, Any] | None) -> str:
    """The choice of latent kind per policy × family; nothing for older results without it."""
    if not choice:
        return ""
    header, rows = choice_rows(choice)
    return ('<h2 id="choice">Choice of latent kind</h2>'
            f"<p>{escape(CHOICE_NOTE)}.</p>" + _table(header, rows, css="choice"))


def render_report(results: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """The whole page as a string; ``images`` maps plot names to PNG bytes."""
    policies = results["policies"]
    config = results["config"]
    header, rows = family_rows(policies)
    plots = "".join(
        f'<img class="plot" alt="{escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        for name, png in images.items()
    )
    by_policy: dict[str, list[dict]] = {spec: [] for spec in policies}
    for record in results["episodes"]:
        by_policy.setdefault(record["policy"], []).append(record)
    sections = "".join(_policy_section(s, policies[s], by_policy[s]) for s in policies)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>latent-env bench</title><style>{CSS}</style></head><body>"
        "<h1>latent-env bench</h1>"
        f'<p class="config">{escape(config.get("command", ""))}</p>'
        "<h2>Policies</h2>" + _table(SUMMARY_COLUMNS, summary_rows(policies), failed_col=8)
        + _failure_list(policies) + _paired_section(results.get("paired"))
        + "<h2>Mean gain per family</h2>" + _table(header, rows, css="families")
        + _choice_section(results.get("choice"))
        + f"<h2>Plots</h2>{plots}" + _legend() + sections + "</body></html>"
    )


def write_report(results: Mapping[str, Any], plots: Mapping[str, Path], path: Path) -> Path:
    """Render the page with the PNGs at ``plots`` inlined, and write it to ``path``."""
    images = {name: Path(p).read_bytes() for name, p in plots.items()}
    path.write_text(render_report(results, images), encoding="utf-8")
    return path
