"""The worker: runs model code under the policy layer, inside the process layer.

The zygote (:mod:`.zygote`) calls :func:`prepare_runner` once: import and warm up everything
(lazy imports would fail after the privilege drop, since the interpreter lives where ``nobody``
cannot read), then freeze the heap. Each forked worker then runs :func:`become_worker`: take
the request/reply pipes as fds 0/1, close every other fd, :func:`.isolation.lock_down`, report
ready, and serve requests: run a snippet (its source, or the code object the pool's compiler
made from it) or, in a worker that has run nothing, compile one for another worker.

Every run gets fresh globals, fresh ``random``/``numpy.random`` generators from its seed, a new
``decimal`` context, and numpy's default error handling; facades and compiled code objects are
shared but read-only.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import marshal
import mmap
import os
import resource
import sys
import warnings
from collections import OrderedDict
from typing import Any

from .facade_guards import clear_shared_caches
from .facades import RUN_STATE, build_facades, make_import_hook, reset_run_state
from .guards import (
    OutputBuffer,
    OutputLimitExceeded,
    build_builtins,
    build_globals_template,
    iter_exception_lines,
    new_run_globals,
)
from .isolation import inherited_fds, lock_down, preload_isolation
from .limits import COMPILER_CACHE_CHARS, MAX_ERROR_CHARS, Limits
from .policy import LAST_VALUE_NAME, CompileCache, Program, compile_program
from .protocol import ProtocolError, encode_frame, read_frame, write_all

_REQUEST_FD = 0
_REPLY_FD = 1

# Exercises the lazily imported corners of the allowed libraries while imports still work.
WARM_UP_PROGRAM = """
import math, cmath, statistics, fractions, decimal, datetime, itertools, functools
import collections, heapq, bisect, random, operator, string, re, json, typing, dataclasses
import numpy as np
from datetime import date, timedelta
a = np.array([1.0, 2.0, 3.0, 4.0])
print(a, a.mean(), np.polyfit(a, a * 2 + 1, 1).round(3), np.linalg.solve(np.eye(2), a[:2]))
print(np.fft.fft(a)[:1], np.random.rand(2), np.random.default_rng().random(), np.median(a))
print(np.polynomial.Polynomial.fit(a, a, 1), np.percentile(a, 50), np.arange(3).reshape(3, 1))
print(statistics.mean([1, 2]), statistics.median([1, 2, 3]), statistics.stdev([1, 2, 3]))
print(fractions.Fraction(1, 3) + 1, decimal.Decimal(1) / 3, math.sqrt(2), cmath.sqrt(-1))
d = datetime.datetime.strptime("2024-01-02 10:30", "%Y-%m-%d %H:%M")
print(d.strftime("%A %d %B %Y"), date(2024, 1, 1) + timedelta(days=3), d.isoformat())
print(f"{3.14159:.2f} {1234567:,} {0.25:.1%}", "{:>5}".format(1), "%5.1f" % 2.0)
print(collections.Counter("abca").most_common(1), list(itertools.combinations([1, 2], 2)))
print(random.random(), re.findall(r"\\d+", "a1b22"), json.dumps({"a": [1]}), json.loads("[1]"))
print("x".encode("utf-16"), "x".encode("latin-1"), b"x".decode("ascii"))

@dataclasses.dataclass
class Point:
    x: int = 0

print(Point(1), sorted({3: 1, 1: 2}.items(), key=lambda kv: kv[1]))
"""


FORK_WARM_UP_PROGRAM = """
import math, statistics
import numpy as np
values = [1.5, 2.5, 3.5]
print(f"{statistics.mean(values):.2f}", math.sqrt(2), np.array(values).mean())
"""


class Runner:
    """Compiles and executes one snippet at a time."""

    def __init__(self, limits: Limits, *, restricted: bool = True) -> None:
        self._limits = limits
        self._restricted = restricted
        facades = build_facades()
        self._template = build_globals_template(build_builtins(make_import_hook(facades)))
        self._cache = CompileCache(limits.compile_cache_size, restricted=restricted)
        # Address space released on MemoryError so the reply can still be built (RLIMIT_AS
        # counts mappings, not pages); never touched, so no fork copies its page tables.
        self._reserve: mmap.mmap | None = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE)
        # True while the decimal context and numpy's error state are as reset_run_state
        # leaves them: a fork's first run then only needs its seed (saves ~0.2 ms a fork).
        self._state_is_fresh = False
        # The compiler's memory of compile replies (see compile), bounded in characters.
        self._compiled: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._compiled_chars = 0
        self.exhausted = False  # the compiler ran out of memory: it exits after replying

    def warm_up(self) -> None:
        """Run :data:`WARM_UP_PROGRAM` once; it must succeed or the worker is unusable."""
        if not self._restricted:
            return
        reply = self.run(WARM_UP_PROGRAM, seed=0)
        if reply["status"] != "ok":
            raise RuntimeError(f"warm-up failed: {reply['error']}")
        reset_run_state(0)  # the warm-up's decimal flags must not reach the first real run
        self._state_is_fresh = True

    def compile(self, code: str) -> dict[str, Any]:
        """Compile ``code`` for another worker to run: the reply fields (all but the id), the
        program as base64 marshal data. A program is None when it is longer than
        ``limits.max_program_chars`` or when this process ran out of memory compiling it
        (``exhausted`` is then set): either way the run's own worker compiles it, so a result
        never depends on what earlier compiles left here."""
        reply = self._compiled.get(code)
        if reply is not None:
            self._compiled.move_to_end(code)
            return dict(reply)
        try:
            program = compile_program(code, restricted=self._restricted, raise_memory_error=True)
            if program.code is None:
                reply = {"status": "compile_error", "program": None, "error": _clean(program.error)}
            else:
                shipped = base64.b64encode(marshal.dumps(program.code)).decode("ascii")
                if len(shipped) > self._limits.max_program_chars:
                    shipped = None
                reply = {"status": "ok", "program": shipped, "error": None}
        except MemoryError:
            self.exhausted = True
            return compile_it_yourself()
        self._remember(code, reply)
        return dict(reply)

    def _remember(self, code: str, reply: dict[str, Any]) -> None:
        size = _cached_chars(code, reply)
        if size > COMPILER_CACHE_CHARS // 8:
            return  # a few huge programs must not push out every ordinary one
        self._compiled[code] = reply
        self._compiled_chars += size
        while self._compiled_chars > COMPILER_CACHE_CHARS:
            self._compiled_chars -= _cached_chars(*self._compiled.popitem(last=False))

    def run(self, code: str, seed: int, *, program: str | None = None) -> dict[str, Any]:
        """Run ``code`` (or ``program``, the compiler's base64 marshal data for it); return the
        reply fields (all but the request id)."""
        if self._state_is_fresh:
            RUN_STATE.reset(seed)
            self._state_is_fresh = False
        else:
            reset_run_state(seed)
        if program is not None:  # compiled by the pool's compiler from this same policy
            compiled = Program(marshal.loads(base64.b64decode(program)), None)
        else:
            compiled = self._cache.get(code)
        if compiled.code is None:
            return _reply("compile_error", error=compiled.error)
        output = OutputBuffer(self._limits.max_output_chars)
        if self._restricted:
            namespace = new_run_globals(self._template, output)
        else:
            namespace = {"__name__": "__main__"}
        status, error, value = "ok", None, None
        try:
            with contextlib.redirect_stdout(output):  # only raw test mode prints via sys.stdout
                exec(compiled.code, namespace)
                value = self._value_of(namespace)
        except OutputLimitExceeded:
            status = "output_limit"
        except MemoryError as exc:
            if self._reserve is not None:
                self._reserve.close()
                self._reserve = None
            status, error = "memory_error", describe_exception(exc)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from model code, too
            status, error = "error", describe_exception(exc)
        finally:
            namespace.clear()
            # Finalise this run's cyclic garbage now (a suspended generator's ``finally``
            # would otherwise run during some later run, against that run's state). Cheap
            # because everything older is frozen (see main).
            gc.collect()
        if output.exceeded:
            status, value = "output_limit", None
            error = f"OutputLimitExceeded: printed output exceeded {self._limits.max_output_chars}"
            error += " characters"
        return _reply(status, stdout=output.getvalue(), value=value, error=error)

    def _value_of(self, namespace: dict[str, Any]) -> str | None:
        """repr of the final expression, else of ``result``; None when neither is set."""
        value = namespace.get(LAST_VALUE_NAME)
        if value is None:
            value = namespace.get("result")
        if value is None:
            return None
        text = repr(value)
        cap = self._limits.max_value_chars
        return text if len(text) <= cap else text[: cap - 3] + "..."


def compile_it_yourself() -> dict[str, Any]:
    """The compiler's reply that gives no verdict: the run's own worker compiles the source."""
    return {"status": "ok", "program": None, "error": None}


def _cached_chars(code: str, reply: dict[str, Any]) -> int:
    return len(code) + len(reply["program"] or reply["error"] or "")


def describe_exception(exc: BaseException) -> str:
    """One line: ``Type: message (line N)``, N being the innermost model-code line."""
    try:
        message = " ".join(str(exc).split())
    except BaseException:  # a model-defined __str__ may fail in any way
        message = "<message unavailable>"
    lines = list(iter_exception_lines(exc.__traceback__))
    where = f" (line {lines[-1]})" if lines else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text[: MAX_ERROR_CHARS - len(where)] + where


def _clean(text: str | None) -> str | None:
    # Lone surrogates cannot be encoded as UTF-8; replace them rather than fail the reply.
    if text is None or text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _reply(
    status: str, *, stdout: str = "", value: str | None = None, error: str | None = None
) -> dict[str, Any]:
    if error is not None:
        error = error[:MAX_ERROR_CHARS]
    return {
        "status": status,
        "stdout": _clean(stdout),
        "value": _clean(value),
        "error": _clean(error),
    }


# Request shapes: run source, run a compiled program, or compile for another worker.
_REQUEST_KINDS = {
    frozenset({"id", "code", "seed"}): "code",
    frozenset({"id", "program", "seed"}): "program",
    frozenset({"id", "compile"}): "compile",
}


def _parse_request(message: dict[str, Any]) -> tuple[int, str, str, int]:
    """(id, kind, text, seed) of a request; kind is "code", "program" or "compile"."""
    kind = _REQUEST_KINDS.get(frozenset(message))
    if kind is None:
        raise ProtocolError("bad request keys")
    request_id, text, seed = message["id"], message[kind], message.get("seed", 0)
    if type(request_id) is not int or type(text) is not str or type(seed) is not int:
        raise ProtocolError("bad request field types")
    return request_id, kind, text, seed


class _Discard:
    """Stands in for sys.stdout/sys.stderr: fd 1 carries the protocol and must stay clean."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def serve(runner: Runner, limits: Limits) -> int:
    """Answer requests until the parent closes the pipe or ``limits.runs_per_worker`` runs are
    done; non-zero exit on protocol errors. Compile requests are not runs: the pool's compiler
    is a worker that only ever compiles, and a worker that has run model code refuses them
    (what it ran could have changed how it compiles)."""
    runs = 0
    while runs < limits.runs_per_worker:
        try:
            message = read_frame(_REQUEST_FD, limits.max_request_bytes)
            if message is None:
                return 0
            request_id, kind, text, seed = _parse_request(message)
        except ProtocolError:
            return 2
        if kind == "compile" and runs:
            return 2
        runs += kind != "compile"
        reply = _answer(runner, kind, text, seed)
        reply["id"] = request_id
        write_all(_REPLY_FD, encode_frame(reply))
        if runner.exhausted:
            return 0  # a fresh compiler takes over with all of its memory
        if kind != "compile" and limits.runs_per_worker > 1:
            # A reused worker forgets what this run left in library caches before the next
            # request, off the caller's time; a worker that serves one run dies with them.
            clear_shared_caches()
    return 0  # done: exiting now frees the memory before the parent even retires us


def _answer(runner: Runner, kind: str, text: str, seed: int) -> dict[str, Any]:
    try:
        if kind == "compile":
            return runner.compile(text)
        if kind == "program":
            return runner.run("", seed, program=text)
        return runner.run(text, seed)
    except Exception as exc:  # a sandbox bug must cost one request, not the worker
        if kind == "compile":  # no verdict from a failing compiler: the run's worker compiles
            return compile_it_yourself()
        return _reply("error", error=f"SandboxInternalError: {type(exc).__name__}: {exc}")


def prepare_runner(limits: Limits, *, restricted: bool = True) -> Runner:
    """Zygote-side setup shared by every worker it forks."""
    warnings.simplefilter("ignore")  # warnings would go to /dev/null after a linecache lookup
    sys.stdout = sys.stderr = _Discard()  # type: ignore[assignment]
    sys.stdin = None  # type: ignore[assignment]
    runner = Runner(limits, restricted=restricted)
    runner.warm_up()
    preload_isolation(limits)
    gc.collect()
    gc.freeze()  # startup objects are permanent: per-run collections only scan new ones
    return runner


def become_worker(request_fd: int, reply_fd: int, runner: Runner, limits: Limits) -> int:
    """In a freshly forked child: isolate, report ready, serve. Returns the exit status."""
    os.setsid()  # own session and process group, away from the zygote's
    os.dup2(request_fd, _REQUEST_FD)
    os.dup2(reply_fd, _REPLY_FD)
    # fd 2 is the zygote's /dev/null; everything else (control socket, pipe originals) goes,
    # but for what lock_down still needs and closes itself (the Landlock ruleset).
    keep = sorted(fd for fd in inherited_fds() if fd >= 3)
    start = 3
    for fd in [*keep, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]:
        os.closerange(start, fd)
        start = fd + 1
    try:
        report = lock_down(limits, open_fds=3)
        if limits.runs_per_worker > 1:
            # A fork shares the zygote's pages until it writes them (refcounts do): one small
            # run takes those copy-on-write faults now, not during the first real requests. A
            # worker that serves one run would only pay them twice.
            runner.run(FORK_WARM_UP_PROGRAM, seed=0)
    except BaseException as exc:
        hello = {"ready": False, "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]}
        write_all(_REPLY_FD, encode_frame(hello))
        return 1
    write_all(_REPLY_FD, encode_frame({"ready": True, "pid": os.getpid(), "isolation": report}))
    return serve(runner, limits)
