"""``OUT/checkpoint/``: what an interrupted ``latent-env bench`` needs to continue (``--resume``).

============================  ===================================================================
``meta.json``                 the configuration that decides the numbers, and a fingerprint of
                              the selected tasks (a resumed run must match both)
``NN.json``                   run ``NN`` (policies in order, then the oracle by kind) finished:
                              its records, wall time and error
``NN/BBBBBB.json``            run ``NN``'s batch of episodes from ``BBBBBB`` on: its records, the
                              wall time so far and the policy's state after it (see
                              ``latent_env.agents.base.Policy``); written only for policies
                              that give one
============================  ===================================================================

Each file is written once, atomically (a temporary file, then a rename), so an interrupt at any
moment leaves every file whole; a finished run's batch files go once its ``NN.json`` exists. The
folder goes when the bench has written its final outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from latent_env.bench.common import BenchUsageError, write_json_atomic
from latent_env.bench.results import COMPARED_CONFIG

CHECKPOINT_DIR = "checkpoint"
FORMAT = 1


@dataclass
class SavedRun:
    """A run read back: finished (``NN.json``) or its batches so far with the policy's state."""

    records: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0
    error: str | None = None
    finished: bool = False
    state: Any = None


def checkpoint_meta(config: Mapping[str, Any], tasks: Sequence[Any]) -> dict[str, Any]:
    """What ``meta.json`` holds for a bench of ``config`` over ``tasks``."""
    fields = [[t.id, t.context, t.continuation, t.answer, t.program, t.reason, t.family]
              for t in tasks]
    digest = hashlib.sha256(json.dumps(fields, ensure_ascii=False).encode()).hexdigest()
    return {"format": FORMAT, "config": {k: config.get(k) for k in COMPARED_CONFIG},
            "tasks_sha256": digest}


class Checkpoint:
    """One bench's checkpoint folder (create it with :meth:`open`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def open(cls, out: Path, meta: Mapping[str, Any], resume: bool) -> Checkpoint:
        """The checkpoint in ``out``: the interrupted one when ``resume`` (refused, naming the
        difference, when it was made with other arguments), else a new one.

        Without ``resume`` an interrupted bench in ``out`` is refused rather than overwritten:
        its finished policies may be hours of work.
        """
        folder = out / CHECKPOINT_DIR
        saved_meta = folder / "meta.json"
        if saved_meta.is_file():
            if not resume:
                raise BenchUsageError(
                    f"--out {out} holds an interrupted bench ({folder}); continue it with "
                    "--resume, or choose another --out")
            _check_same(out, _read(saved_meta), meta)
            return cls(folder)
        shutil.rmtree(folder, ignore_errors=True)  # a folder without meta.json holds nothing
        folder.mkdir()
        write_json_atomic(saved_meta, dict(meta))
        return cls(folder)

    def load(self, index: int, spec: str) -> SavedRun | None:
        """What was saved of run ``index`` (``spec``), or None."""
        done = self.folder / f"{index:02d}.json"
        if done.is_file():
            data = self._read_run(done, spec)
            return SavedRun(data["records"], data["wall_s"], data["error"], finished=True)
        saved = SavedRun()
        for path in sorted((self.folder / f"{index:02d}").glob("*.json")):
            data = self._read_run(path, spec)
            if data["first"] != len(saved.records):  # only an unbroken prefix counts
                break
            saved.records += data["records"]
            saved.wall_s, saved.state = data["wall_s"], data["state"]
        return saved if saved.records else None

    def save_batch(self, index: int, spec: str, records: Sequence[dict[str, Any]],
                   first: int, wall_s: float, state: Any) -> None:
        """Run ``index``'s episodes ``first…`` and the policy's ``state`` after them."""
        folder = self.folder / f"{index:02d}"
        folder.mkdir(exist_ok=True)
        write_json_atomic(folder / f"{first:06d}.json", {
            "spec": spec, "first": first, "records": list(records), "wall_s": wall_s,
            "state": state,
        })

    def save_finished(self, index: int, spec: str, records: Sequence[dict[str, Any]],
                      wall_s: float, error: str | None) -> None:
        """Run ``index`` ended (finished or failed): its batch files are no longer needed."""
        write_json_atomic(self.folder / f"{index:02d}.json", {
            "spec": spec, "records": list(records), "wall_s": wall_s, "error": error,
        })
        shutil.rmtree(self.folder / f"{index:02d}", ignore_errors=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _read_run(self, path: Path, spec: str) -> dict[str, Any]:
        data = _read(path)
        if data.get("spec") != spec:
            raise BenchUsageError(f"--resume: {path} holds {data.get('spec')!r}, not {spec!r}; "
                                  "the checkpoint is not this bench's")
        return data


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchUsageError(f"--resume: cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise BenchUsageError(f"--resume: {path} is not a checkpoint file")
    return data


def _check_same(out: Path, saved: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    """Refuse to resume a bench made with other arguments, naming what differs."""
    if saved.get("format") != meta["format"]:
        raise BenchUsageError(f"--resume: {out} was written by another latent-env version's "
                              "bench; choose another --out")
    changed = config_differences(saved.get("config", {}), meta["config"])
    if saved.get("tasks_sha256") != meta["tasks_sha256"] and not changed:
        changed.append("the selected tasks' contents (their file changed)")
    if changed:
        raise BenchUsageError(
            f"--resume: the arguments differ from the interrupted bench in {out}: "
            f"{'; '.join(changed)}. Rerun with the same arguments, or choose another --out")


def config_differences(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """``["seed 0 then, 1 now", …]``: the compared configuration keys that differ."""
    return [f"{key} {before.get(key)!r} then, {now.get(key)!r} now"
            for key in COMPARED_CONFIG if before.get(key) != now.get(key)]
