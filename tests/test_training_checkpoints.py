"""Run-directory bookkeeping: the newest complete checkpoint, pruning a finished stage's, and the
final save every rank joins."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from latent_env.training.checkpoints import (
    RunState,
    last_checkpoint,
    prune_checkpoints,
    save_final,
)


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


class Rank:
    """One process's view of a trainer at the final save: ``save_model`` stands for the
    Trainer's, which under FSDP/DeepSpeed gathers the state dict from every rank and writes on
    the main process only."""

    def __init__(self, main: bool) -> None:
        self.saved, self.waited = [], 0
        self.model = SimpleNamespace(config=SimpleNamespace(use_cache=False))
        self.accelerator = SimpleNamespace(is_main_process=main, unwrap_model=lambda m: m,
                                           wait_for_everyone=self.wait)
        self.main = main

    def wait(self) -> None:
        self.waited += 1

    def save_model(self, path: str) -> None:
        self.saved.append(path)
        if self.main:
            Path(path).mkdir(parents=True)
            (Path(path) / "model.safetensors").write_bytes(b"w")


class Tokenizer:
    def save_pretrained(self, path: str) -> None:
        (Path(path) / "tokenizer.json").write_text("{}")


def test_every_rank_joins_the_final_save_and_the_main_one_writes_it(tmp_path):
    worker, main = Rank(main=False), Rank(main=True)
    assert save_final(worker, Tokenizer(), tmp_path) == tmp_path / "final"
    assert worker.saved == [str(tmp_path / "final.tmp")] and worker.waited == 1
    assert not (tmp_path / "final").exists()  # a worker writes nothing itself
    save_final(main, Tokenizer(), tmp_path)
    assert main.saved == worker.saved and main.waited == 1
    assert sorted(p.name for p in (tmp_path / "final").iterdir()) == [
        "model.safetensors", "tokenizer.json"]
    assert not (tmp_path / "final.tmp").exists()
    assert worker.model.config.use_cache and main.model.config.use_cache  # saved for generation
