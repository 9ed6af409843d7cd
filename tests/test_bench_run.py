"""``run_bench`` as a function, and an interrupted bench resumed to an uninterrupted one's numbers
(``latent_env.bench.run`` and ``latent_env.bench.checkpoint``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from latent_env.bench import run_bench
from latent_env.bench.common import BenchUsageError, strip_timing
from latent_env.bench.runner import EpisodeStepper
from latent_env.cli import main
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)

HANDMADE = Path(__file__).parent / "fixtures" / "handmade.jsonl"
# 7 tasks in batches of 3: three batches per policy. The sampled hf policy and random carry a
# random stream across batches, so resuming either mid-run must restore it.
POLICIES = ["none", "random", "hf:tiny-random?max_new_tokens=4&temperature=0.8", "oracle"]
JOBS = 3
BATCHES = 3


def bench_args(out: Path, *extra: str, policies: list[str] = POLICIES) -> list[str]:
    args = ["bench", "--model", "tiny-random", "--tasks", str(HANDMADE), "--out", str(out),
            "--jobs", str(JOBS), "--seed", "0"]
    for spec in policies:
        args += ["--policy", spec]
    return args + list(extra)


class StepCounter:
    """Counts EpisodeStepper.step calls (one per batch) and interrupts the ``stop_at``-th."""

    def __init__(self, monkeypatch, stop_at: int | None = None) -> None:
        self.calls, self.stop_at = 0, stop_at
        real = EpisodeStepper.step

        def step(stepper, actions):
            self.calls += 1
            if self.calls == self.stop_at:
                raise KeyboardInterrupt
            return real(stepper, actions)

        monkeypatch.setattr(EpisodeStepper, "step", step)


def comparable(results: dict) -> dict:
    """Results without timing and without where they were written."""
    copy = strip_timing(results)
    copy["config"].pop("out")
    copy["config"].pop("command")
    return copy


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its results and its number of batches."""
    out = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as patch:
        counter = StepCounter(patch)
        assert main(bench_args(out)) == 0
    return json.loads((out / "results.json").read_text()), counter.calls


def test_run_bench_is_a_function_that_creates_its_folder_and_returns_the_results(tmp_path):
    out = tmp_path / "new" / "deeper"
    results = run_bench(["none", "oracle"], tasks=HANDMADE, model="tiny-random", jobs=JOBS,
                        out=out, families=["average", "percent"], show=False)
    assert results == json.loads((out / "results.json").read_text())
    assert list(results["policies"]) == ["none", "oracle", "oracle by kind"]
    assert results["complete"] is True and results["config"]["families"] == "average,percent"
    assert results["policies"]["oracle"]["episodes"] == 2
    assert (out / "report.html").is_file() and not (out / "checkpoint").exists()


@pytest.mark.parametrize("stop_at, finished", [
    (BATCHES + 2, ["none"]),  # random's second batch: random continues from its first
    (2 * BATCHES + 3, ["none", "random"]),  # the hf policy's last batch
    (4 * BATCHES + 2, POLICIES),  # inside the oracle by kind (one unit, redone)
])
def test_an_interrupted_bench_resumes_to_the_uninterrupted_numbers(
    tmp_path, monkeypatch, capsys, reference, stop_at, finished
):
    expected, total_batches = reference
    out = tmp_path / "out"
    StepCounter(monkeypatch, stop_at=stop_at)
    assert main(bench_args(out)) == 130
    kept = json.loads((out / "results.json").read_text())
    assert kept["complete"] is False and list(kept["policies"]) == finished
    assert comparable(kept)["policies"] == {
        spec: comparable(expected)["policies"][spec] for spec in finished
    }
    err = capsys.readouterr().err
    assert f"interrupted: {len(finished)} of 5 runs finished" in err and "--resume" in err

    resumed = StepCounter(monkeypatch)
    assert main(bench_args(out, "--resume")) == 0
    results = json.loads((out / "results.json").read_text())
    assert comparable(results) == comparable(expected)
    # Nothing finished is redone: only the batch in flight, and the oracle by kind if it was
    # running (it is one unit).
    in_oracle_by_kind = stop_at > len(POLICIES) * BATCHES
    redone = stop_at - 1 - len(POLICIES) * BATCHES if in_oracle_by_kind else 0
    assert resumed.calls == total_batches - (stop_at - 1) + redone
    assert not (out / "checkpoint").exists()


def test_resume_refuses_other_arguments_and_keeps_what_was_written(
    tmp_path, monkeypatch, capsys
):
    out = tmp_path / "out"
    policies = ["none", "oracle"]
    StepCounter(monkeypatch, stop_at=BATCHES + 1)
    assert main(bench_args(out, policies=policies)) == 130
    saved = sorted(p.relative_to(out) for p in (out / "checkpoint").rglob("*"))
    capsys.readouterr()
    assert main(bench_args(out, "--resume", "--seed", "1", "--jobs", "2",
                           policies=policies)) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"latent-env bench: error: --resume: the arguments differ from the interrupted bench in "
        f"{out}: seed 0 then, 1 now; jobs 3 then, 2 now. Rerun with the same arguments, or "
        "choose another --out"
    ]
    assert main(bench_args(out, policies=policies)) == 2  # no --resume: not overwritten either
    assert "holds an interrupted bench" in capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in (out / "checkpoint").rglob("*")) == saved
    assert main(bench_args(out, "--resume", policies=policies)) == 0


def test_resuming_a_finished_bench_runs_nothing(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    first = run_bench(["none"], tasks=HANDMADE, model="tiny-random", jobs=JOBS, out=out,
                      oracle_by_kind=False, show=False)
    counter = StepCounter(monkeypatch)
    again = run_bench(["none"], tasks=HANDMADE, model="tiny-random", jobs=JOBS, out=out,
                      oracle_by_kind=False, resume=True)
    assert again == first and counter.calls == 0
    assert "nothing to resume" in capsys.readouterr().err
    with pytest.raises(BenchUsageError, match=re.escape(
            f"--resume: the arguments differ from the finished bench in {out}: seed 0 then, 1 "
            "now")):
        run_bench(["none"], tasks=HANDMADE, model="tiny-random", jobs=JOBS, out=out,
                  oracle_by_kind=False, seed=1, resume=True)
    assert json.loads((out / "results.json").read_text()) == first


def test_a_policy_without_state_is_rerun_from_its_first_episode(tmp_path, monkeypatch):
    # tests.policy_fakes.Echo has no get_state/set_state: its batches cannot be continued.
    policies = ["none", "tests.policy_fakes:Echo?word=7"]
    reference = run_bench(policies, tasks=HANDMADE, model="tiny-random", jobs=JOBS,
                          out=tmp_path / "ref", oracle_by_kind=False, show=False)
    out = tmp_path / "out"
    StepCounter(monkeypatch, stop_at=BATCHES + 2)
    with pytest.raises(KeyboardInterrupt, match="interrupted: 1 of 2 runs finished"):
        run_bench(policies, tasks=HANDMADE, model="tiny-random", jobs=JOBS, out=out,
                  oracle_by_kind=False, show=False)
    assert not (out / "checkpoint" / "01").exists()  # no batch saved without a state
    counter = StepCounter(monkeypatch)
    results = run_bench(policies, tasks=HANDMADE, model="tiny-random", jobs=JOBS, out=out,
                        oracle_by_kind=False, resume=True, show=False)
    assert counter.calls == BATCHES and comparable(results) == comparable(reference)


def test_scorer_self_adds_each_hf_policys_own_model_reading_its_latents(tmp_path, capsys):
    spec = "hf:tiny-random?max_new_tokens=4"
    results = run_bench(["none", spec], tasks=str(HANDMADE), out=tmp_path / "b",
                        model="tiny-random", jobs=JOBS, scorer="self", oracle_by_kind=False)
    # The policy's model is the scorer's: reading its own latent is the frozen gain, and
    # without a latent it predicts exactly as the start.
    assert list(results["founding"]) == [spec]
    overall = results["founding"][spec]["all"]
    assert overall["tasks"] == results["policies"][spec]["episodes"]
    assert overall["own_minus_start"][0] == pytest.approx(
        results["policies"][spec]["mean_gain_nats"], abs=1e-3)
    assert overall["plain_minus_start"][0] == 0.0
    assert (tmp_path / "b" / "founding.md").read_text().startswith("| policy | family |")
    assert results["config"]["scorer"] == "self"
    assert "--scorer self" in results["config"]["command"]
    assert "own model reading its latents" in capsys.readouterr().out
    with pytest.raises(BenchUsageError, match="--scorer self needs an hf: policy"):
        run_bench(["none"], tasks=str(HANDMADE), out=tmp_path / "c", model="tiny-random",
                  scorer="self")
