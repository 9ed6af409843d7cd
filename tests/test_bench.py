"""``latent-env bench`` in process: numbers against direct scorer calls, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from latent_env.bench.common import strip_timing
from latent_env.bench.episodes import interleave, select_tasks
from latent_env.bench.stats import bootstrap_ci, summarize_policy
from latent_env.cli import main
from latent_env.engine import EpisodeEngine
from latent_env.scoring import LogLikScorer
from latent_env.tasks import Task, TaskError, load_jsonl
from latent_env.tools.registry import load_tools
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)

HANDMADE = Path(__file__).parent / "fixtures" / "handmade.jsonl"
SAMPLED_HF = "hf:tiny-random?max_new_tokens=4&temperature=0.8"
POLICIES = ["none", "oracle", "random", SAMPLED_HF]
# bench adds the oracle by kind after the asked-for policies (see latent_env.bench.choice).
ENTRIES = [*POLICIES, "oracle by kind"]


def bench_args(out: Path, *policies: str, extra: tuple[str, ...] = ()) -> list[str]:
    args = [
        "bench",
        "--model",
        "tiny-random",
        "--tasks",
        str(HANDMADE),
        "--out",
        str(out),
        "--jobs",
        "3",
        "--seed",
        "0",
    ]
    for spec in policies:
        args += ["--policy", spec]
    return args + list(extra)


@pytest.fixture(scope="module")
def handmade_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    assert main(bench_args(out, *POLICIES)) == 0
    return out, json.loads((out / "results.json").read_text())


def test_oracle_numbers_match_direct_scorer_calls(handmade_run, tiny):
    _, results = handmade_run
    tasks = {t.id: t for t in load_jsonl(HANDMADE)}
    scorer = LogLikScorer(*tiny)
    tools = load_tools(["python", "calc", "predict"])
    oracle = [r for r in results["episodes"] if r["policy"] == "oracle"]
    assert sorted(r["task_id"] for r in oracle) == sorted(tasks)
    for record in oracle:
        task = tasks[record["task_id"]]
        latent = EpisodeEngine(tools).latents([f"<python>{task.program}</python>"])[0].text
        assert record["latent"] == latent
        assert f"<output>{task.answer}</output>" in latent
        direct = scorer.gain([task.context], [latent], [task.continuation])[0]
        assert record["gain"] == pytest.approx(direct.gain, abs=1e-4)
        assert record["reward"] == pytest.approx(direct.gain, abs=1e-4)
        assert record["logp_with_latent"] == pytest.approx(direct.enriched.total, abs=1e-4)
        assert record["logp_without_latent"] == pytest.approx(direct.baseline.total, abs=1e-4)
        assert record["token_gains"] == pytest.approx(direct.token_gains, abs=1e-4)
        assert "".join(record["tokens"]) == task.continuation
        assert record["tool_calls"] == 1 and record["tool_errors"] == 0
    summary = results["policies"]["oracle"]
    assert summary["mean_gain_nats"] == pytest.approx(np.mean([r["gain"] for r in oracle]))
    assert summary["tool_error_rate"] == 0.0


def test_none_gains_exactly_zero(handmade_run):
    _, results = handmade_run
    none = [r for r in results["episodes"] if r["policy"] == "none"]
    assert len(none) == 7 and all(r["gain"] == 0.0 and r["latent"] == "" for r in none)
    summary = results["policies"]["none"]
    assert summary["mean_gain_nats"] == 0.0 and summary["gain_ci95"] == [0.0, 0.0]
    assert summary["tool_error_rate"] is None and summary["mean_reward"] == 0.0


def test_results_json_has_the_contracted_shape(handmade_run):
    out, results = handmade_run
    assert list(results["policies"]) == ENTRIES and list(results["choice"]) == ENTRIES
    for spec, summary in results["policies"].items():
        for key in (
            "episodes",
            "mean_reward",
            "mean_gain_nats",
            "answer_accuracy",
            "tool_error_rate",
            "episodes_per_s",
            "gain_ci95",
            "answer_accuracy_ci95",
            "families",
            "failed",
            "error",
        ):
            assert key in summary, (spec, key)
        assert summary["episodes"] == 7 and summary["failed"] is False
        lo, hi = summary["gain_ci95"]
        assert lo <= summary["mean_gain_nats"] <= hi
        assert summary["episodes_per_s"] > 0
        assert set(summary["families"]) == {t.family for t in load_jsonl(HANDMADE)}
        for cell in summary["families"].values():
            assert cell["episodes"] == 1 and cell["gain_ci95"][0] == cell["gain_ci95"][1]
    assert results["config"]["seed"] == 0 and results["config"]["episodes"] == 7
    assert len(results["episodes"]) == 7 * len(ENTRIES)
    record = results["episodes"][0]
    for key in (
        "policy",
        "task_id",
        "family",
        "action",
        "latent",
        "tools",
        "gain",
        "answer_hit",
        "tokens",
        "token_gains",
    ):
        assert key in record
    for name in ("report.html", "gain_by_family.png", "gain_vs_latent_length.png"):
        assert (out / name).stat().st_size > 1000
    assert (out / "gain_by_family.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_results(handmade_run):
    out, first = handmade_run
    assert main(bench_args(out, *POLICIES)) == 0
    second = json.loads((out / "results.json").read_text())
    assert strip_timing(second) == strip_timing(first)
    hf = [r["action"] for r in second["episodes"] if r["policy"] == SAMPLED_HF]
    assert len(set(hf)) > 1  # the sampled policy really sampled, and reproducibly


def test_episodes_limit_and_families_select_the_tasks(tmp_path):
    code = main(
        bench_args(tmp_path, "none", extra=("--families", "average,percent", "--episodes", "5"))
    )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    ids = [r["task_id"] for r in results["episodes"] if r["policy"] == "none"]
    assert ids == ["handmade/ages", "handmade/discount"] * 2 + ["handmade/ages"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--policy", "gpt-5"), "unknown policy 'gpt-5'"),
        (("--policy", "none", "--policy", "none"), "--policy none is given twice"),
        (("--policy", "hf:default?max_new_tokens=lots"), "not a valid int"),
        (("--policy", "none", "--tools", "python,abacus"), "no tool named 'abacus'"),
        (("--policy", "none", "--families", "astrology"), 'no tasks of family "astrology"'),
        (("--policy", "none", "--limit", "0"), "--limit must be at least 1"),
        (("--policy", "none", "--jobs", "0"), "--jobs must be at least 1"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    assert main(bench_args(tmp_path / "o", extra=extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("latent-env bench: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # nothing was started


def test_missing_and_malformed_task_files_name_the_place(tmp_path, capsys):
    assert main(["bench", "--policy", "none", "--tasks", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: no such task file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        HANDMADE.read_text().splitlines()[0] + '\n{"id": "x", "context": 3, "continuation": "y"}\n'
    )
    assert main(["bench", "--policy", "none", "--tasks", str(bad), "--model", "tiny-random"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: " in err and '"context" must be a string' in err


def test_a_missing_model_is_a_user_error(tmp_path, capsys):
    args = [
        "bench",
        "--policy",
        "none",
        "--tasks",
        str(HANDMADE),
        "--out",
        str(tmp_path),
        "--model",
        str(tmp_path / "no-model"),
    ]
    assert main(args) == 2
    assert "--model" in capsys.readouterr().err


# ---- task selection and statistics -------------------------------------------------------------


def _task(i: int, family: str | None) -> Task:
    return Task(id=f"t{i}", context=f"c{i}", continuation=" y", family=family)


def test_select_tasks_interleaves_caps_and_cycles():
    tasks = [_task(0, "a"), _task(1, "a"), _task(2, "a"), _task(3, "b"), _task(4, None)]
    ids = lambda ts: [t.id for t in ts]  # noqa: E731
    assert ids(select_tasks(tasks)) == ["t0", "t3", "t4", "t1", "t2"]
    assert ids(select_tasks(tasks, limit=1)) == ["t0", "t3", "t4"]
    assert ids(select_tasks(tasks, families=["b", "a"], limit=2)) == ["t3", "t0", "t1"]
    assert ids(select_tasks(tasks, families=["other"])) == ["t4"]
    assert ids(select_tasks(tasks, limit=1, episodes=5)) == ["t0", "t3", "t4", "t0", "t3"]
    with pytest.raises(TaskError, match='family "c"'):
        select_tasks(tasks, families=["c"])
    with pytest.raises(TaskError, match="--episodes"):
        select_tasks(tasks, episodes=0)
    with pytest.raises(TaskError, match="no tasks"):
        select_tasks([])
    assert interleave([[1, 2, 3], [4]]) == [1, 4, 2, 3]


def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = [0.1, 0.5, -0.2, 1.3, 0.7, 0.0, 2.2]
    ci = bootstrap_ci(values, np.random.default_rng(0))
    assert ci == bootstrap_ci(values, np.random.default_rng(0))
    assert ci[0] < np.mean(values) < ci[1]
    assert min(values) <= ci[0] and ci[1] <= max(values)
    assert bootstrap_ci([], np.random.default_rng(0)) is None
    assert bootstrap_ci([0.0, 0.0], np.random.default_rng(0)) == [0.0, 0.0]


def test_summary_of_a_failed_policy_keeps_its_partial_episodes():
    record = {
        "gain": 1.0,
        "reward": 1.0,
        "answer_hit": True,
        "answer_hit_without_latent": False,
        "tool_calls": 2,
        "tool_errors": 1,
        "latent_tokens": 10,
        "family": "a",
    }
    summary = summarize_policy("p", [record], seed=0, wall_s=0.5, error="boom")
    assert summary["failed"] and summary["error"] == "boom" and summary["episodes"] == 1
    assert summary["tool_error_rate"] == 0.5 and summary["answer_accuracy"] == 1.0
    assert summary["episodes_per_s"] == 2.0
    empty = summarize_policy("p", [], seed=0, wall_s=0.0, error="down")
    assert empty["mean_gain_nats"] is None and empty["gain_ci95"] is None
    assert empty["episodes_per_s"] is None and empty["families"] == {}


@pytest.mark.slow
def test_oracle_beats_the_baseline_on_the_default_model(tmp_path):
    args = [
        "bench",
        "--model",
        "default",
        "--tasks",
        str(HANDMADE),
        "--out",
        str(tmp_path),
        "--policy",
        "none",
        "--policy",
        "oracle",
        "--jobs",
        "7",
    ]
    assert main(args) == 0
    policies = json.loads((tmp_path / "results.json").read_text())["policies"]
    assert policies["none"]["mean_gain_nats"] == 0.0
    assert policies["oracle"]["mean_gain_nats"] > 1.0
    assert policies["oracle"]["gain_ci95"][0] > 0.0
