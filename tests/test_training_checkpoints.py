"""Run-directory bookkeeping: the newest complete checkpoint, and pruning a finished stage's."""

from __future__ import annotations

from pathlib import Path

from latent_env.training.checkpoints import RunState, last_checkpoint, prune_checkpoints


def make_checkpoint(stage_dir: Path, step: int, size: int = 10, complete: bool = True) -> Path:
    checkpoint = stage_dir / f"checkpoint-{step}"
    checkpoint.mkdir(parents=True)
    (checkpoint / "optimizer.pt").write_bytes(b"x" * size)
    if complete:
        (checkpoint / "trainer_state.json").write_text("{}")
    return checkpoint


def test_last_checkpoint_is_the_newest_complete_one(tmp_path):
    make_checkpoint(tmp_path, 2)
    make_checkpoint(tmp_path, 10)
    make_checkpoint(tmp_path, 12, complete=False)  # a kill while it was being written
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    assert last_checkpoint(tmp_path / "missing") is None


def test_pruning_frees_only_the_finished_stages_checkpoints(tmp_path):
    make_checkpoint(tmp_path / "sft", 72, size=1000)
    make_checkpoint(tmp_path / "sft-bootstrap", 4, size=500)
    make_checkpoint(tmp_path / "rl", 10, size=7)  # another stage: untouched
    (tmp_path / "sft" / "final").mkdir()
    (tmp_path / "sft" / "final" / "model.safetensors").write_bytes(b"m" * 300)

    count, freed = prune_checkpoints(tmp_path, "sft")

    assert count == 2
    assert freed == 1000 + 500 + 2 * len("{}")
    assert not list(tmp_path.glob("sft*/checkpoint-*"))
    assert (tmp_path / "sft" / "final" / "model.safetensors").stat().st_size == 300
    assert (tmp_path / "rl" / "checkpoint-10").is_dir()
    assert prune_checkpoints(tmp_path, "latent") == (0, 0)  # a stage with no directory


def test_run_state_survives_a_reload_and_forgets_a_missing_model(tmp_path):
    model = tmp_path / "sft" / "final"
    model.mkdir(parents=True)
    RunState(tmp_path).mark("sft", model, {"steps": 3})
    RunState(tmp_path).mark("rl", tmp_path / "rl" / "final", {"steps": 1})  # never written
    state = RunState(tmp_path)
    assert state.finished("sft") == {"model": str(model), "metrics": {"steps": 3}}
    assert state.finished("rl") is None


def test_run_state_records_the_config_and_the_running_stage_from_the_start(tmp_path):
    RunState(tmp_path).begin({"pipeline": {"preset": "smoke"}})
    assert RunState(tmp_path).data == {"stages": {}, "running": None,
                                       "config": {"pipeline": {"preset": "smoke"}}}
    RunState(tmp_path).start("sft")  # a kill now leaves this on disk
    state = RunState(tmp_path)
    assert state.data["running"] == "sft" and state.data["config"]["pipeline"]["preset"] == "smoke"
    (tmp_path / "sft" / "final").mkdir(parents=True)
    state.mark("sft", tmp_path / "sft" / "final", {"steps": 2})
    assert RunState(tmp_path).data["running"] is None
    assert RunState(tmp_path).finished("sft")["metrics"] == {"steps": 2}
