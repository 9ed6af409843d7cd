"""What the bench library and its CLIs share: the user-mistake error, tool and scorer loading,
atomic JSON writes, and the timing fields a comparison of two runs leaves out."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from latent_env.tools.registry import DEFAULT_TOOLS as REGISTRY_DEFAULT_TOOLS

DEFAULT_TOOLS = ",".join(REGISTRY_DEFAULT_TOOLS)
DEFAULT_JOBS = 8
TIMING_FIELDS = ("episodes_per_s", "wall_s")


class BenchUsageError(ValueError):
    """A user mistake in bench/complete arguments (reported as one line, exit status 2)."""


def load_tool_set(names: str) -> dict[str, Any]:
    """``{tag: Tool}`` for a comma-separated list of tool names."""
    from latent_env.tools.registry import ToolRegistryError, load_tools

    wanted = [n.strip() for n in names.split(",") if n.strip()]
    try:
        return load_tools(wanted)
    except ToolRegistryError as exc:
        raise BenchUsageError(f"--tools: {exc}") from None


def load_scorer(model_spec: str, combiner: str = "prefix") -> Any:
    """The shared :class:`LogLikScorer`; a model that cannot be found is a user mistake."""
    from latent_env.models import ModelNotFoundError, load_model
    from latent_env.scoring import LogLikScorer

    try:
        model, tokenizer = load_model(model_spec, device="auto")
    except (ModelNotFoundError, OSError) as exc:
        raise BenchUsageError(f"--model {model_spec}: {exc}") from None
    return LogLikScorer(model, tokenizer, combiner=combiner)


def output_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a directory, created with its parents if missing."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchUsageError(
            f"--out {path}: cannot create the directory ({exc.strerror})") from None
    return out


def write_json_atomic(path: Path, data: Any, default: Any = None) -> None:
    """Write JSON through a temporary file and a rename: never a half-written file
    (``default`` as ``json.dump``'s, for values JSON has no type for)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, ensure_ascii=False, allow_nan=False, default=default)
            fh.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def strip_timing(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` without the fields that measure time (for comparisons)."""
    copy = json.loads(json.dumps(results))
    for summary in copy["policies"].values():
        for key in TIMING_FIELDS:
            summary.pop(key, None)
    return copy
