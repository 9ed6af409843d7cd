"""Choice of latent kind: metrics from hand-made records, the oracle by kind on a real stepper,
and ``latent-env bench`` writing both into results.json, choice.md and report.html."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from latent_env.agents.simple import OraclePolicy
from rich.console import Console

from latent_env.bench.choice import (
    ORACLE_BY_KIND,
    best_candidate,
    choice_markdown,
    choice_metrics,
    choice_rows,
    gold_actions,
    majority_kind,
    print_choice_table,
    run_oracle_by_kind,
)
from latent_env.bench.report import render_report
from latent_env.bench.runner import EpisodeStepper, run_policy
from latent_env.cli import main
from latent_env.engine import EpisodeEngine
from latent_env.scoring import LogLikScorer
from latent_env.tasks import Task, load_jsonl
from latent_env.tasks.families import EXPECTED_KINDS
from latent_env.tools.registry import load_tools
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)
from tests.test_bench_report import CHROMIUM, chromium, evil_results

HANDMADE = Path(__file__).parent / "fixtures" / "handmade.jsonl"
AGES_REASON = "The ages add up to 12 + 14 + 19 = 45, and 45 / 3 = 15."


def rec(task_id: str, family: str, kind: str, gain: float, **extra) -> dict:
    return {"task_id": task_id, "family": family, "kind": kind, "gain": gain, **extra}


def oracle(task_id: str, family: str, kind: str, gains: dict[str, float]) -> dict:
    return rec(task_id, family, kind, gains[kind], kind_gains=gains)


POLICY = [
    rec("t1", "A", "code", 1.0),
    rec("t2", "A", "empty", 0.0),
    rec("t3", "B", "reasoning", 0.5),
    rec("t4", "B", "code", -0.5),
]
ORACLE = [
    oracle("t1", "A", "code", {"code": 2.0, "empty": 0.0}),
    oracle("t2", "A", "code", {"code": 1.0, "empty": 0.0}),
    oracle("t3", "B", "reasoning", {"reasoning": 0.5, "empty": 0.0}),
    oracle("t4", "B", "empty", {"code": -0.5, "empty": 0.0}),
]


# ---- gold actions and the choice among candidates ------------------------------------------------


def test_gold_actions_follow_the_gold_the_task_has():
    both = Task("a", "x", " y", program="print(1)", reason="one")
    assert gold_actions(both) == {
        "code": "<python>print(1)</python>", "reasoning": "<reason>one</reason>", "empty": "",
    }
    assert gold_actions(Task("b", "x", " y", reason="why")) == {
        "reasoning": "<reason>why</reason>", "empty": "",
    }
    program_only = Task("c", "x", " y", program="print(2)")
    assert gold_actions(program_only) == {"code": "<python>print(2)</python>", "empty": ""}
    assert gold_actions(program_only)["code"] == OraclePolicy().act_batch(["x"], [program_only])[0]
    assert gold_actions(Task("d", "x", " y", program="", reason="")) == {"empty": ""}


def test_best_candidate_takes_the_highest_gain_and_empty_wins_ties():
    cands = {k: {"kind": k, "gain": g} for k, g in (("code", 0.0), ("empty", 0.0))}
    assert best_candidate(cands)["kind"] == "empty"
    cands = {k: {"kind": k, "gain": g} for k, g in
             (("code", 1.5), ("reasoning", 1.5), ("empty", 0.0))}
    best = best_candidate(cands)
    assert best["kind"] == "code"  # code before reasoning on a tie
    assert best["kind_gains"] == {"code": 1.5, "reasoning": 1.5, "empty": 0.0}
    cands["reasoning"]["gain"] = 1.6
    assert best_candidate(cands)["kind"] == "reasoning"
    assert majority_kind(["reasoning", "code"]) == "code"
    assert majority_kind(["code", "empty"]) == "empty"
    assert majority_kind(["thinking", "thinking", "code"]) == "thinking"
    assert majority_kind([]) is None


# ---- metrics from hand-made records --------------------------------------------------------------


def test_choice_metrics_exact_numbers():
    choice = choice_metrics({"p": POLICY}, ORACLE)
    assert list(choice) == ["p"] and list(choice["p"]) == ["*", "A", "B"]
    cell = choice["p"]["*"]
    assert cell["episodes"] == 4 and cell["oracle_episodes"] == 4
    assert cell["kind_share"] == {"code": 0.5, "reasoning": 0.25, "thinking": 0.0, "empty": 0.25}
    assert cell["kind_gain"] == {"code": 0.25, "reasoning": 0.5, "thinking": None, "empty": 0.0}
    assert cell["majority_kind"] == "code"
    assert cell["best_kind_share"] == {
        "code": 0.5, "reasoning": 0.25, "thinking": 0.0, "empty": 0.25,
    }
    assert cell["oracle_gain"] == 0.875
    # (2 - 1) + (1 - 0) + (0.5 - 0.5) + (0 - -0.5) over 4 episodes
    assert cell["regret"] == 0.625
    assert cell["choice_match"] == 0.5
    assert cell["gold_gain"]["code"] == pytest.approx(2.5 / 3)
    assert cell["gold_gain"]["reasoning"] == 0.5 and cell["gold_gain"]["thinking"] is None
    assert cell["gold_gain"]["empty"] == 0.0
    fam_a, fam_b = choice["p"]["A"], choice["p"]["B"]
    assert fam_a["majority_kind"] == "empty"  # one code, one empty: empty wins the tie
    assert fam_b["majority_kind"] == "code"  # one reasoning, one code: code before reasoning
    assert fam_a["regret"] == 1.0 and fam_b["regret"] == 0.25
    assert fam_a["choice_match"] == 0.5 and fam_b["choice_match"] == 0.5
    assert fam_a["best_kind_share"]["code"] == 1.0 and fam_b["best_kind_share"]["empty"] == 0.5
    assert json.loads(json.dumps(choice, allow_nan=False)) == choice
    assert choice_metrics({"p": POLICY}, ORACLE) == choice  # deterministic


def test_choice_metrics_match_by_task_id_and_without_an_oracle():
    extra = [*POLICY, rec("t9", "A", "code", 3.0)]  # a task the oracle never ran
    choice = choice_metrics({"p": extra, "q": []}, ORACLE)
    cell = choice["p"]["*"]
    assert cell["episodes"] == 5 and cell["oracle_episodes"] == 4
    assert cell["regret"] == 0.625 and cell["kind_share"]["code"] == 0.6
    assert cell["kind_gain"]["code"] == pytest.approx(3.5 / 3)
    empty = choice["q"]
    assert list(empty) == ["*"]
    assert empty["*"]["episodes"] == 0 and empty["*"]["majority_kind"] is None
    assert set(empty["*"]["kind_share"].values()) == {None}
    assert empty["*"]["regret"] is None and empty["*"]["best_kind_share"] is None
    alone = choice_metrics({"p": POLICY}, None)["p"]["*"]
    assert alone["oracle_episodes"] == 0 and alone["kind_share"]["code"] == 0.5
    for key in ("best_kind_share", "gold_gain", "oracle_gain", "regret", "choice_match"):
        assert alone[key] is None, key
    # The oracle by kind measured against itself: no regret, always its own choice.
    own = choice_metrics({ORACLE_BY_KIND: ORACLE}, ORACLE)[ORACLE_BY_KIND]["*"]
    assert own["regret"] == 0.0 and own["choice_match"] == 1.0
    assert own["kind_share"] == own["best_kind_share"]


def test_choice_tables_show_used_kinds_expected_kinds_and_regret():
    choice = choice_metrics({"p|x": POLICY + [rec("t5", "average", "code", 0.0)]}, ORACLE)
    header, rows = choice_rows(choice)
    assert header == ["policy", "family", "episodes", "code %", "reasoning %", "empty %",
                      "gain code", "gain reasoning", "gain empty", "majority", "expected",
                      "match", "regret"]
    assert rows[0] == ["p|x", "all", "5", "60.0%", "20.0%", "20.0%", "+0.167", "+0.500",
                       "+0.000", "code", "–", "50.0%", "+0.625"]
    assert rows[1][:3] == ["p|x", "A", "2"]
    assert rows[1][-4:] == ["empty", "–", "50.0%", "+1.000"]
    expected = ", ".join(EXPECTED_KINDS["average"])
    assert rows[3][1] == "average" and rows[3][10] == expected and rows[3][-1] == "—"
    markdown = choice_markdown(choice).splitlines()
    assert len(markdown) == 2 + len(rows)
    assert markdown[1].startswith("|---|---|---:|")
    assert markdown[2].startswith(r"| p\|x | all | 5 | 60.0% |")
    assert choice_markdown({}) == ""
    console = Console(record=True, width=220)
    print_choice_table(choice, console)
    text = console.export_text()
    assert "choice of latent kind" in text and "+0.625" in text and "reasoning %" in text
    print_choice_table(None, console)  # older results: nothing, no error
    only_empty = choice_rows(choice_metrics({"none": [rec("t1", "A", "empty", 0.0)]}, None))
    assert only_empty[0][3:9] == ["code %", "empty %", "gain code", "gain empty", "majority",
                                  "expected"]


def test_report_without_choice_still_renders():
    page = render_report(evil_results(), {})
    assert "Choice of latent kind" not in page
    results = {**evil_results(), "choice": choice_metrics({"<b>": POLICY}, ORACLE)}
    page = render_report(results, {})
    assert "Choice of latent kind" in page and "&lt;b&gt;" in page and "<b>" not in page


# ---- the oracle by kind on a real stepper --------------------------------------------------------


def choice_tasks() -> list[Task]:
    """Handmade tasks with code only, code and reasoning, reasoning only, and no gold."""
    ages, apples, *_ = load_jsonl(HANDMADE)
    return [
        Task.from_dict({**ages.to_dict(), "reason": AGES_REASON}),
        apples,
        Task("mystery/riddle", "What has keys but opens no locks? The answer is", " a piano.",
             reason="Keys that open no locks belong to a musical instrument.", family="riddle"),
        Task("plain/text", "The sky on a clear day is", " blue.", family="plain"),
    ]


@pytest.fixture(scope="module")
def stepper(tiny):
    tools = load_tools(["python", "calc"])
    stepper = EpisodeStepper(LogLikScorer(*tiny), tools, width=2)
    yield stepper
    for tool in tools.values():
        tool.close()


def test_oracle_by_kind_keeps_each_tasks_best_gold(stepper):
    tasks = choice_tasks()
    done: list[int] = []
    run = run_oracle_by_kind(tasks, stepper, seed=5, on_batch=done.append)
    assert run.spec == ORACLE_BY_KIND and not run.failed and run.wall_s > 0
    assert done == [2, 2, 2, 2]  # 3 + 2 + 2 + 1 candidates in batches of the stepper's width
    assert [r["task_id"] for r in run.records] == [t.id for t in tasks]
    assert [r["episode"] for r in run.records] == [0, 1, 2, 3]
    assert [list(r["kind_gains"]) for r in run.records] == [
        ["code", "reasoning", "empty"], ["code", "empty"], ["reasoning", "empty"], ["empty"],
    ]
    scorer = stepper.scorer
    for task, record in zip(tasks, run.records):
        gains = record["kind_gains"]
        assert gains["empty"] == 0.0  # exactly: the empty latent's gain is the baseline's
        assert record["gain"] == max(gains.values())
        assert record["kind"] == best_candidate(
            {k: {"kind": k, "gain": g} for k, g in gains.items()})["kind"]
        assert record["policy"] == ORACLE_BY_KIND and record["family"] == (task.family or "other")
        for kind, action in gold_actions(task).items():
            if kind == "empty":
                continue
            latent = EpisodeEngine(stepper.tools).latents([action])[0].text
            direct = scorer.gain([task.context], [latent], [task.continuation])[0].gain
            assert gains[kind] == pytest.approx(direct, abs=1e-4), (task.id, kind)
    # The code gains are those of the oracle policy on the same tasks, seeds and engine.
    oracle = run_policy(OraclePolicy(), tasks, stepper, seed=5)
    for mine, theirs in zip(run.records, oracle.records):
        if "code" in mine["kind_gains"]:
            assert mine["kind_gains"]["code"] == pytest.approx(theirs["gain"], abs=1e-4)


# ---- latent-env bench ----------------------------------------------------------------------------


def write_tasks(path: Path) -> Path:
    path.write_text("".join(json.dumps(t.to_dict()) + "\n" for t in choice_tasks()))
    return path


def bench(out: Path, tasks: Path, *extra: str) -> dict:
    args = ["bench", "--model", "tiny-random", "--tasks", str(tasks), "--out", str(out),
            "--jobs", "3", "--tools", "python,calc", "--policy", "none", "--policy", "oracle",
            *extra]
    assert main(args) == 0
    return json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("choice")
    out = root / "out"
    return out, bench(out, write_tasks(root / "tasks.jsonl"))


def test_bench_writes_the_choice_metrics(bench_run):
    out, results = bench_run
    names = ["none", "oracle", ORACLE_BY_KIND]
    assert list(results["policies"]) == names and list(results["choice"]) == names
    assert results["config"]["oracle_by_kind"] is True
    assert "--no-oracle-by-kind" not in results["config"]["command"]
    by_kind = [r for r in results["episodes"] if r["policy"] == ORACLE_BY_KIND]
    oracle = [r for r in results["episodes"] if r["policy"] == "oracle"]
    assert len(by_kind) == 4 and all("kind_gains" in r for r in by_kind)
    best = sum(r["gain"] for r in by_kind) / 4
    assert results["policies"][ORACLE_BY_KIND]["mean_gain_nats"] == pytest.approx(best)
    none = results["choice"]["none"]["*"]
    assert none["kind_share"]["empty"] == 1.0 and none["majority_kind"] == "empty"
    assert none["oracle_gain"] == pytest.approx(best) and none["regret"] == pytest.approx(best)
    assert none["choice_match"] == sum(r["kind"] == "empty" for r in by_kind) / 4
    mine = results["choice"]["oracle"]["*"]
    assert mine["kind_share"]["code"] == 0.5 and mine["kind_share"]["empty"] == 0.5
    regret = sum(b["gain"] - o["gain"] for b, o in zip(by_kind, oracle)) / 4
    assert mine["regret"] == pytest.approx(regret) and mine["regret"] >= 0.0
    own = results["choice"][ORACLE_BY_KIND]
    assert own["*"]["regret"] == 0.0 and own["*"]["choice_match"] == 1.0
    assert list(own) == ["*", "average", "sum_diff", "riddle", "plain"]
    assert own["plain"]["kind_share"]["empty"] == 1.0
    assert (out / "choice.md").read_text() == choice_markdown(results["choice"])
    page = (out / "report.html").read_text()
    assert '<h2 id="choice">Choice of latent kind</h2>' in page


def test_bench_without_the_oracle_by_kind(bench_run, tmp_path):
    _, first = bench_run
    results = bench(tmp_path / "out", write_tasks(tmp_path / "tasks.jsonl"),
                    "--no-oracle-by-kind")
    assert list(results["policies"]) == ["none", "oracle"]
    assert results["config"]["oracle_by_kind"] is False
    assert results["config"]["command"].endswith("--no-oracle-by-kind")
    cell = results["choice"]["oracle"]["*"]
    assert cell["regret"] is None and cell["oracle_episodes"] == 0
    assert cell["kind_share"] == first["choice"]["oracle"]["*"]["kind_share"]


def table_after(html: str, heading: str) -> list[list[str]]:
    """The body cells of the first table after ``heading`` in a DOM dump."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag == "td":
                self.cell = []

        def handle_endtag(self, tag):
            if tag == "td" and self.cell is not None:
                self.rows[-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    start = html.index(heading)
    parser = Cells()
    parser.feed(html[start : html.index("</table>", start)])
    return [row for row in parser.rows if row]


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)"
)
def test_choice_section_in_headless_chromium(bench_run, tmp_path):
    out, results = bench_run
    dom = chromium("--dump-dom", (out / "report.html").resolve().as_uri(),
                   profile=tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    rows = table_after(dom.stdout, "Choice of latent kind")
    assert rows == choice_rows(results["choice"])[1]
    none_all = rows[0]
    assert none_all[:3] == ["none", "all", "4"] and "100.0%" in none_all
    regret = results["choice"]["none"]["*"]["regret"]
    assert none_all[-1] == f"{regret:+.3f}"


def test_a_latents_kind_follows_what_it_holds():
    from latent_env.actions import parse_action
    from latent_env.latent import assemble_latent
    from latent_env.tools.base import ToolOutput

    def kind(action: str) -> str:
        parsed = parse_action(action, {"python"})
        refused = ToolOutput("parse_error", "Error: not run", "not run")  # as the env reports it
        outputs = [ToolOutput("ok", "4") if s.kind == "tool" else
                   refused if s.kind == "error" else None for s in parsed.segments]
        return assemble_latent(parsed, outputs).kind

    assert kind("") == "empty" and kind("<done/>") == "empty"
    assert kind("just words, no block") == "empty"
    assert kind("<reason>Tom is older.</reason>") == "reasoning"
    assert kind("<thinking><thinking>") == "thinking"
    assert kind("<reason>a</reason><thinking>") == "thinking"
    assert kind("<reason>a</reason><python>print(2 + 2)</python>") == "code"
    assert kind("<python>print(1)") == "code"  # an unclosed block is a failed attempt at code
