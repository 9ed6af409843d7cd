"""Resource limits for sandboxed runs, with named, documented defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

#: Wall-clock seconds one run may take, enforced from outside (the parent kills the worker).
DEFAULT_TIMEOUT_S = 2.0
#: Address-space cap (RLIMIT_AS) of a worker process in MiB. A warm worker (Python, numpy,
#: RestrictedPython, facades) maps about 150 MiB, so roughly 350 MiB remain for model data.
DEFAULT_MEMORY_MB = 512
#: Characters of printed output kept per run; printing past this ends the run ("output_limit").
DEFAULT_MAX_OUTPUT_CHARS = 4000
#: Characters of the reported value (repr of the last expression or of ``result``).
DEFAULT_MAX_VALUE_CHARS = 4000
#: Longest accepted source text, in characters.
DEFAULT_MAX_CODE_CHARS = 100_000
#: Runs a worker serves before it is replaced. One: every run gets a fresh fork of the zygote,
#: so nothing a run leaves behind (patched functions, poisoned stdlib caches, a corrupted heap)
#: can reach another run. Larger values reuse workers and let such state through.
DEFAULT_RUNS_PER_WORKER = 1
#: Seconds the pool's zygote may take to import and warm up its libraries (a cold start is
#: ~0.2 s), and a forked worker to report ready (~10 ms).
DEFAULT_SPAWN_TIMEOUT_S = 60.0
#: Compiled programs each worker keeps, keyed by source text (policy compilation is
#: deterministic, so reuse is safe and saves about a millisecond per repeated snippet).
DEFAULT_COMPILE_CACHE_SIZE = 256
#: Characters of compile results (base64 programs and their sources) the pool's compiler keeps
#: for snippets that recur, as GRPO samples of one prompt often do.
COMPILER_CACHE_CHARS = 8_000_000
#: Seed of the per-run ``random`` / ``numpy.random`` generators when the caller passes none.
DEFAULT_SEED = 0
#: User and group id a worker switches to when started as root (``nobody`` on Debian).
DEFAULT_UNPRIVILEGED_ID = 65534
#: Characters kept of an error message.
MAX_ERROR_CHARS = 1000
#: Largest integer power the ``pow`` builtin and ``**`` compute, in result bits.
MAX_POW_RESULT_BITS = 1_000_000


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-sandbox limits; every field has a module-level ``DEFAULT_*`` constant."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    max_value_chars: int = DEFAULT_MAX_VALUE_CHARS
    max_code_chars: int = DEFAULT_MAX_CODE_CHARS
    runs_per_worker: int = DEFAULT_RUNS_PER_WORKER
    spawn_timeout_s: float = DEFAULT_SPAWN_TIMEOUT_S
    compile_cache_size: int = DEFAULT_COMPILE_CACHE_SIZE
    unprivileged_id: int = DEFAULT_UNPRIVILEGED_ID
    use_seccomp: bool = True
    use_landlock: bool = True
    #: Compile snippets in one locked-down compiler process per pool, which never runs model
    #: code, and send each fresh worker the code object; False compiles in the fresh worker
    #: (compiling touches ~300 pages the fork shares with the zygote: ~1 ms of copy-on-write).
    shared_compiler: bool = True

    def __post_init__(self) -> None:
        positive = {
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "max_output_chars": self.max_output_chars,
            "max_value_chars": self.max_value_chars,
            "max_code_chars": self.max_code_chars,
            "runs_per_worker": self.runs_per_worker,
            "spawn_timeout_s": self.spawn_timeout_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"Limits.{name} must be positive, got {value!r}")
        if self.compile_cache_size < 0:
            raise ValueError("Limits.compile_cache_size must be >= 0")
        if self.unprivileged_id <= 0:
            raise ValueError("Limits.unprivileged_id must be a non-root id")

    @property
    def max_reply_bytes(self) -> int:
        """Largest reply frame the parent accepts from a worker.

        JSON escapes can take 6 bytes per character (``\\u0000``), so the bound is generous;
        the parent checks the decoded field lengths separately.
        """
        chars = self.max_output_chars + self.max_value_chars + MAX_ERROR_CHARS
        return 6 * chars + 4096

    @property
    def max_request_bytes(self) -> int:
        """Largest request frame a worker accepts (UTF-8 source plus envelope)."""
        return 4 * self.max_code_chars + 4096

    @property
    def max_program_chars(self) -> int:
        """Longest compiled program (base64 marshal) the compiler ships in a request; a larger
        one is compiled by the worker that runs it."""
        return 4 * self.max_code_chars

    @property
    def max_compile_reply_bytes(self) -> int:
        """Largest reply frame the parent accepts from the compiler."""
        return self.max_program_chars + 6 * MAX_ERROR_CHARS + 4096

    def to_dict(self) -> dict[str, Any]:
        """The limits as a plain dict (for reports and the worker's command line)."""
        return asdict(self)
