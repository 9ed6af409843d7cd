"""The paired comparison: task-by-task differences between two policies on the same tasks."""

import json

import numpy as np
import pytest

from latent_env.bench.paired import describe, paired_against, paired_difference, sign_test_p
from latent_env.cli import main
from latent_env.training.evaluate import last_stage_paired
from tests.test_bench import bench_args


def record(policy: str, task: str, gain: float, hit: bool | None, latent: str = "x") -> dict:
    return {"policy": policy, "task_id": task, "gain": gain, "answer_hit": hit, "latent": latent}


def test_sign_test_matches_the_binomial_by_hand():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(0, 3) == pytest.approx(0.25)  # 2 * (1/8)
    assert sign_test_p(5, 0) == pytest.approx(2 / 32)
    assert sign_test_p(8, 2) == sign_test_p(2, 8) == pytest.approx(2 * 56 / 1024)
    assert sign_test_p(3, 3) == 1.0  # an even split is capped at 1


def test_paired_difference_counts_fixed_broken_and_changed_latents():
    base = [
        record("a", "t1", 1.0, False),
        record("a", "t2", 2.0, True),
        record("a", "t3", 0.5, True),
        record("a", "t4", 0.0, None),
    ]
    cand = [
        record("b", "t1", 4.0, True, "y"),
        record("b", "t2", 2.0, True),
        record("b", "t3", -1.5, False, "z"),
        record("b", "t4", 1.0, None, "w"),
        record("b", "t9", 9.0, True),
    ]  # a task the baseline never ran: left out
    diff = paired_difference(base, cand, np.random.default_rng(0))
    assert diff["episodes"] == 4
    assert diff["mean_gain_delta"] == pytest.approx((3.0 + 0.0 - 2.0 + 1.0) / 4)
    lo, hi = diff["gain_delta_ci95"]
    assert lo <= diff["mean_gain_delta"] <= hi
    assert (diff["fixed"], diff["broken"]) == (1, 1)
    assert diff["accuracy_delta"] == 0.0  # over the 3 tasks that have an answer
    assert diff["sign_test_p"] == 1.0
    assert diff["latents_changed"] == 3


def test_identical_policies_differ_by_nothing():
    recs = [record("a", f"t{i}", float(i), i % 2 == 0) for i in range(6)]
    same = [{**r, "policy": "b"} for r in recs]
    diff = paired_against("a", ["a", "b"], recs + same, seed=0)
    assert list(diff) == ["b"]  # the baseline is not compared with itself
    assert diff["b"]["mean_gain_delta"] == 0.0 and diff["b"]["gain_delta_ci95"] == [0.0, 0.0]
    assert (diff["b"]["fixed"], diff["b"]["broken"], diff["b"]["latents_changed"]) == (0, 0, 0)
    assert "same 6 tasks: gain +0.00 nats" in describe("a", "b", diff["b"])


def test_eval_pairs_the_trained_policy_with_the_last_supervised_checkpoint():
    labels = ["none (no latent)", "base (m)", "after sft", "after fusion", "trained (x)", "oracle"]
    summaries = {label: {"failed": False} for label in labels}
    recs = [record(label, "t1", 1.0, True) for label in labels]
    recs[labels.index("trained (x)")] = record("trained (x)", "t1", 3.0, False)
    paired = last_stage_paired(summaries, recs, seed=0)
    assert (paired["baseline"], paired["candidate"]) == ("after fusion", "trained (x)")
    assert paired["mean_gain_delta"] == 2.0 and paired["broken"] == 1
    summaries["trained (x)"]["failed"] = True
    assert last_stage_paired(summaries, recs, seed=0) == {}
    assert last_stage_paired({"none (no latent)": {"failed": False}}, recs[:1], seed=0) == {}


def test_bench_pairs_every_policy_with_the_first(tmp_path, capsys):
    assert main(bench_args(tmp_path, "none", "oracle", "random")) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    paired = results["paired"]
    assert paired["baseline"] == "none"
    # bench adds the oracle by kind after the asked-for policies; it is paired like them.
    assert list(paired["against"]) == ["oracle", "random", "oracle by kind"]
    oracle = paired["against"]["oracle"]
    assert oracle["episodes"] == results["policies"]["oracle"]["episodes"]
    assert oracle["mean_gain_delta"] == pytest.approx(
        results["policies"]["oracle"]["mean_gain_nats"]
    )
    assert "paired against none" in capsys.readouterr().out
    assert "Paired against none" in (tmp_path / "report.html").read_text()


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    assert main(bench_args(first, "none", "oracle")) == 0
    assert main(bench_args(second, "random", "oracle")) == 0
    return first / "results.json", second / "results.json"


def test_compare_pairs_policies_from_separate_runs(two_runs, tmp_path, capsys):
    first, second = two_runs
    out = tmp_path / "paired.json"
    assert main(["compare", str(first), str(second), "--out", str(out)]) == 0
    paired = json.loads(out.read_text())
    oracle_twice = f"oracle ({second})"  # a name two files share is told apart by its file
    assert paired["baseline"] == "none"
    by_kind_twice = f"oracle by kind ({second})"  # each run has its own oracle by kind
    assert list(paired["against"]) == [
        "oracle", "oracle by kind", "random", oracle_twice, by_kind_twice,
    ]
    same = paired["against"][oracle_twice]  # the oracle is deterministic: run 2 = run 1
    first_results = json.loads(first.read_text())
    assert same["mean_gain_delta"] == pytest.approx(
        first_results["policies"]["oracle"]["mean_gain_nats"]
    )
    assert "paired against none" in capsys.readouterr().out


def test_compare_with_a_named_baseline_and_user_mistakes(two_runs, tmp_path, capsys):
    first, second = two_runs
    out = tmp_path / "paired.json"
    assert (
        main(["compare", str(first), str(second), "--baseline", "oracle", "--out", str(out)]) == 0
    )
    against = json.loads(out.read_text())["against"]
    assert against[f"oracle ({second})"]["mean_gain_delta"] == 0.0
    assert against[f"oracle ({second})"]["latents_changed"] == 0
    assert main(["compare", str(first), "--baseline", "nope"]) == 2
    assert "'nope' is not a policy" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["compare", str(bad)]) == 2
    assert "not a results.json" in capsys.readouterr().err


def test_compare_refuses_runs_scored_differently_unless_forced(two_runs, tmp_path, capsys):
    first, second = two_runs
    other = json.loads(second.read_text())
    other["config"].update(model="default", combiner="note")
    dropped = other["episodes"][0]["task_id"]
    other["episodes"] = [r for r in other["episodes"] if r["task_id"] != dropped]
    changed = tmp_path / "results.json"
    changed.write_text(json.dumps(other))
    assert main(["compare", str(first), str(changed)]) == 2
    error = capsys.readouterr().err
    assert "model 'tiny-random' vs 'default'" in error and "combiner 'prefix' vs 'note'" in error
    assert "task ids (" in error and "--force" in error and "prompt" not in error
    assert main(["compare", str(first), str(changed), "--force"]) == 0
    assert "paired against none" in capsys.readouterr().out


def test_compare_in_a_subprocess(two_runs):
    from tests.test_bench_cli import run_cli

    first, second = two_runs
    done = run_cli("compare", str(first), str(second))
    assert done.returncode == 0, done.stderr
    assert "paired against none" in done.stdout and "sign test p" in done.stdout
