"""Safe, fast execution of Python written by an LLM policy.

An RL policy probes every hole, and an escape is not only a security breach but reward hacking
(forged outputs). RestrictedPython's own README says it is not a sandbox, so this package
stacks two independent layers, and the caller's process never executes model code.

Usage::

    from latent_env.sandbox import Sandbox, Limits, ExecResult

    with Sandbox(workers=2, limits=Limits(timeout_s=2.0)) as sandbox:
        result = sandbox.run("import numpy as np\\nnp.polyfit([1, 2, 3], [2, 4, 6], 1)")
        result.status, result.stdout, result.value, result.error, result.duration_s
        sandbox.run_many(["1 + 1", "sum(range(10))"])  # concurrently across the pool

    get_default_sandbox()  # one shared pool per process, closed at exit

``ExecResult.status`` is one of "ok", "error", "compile_error", "timeout", "memory_error",
"output_limit", "crashed". ``value`` is the repr of the final expression statement, else of a
variable named ``result`` (None if neither or if the value is None); ``error`` is one line,
``"ExcType: message (line N)"``, with no worker traceback.

Policy layer (:mod:`.policy`, :mod:`.guards`, :mod:`.facades`, :mod:`.facade_guards`,
:mod:`.output`)
    Code is compiled with RestrictedPython 9 (``compile_restricted_exec``) plus local
    relaxations for everyday code (``x[k] += v``, ``self.n += 1``, annotated assignments,
    ``if __name__ == "__main__":``, common dunder methods, ``super().__init__``). Guards
    (``_getattr_`` raises on private names, frame/generator internals, ``mro``, Cython's
    ``func_*`` aliases, numpy's ``ctypes``/``dump*``/``tofile``/``resize``; what an attribute or
    item read finds is checked too: never a module, frame, code object or traceback, nor a
    memoryview of object pointers, no ABC ``register``, and ``str.format`` in any guise (bound,
    unbound, ``UserString``, ``super()``) resolves fields through the same guard; ``_write_``
    only lets code modify what it made plus plain containers; ``**`` and ``pow`` refuse integer
    results over a million bits; ``print`` writes to a capped buffer). Builtins are a safe set
    without ``type``, ``vars``, ``globals``, ``open``, ``compile``, ``eval``, ``exec``, ``id``,
    ``input``, ``exit``. ``import`` hands out read-only facades, never modules: math, cmath,
    statistics, fractions, decimal, datetime, itertools, functools (no singledispatch: it evals
    annotations; ``update_wrapper``/``wraps`` copy only their standard attribute lists, values
    of their usual kinds; ``cached_property`` stores only under public names), collections,
    heapq, bisect, random (a generator seeded per run), operator (no
    attrgetter/methodcaller/setitem/delitem), string (constants), re (no ``RegexFlag``), json,
    typing, dataclasses (``replace``/``asdict``/``astuple`` read fields through the guard), and
    numpy with linalg, fft, polynomial and a per-run seeded random (no file I/O, pickles,
    ctypes, lib, testing, memmap, global print/error settings; ``np.ndarray`` over a buffer
    checks the offset and refuses buffers of object pointers). Nothing is pre-bound:
    ``mean(...)`` without an import is a NameError. Checked versions of library functions live
    in :mod:`.facade_guards`.

Process layer (:mod:`.zygote`, :mod:`.process`, :mod:`.isolation`, :mod:`.landlock`,
:mod:`.worker`, :mod:`.protocol`)
    Each pool starts one zygote (``python -I``, minimal environment, own session, cwd ``/``)
    that imports and warms up everything once, compiles the seccomp filter once, and never runs
    model code. **Every run gets a worker freshly forked from it** (``runs_per_worker`` 1): the
    worker serves that one run and is killed, so nothing a run changes (a patched function of
    the worker, a poisoned ``re``/``strptime``/``typing`` cache, a corrupted heap) reaches
    another run; the pool forks each successor in the background. A new worker takes the two
    protocol pipes as its only fds (plus /dev/null), starts its own session, then restricts
    itself with Landlock (every file right handled and none granted: no file or directory can
    be opened, created or listed, ``/proc`` included; no TCP; from ABI 6 no signals or abstract
    sockets outside itself), applies RLIMIT_AS (``memory_mb``), RLIMIT_CPU (a backstop),
    RLIMIT_FSIZE 0, RLIMIT_NOFILE = the fds already open (no new files, sockets or pipes),
    RLIMIT_NPROC 0 and RLIMIT_CORE 0; when started as root it switches to uid/gid 65534
    (``nobody``), so the parent cannot be signalled or traced; and when the system's
    libseccomp is present it installs the zygote's seccomp filter: EACCES for every ``open``,
    EPERM for sockets, exec, fork-style clone, ptrace, every signal-sending call, rlimit
    changes, mounts, namespaces, filesystem changes and more. The parent enforces the
    wall-clock deadline from outside (SIGKILL via a pidfd: a C loop holding the GIL cannot be
    interrupted from within). Requests and replies are length-prefixed JSON (never pickle)
    with size caps on both sides; every reply's schema is validated and any violation kills the
    worker ("crashed"). The zygote does once what is the same for every worker (the Landlock
    ruleset, the compiled seccomp program) and reaps exited workers itself, so retiring one is a
    pidfd signal; one background thread forks successors, which lock down while their slot
    waits to be lent.

Compiler (``Limits.shared_compiler``, on by default)
    Compiling in a fresh fork costs ~1 ms of copy-on-write faults (the compiler's objects live
    in pages shared with the zygote), so each pool keeps one more worker, locked down the same
    way, that only compiles: the caller sends it the source, then sends the fresh worker the
    marshalled code object. It never runs model code (a worker that has run code refuses to
    compile), keeps a character-bounded cache for recurring snippets, exits after running out
    of memory (that program is compiled by its own worker), and is never waited for: a caller
    that finds it busy has its worker compile.

Isolation detected
    Reported at run time by ``Sandbox.isolation`` / ``Sandbox.describe()`` (what the worker
    actually applied, plus the host's Landlock ABI and whether libseccomp and bubblewrap exist).
    On the development machine (Linux 6.18 Firecracker VM, running as root): Landlock ABI 7
    active, uid drop to 65534 applied, seccomp active through ``libseccomp.so.2`` via ctypes
    (no Python binding installed), bubblewrap absent (not used). Where Landlock or libseccomp
    is missing, the report says so and the other wall still denies file opens; without both,
    code that escaped the policy layer could read what uid 65534 may read after closing one of
    its fds; without root the uid stays the caller's.

Limits (:mod:`.limits`, each a documented ``DEFAULT_*`` constant)
    ``timeout_s`` 2.0, ``memory_mb`` 512 (a warm worker maps ~145 MiB), ``max_output_chars``
    4000, ``max_value_chars`` 4000, ``max_code_chars`` 100000, ``runs_per_worker`` 1,
    ``spawn_timeout_s`` 60, ``compile_cache_size`` 256.

Known limits of the design: string hashing is seeded per zygote (``-I`` ignores
PYTHONHASHSEED), so ``set`` iteration order of strings is the same for all workers of one pool
but can differ between pools and processes; output printed before a timeout is lost with the
killed worker; ``match`` statements, ``except*``, ``async``, ``nonlocal`` and ``metaclass=`` are
refused at compile time; subclasses of ``np.ndarray`` built by model code construct plain
arrays. Linux only (procfs, rlimits, pidfds, seccomp).
"""

from __future__ import annotations

from .default import close_default_sandbox, get_default_sandbox
from .limits import (
    DEFAULT_MAX_CODE_CHARS,
    DEFAULT_MAX_OUTPUT_CHARS,
    DEFAULT_MAX_VALUE_CHARS,
    DEFAULT_MEMORY_MB,
    DEFAULT_RUNS_PER_WORKER,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT_S,
    Limits,
)
from .pool import DEFAULT_WORKERS, Sandbox, SandboxError
from .result import STATUSES, ExecResult

__all__ = [
    "DEFAULT_MAX_CODE_CHARS",
    "DEFAULT_MAX_OUTPUT_CHARS",
    "DEFAULT_MAX_VALUE_CHARS",
    "DEFAULT_MEMORY_MB",
    "DEFAULT_RUNS_PER_WORKER",
    "DEFAULT_SEED",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_WORKERS",
    "STATUSES",
    "ExecResult",
    "Limits",
    "Sandbox",
    "SandboxError",
    "close_default_sandbox",
    "get_default_sandbox",
]
