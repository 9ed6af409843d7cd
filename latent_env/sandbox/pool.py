"""The pool: :class:`Sandbox` lends persistent workers to concurrent callers."""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .isolation import host_capabilities
from .limits import DEFAULT_SEED, Limits
from .process import WorkerDied, WorkerProcess, WorkerUnavailable
from .protocol import FrameTimeout, ProtocolError
from .result import ExecResult
from .zygote import Zygote, ZygoteError

#: Worker processes per sandbox: two per core, at most eight. A worker serves one run, so spares
#: forked while others run keep callers from waiting (236-238 snippets/s with four on two cores,
#: 213 with two: benchmarks/RESULTS.md).
DEFAULT_WORKERS = max(1, min(8, 2 * (os.cpu_count() or 1)))
# Statuses after which a worker is replaced rather than reused.
_REPLACE_AFTER = frozenset({"memory_error", "timeout", "crashed"})


def _timed_out(timeout_s: float, started: float, pid: int | None) -> ExecResult:
    return ExecResult(
        "timeout",
        error=f"TimeoutError: execution exceeded the {timeout_s:g} s time limit",
        duration_s=time.perf_counter() - started,
        worker_pid=pid,
    )


class SandboxError(RuntimeError):
    """The sandbox cannot run code (closed, or workers fail to start)."""


class _Slot:
    """A place in the pool; holds at most one worker at a time."""

    __slots__ = ("index", "worker")

    def __init__(self, index: int) -> None:
        self.index = index
        self.worker: WorkerProcess | None = None


class Sandbox:
    """Runs untrusted Python snippets in a pool of isolated worker processes.

    Thread-safe: any number of threads may call :meth:`run` at once; each call borrows one
    worker. Workers are forked from a warm zygote (a few ms each), lazily on first use or all at
    once via :meth:`start`. By default a worker serves one run and is then discarded
    (``limits.runs_per_worker``), and always after a timeout, memory error or crash; its
    successor is forked in the background, so a caller waits only when every worker of the
    pool is still being replaced.
    """

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        limits: Limits | None = None,
        *,
        _unsafe_unrestricted_for_tests: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = limits or Limits()
        self.workers = workers
        # Test-only: workers exec raw Python (no policy layer) to probe the process layer.
        self._unrestricted = _unsafe_unrestricted_for_tests
        self._slots = [_Slot(i) for i in range(workers)]
        self._idle = list(self._slots)
        self._cond = threading.Condition()
        self._closed = False
        self._request_ids = itertools.count(1)
        # Slots waiting for a successor worker, served by one background thread.
        self._refill: queue.SimpleQueue[_Slot | None] = queue.SimpleQueue()
        self._refiller: threading.Thread | None = None
        # The compiler: one long-lived worker that only compiles (Limits.shared_compiler).
        self._compiler: WorkerProcess | None = None
        self._compiler_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._isolation: dict[str, Any] | None = None
        self._zygote: Zygote | None = None
        self._zygote_lock = threading.Lock()

    # --- public API ---------------------------------------------------------------------------

    def run(self, code: str, *, seed: int | None = None) -> ExecResult:
        """Run ``code`` in a worker and report what happened. Never raises for anything the
        code does; raises SandboxError only if the sandbox is closed or cannot start workers."""
        if not isinstance(code, str):
            raise TypeError("code must be a str")
        seed = DEFAULT_SEED if seed is None else int(seed)
        rejected = self._reject_source(code)
        if rejected is not None:
            return rejected
        started = time.perf_counter()
        program = self._compile(code) if self.limits.shared_compiler else None
        if isinstance(program, ExecResult):
            return program
        compile_s = time.perf_counter() - started
        slot = self._checkout()
        replace = True
        try:
            result = self._run_in_slot(slot, code, seed, program, compile_s)
            worker = slot.worker
            replace = (
                result.status in _REPLACE_AFTER
                or worker is None
                or worker.runs >= self.limits.runs_per_worker
            )
            return result
        finally:
            if replace:
                self._replace_worker(slot)
            else:
                self._checkin(slot)

    def run_many(self, codes: Sequence[str], *, seed: int | None = None) -> list[ExecResult]:
        """Run several snippets concurrently across the pool; results keep the input order."""
        executor = self._get_executor()
        return list(executor.map(lambda code: self.run(code, seed=seed), codes))

    def start(self) -> None:
        """Start every missing worker now and wait until all are ready."""
        self._get_zygote()
        slots = []
        with self._cond:
            self._check_open()
            while self._idle:
                slots.append(self._idle.pop())
        try:
            for slot in slots:  # fork them all first: they lock down in parallel
                if slot.worker is None:
                    self._spawn_into(slot, wait=False)
            for slot in slots:
                self._ready_worker(slot)
            if self.limits.shared_compiler:
                with self._compiler_lock:
                    if self._compiler is None:
                        self._compiler = WorkerProcess.fork_from(self._get_zygote(), self.limits)
        except WorkerUnavailable as exc:
            raise SandboxError(str(exc)) from None
        finally:
            for slot in slots:
                self._checkin(slot)

    @property
    def isolation(self) -> dict[str, Any]:
        """What the process layer applied, as reported by the most recent worker (starting
        one if none has run yet), plus which optional host tools exist."""
        if self._isolation is None:
            self.run("pass")
        return {**(self._isolation or {}), "host": host_capabilities()}

    def describe(self) -> dict[str, Any]:
        """Configuration and isolation report, for logs and run metadata."""
        return {
            "workers": self.workers,
            "limits": self.limits.to_dict(),
            "python": sys.executable,
            "policy": "RestrictedPython compile + guards + read-only module facades",
            "process": (f"workers forked from a warm zygote, {self.limits.runs_per_worker} run(s) "
                        "each, then rlimits, uid drop, Landlock, seccomp"),
            "compiler": ("one locked-down worker per pool that only compiles"
                         if self.limits.shared_compiler else "each worker compiles its own run"),
            "isolation": self.isolation,
            "unrestricted_test_mode": self._unrestricted,
        }

    def worker_pids(self) -> list[int]:
        """Pids of the currently running workers (idle or busy)."""
        return [slot.worker.pid for slot in self._slots if slot.worker is not None]

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Kill all workers and the zygote. In-flight runs end as "crashed" (their threads
        clean up their own workers); later runs raise SandboxError."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
            idle = list(self._idle)
            refiller = self._refiller
        for slot in self._slots:
            worker = slot.worker
            if worker is None:
                continue
            if any(slot is other for other in idle):
                worker.kill()
            else:  # busy: signal only; its caller still reads the pipes and then reaps it
                worker.terminate()
        if refiller is not None:
            self._refill.put(None)
            refiller.join(timeout=self.limits.spawn_timeout_s)
        with self._cond:  # in-flight runs return their slots once their worker is dead
            self._cond.wait_for(lambda: len(self._idle) == len(self._slots), timeout=10.0)
        for slot in self._slots:  # a replacement may have landed while we were killing
            if slot.worker is not None:
                slot.worker.kill()
        compiler = self._compiler
        if compiler is not None:
            compiler.terminate()  # an in-flight compile ends now and retires it
        with self._compiler_lock:
            if self._compiler is not None:
                self._compiler.kill()
                self._compiler = None
        with self._zygote_lock:
            if self._zygote is not None:
                self._zygote.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- running ------------------------------------------------------------------------------

    def _reject_source(self, code: str) -> ExecResult | None:
        if len(code) > self.limits.max_code_chars:
            return ExecResult(
                "compile_error",
                error=(
                    f"SourceTooLong: {len(code)} characters (limit {self.limits.max_code_chars})"
                ),
            )
        try:
            code.encode("utf-8")
        except UnicodeEncodeError:
            return ExecResult("compile_error", error="SourceError: code is not valid UTF-8 text")
        return None

    def _run_in_slot(
        self, slot: _Slot, code: str, seed: int, program: str | None, compile_s: float
    ) -> ExecResult:
        for attempt in range(2):
            try:
                worker = self._ready_worker(slot)
            except WorkerUnavailable as exc:
                raise SandboxError(str(exc)) from None
            try:
                return self._request(worker, code, seed, program, compile_s)
            except WorkerUnavailable:
                # The request never reached the worker (it had died while idle): retry once on
                # a fresh worker, since the code itself did nothing wrong.
                worker.kill()
                slot.worker = None
                if attempt:
                    raise SandboxError("sandbox workers keep dying before running code") from None
        raise AssertionError("unreachable")

    def _ready_worker(self, slot: _Slot) -> WorkerProcess:
        """The slot's worker once it has reported ready. A successor forked in the background
        that failed to start is replaced here, and that one's failure is raised."""
        worker = slot.worker or self._spawn_into(slot, wait=False)
        try:
            worker.ensure_ready()
        except WorkerUnavailable:
            slot.worker = None
            worker = self._spawn_into(slot, wait=False)
            worker.ensure_ready()  # a second failure is the worker's own: report it
        self._isolation = worker.isolation
        return worker

    def _request(
        self, worker: WorkerProcess, code: str, seed: int, program: str | None, compile_s: float
    ) -> ExecResult:
        """One run in ``worker``; compiling (``compile_s`` so far) counts against the limit."""
        timeout = self.limits.timeout_s
        started = time.perf_counter() - compile_s
        pid = worker.pid
        try:
            reply = worker.request(
                next(self._request_ids), code, seed, timeout - compile_s, program=program
            )
        except FrameTimeout:
            worker.retire()
            return _timed_out(timeout, started, pid)
        except (ProtocolError, WorkerDied) as exc:
            worker.retire()
            return ExecResult(
                "crashed",
                error=f"WorkerCrashed: {exc}",
                duration_s=time.perf_counter() - started,
                worker_pid=pid,
            )
        return ExecResult(
            reply["status"],
            stdout=reply["stdout"],
            value=reply["value"],
            error=reply["error"],
            duration_s=time.perf_counter() - started,
            worker_pid=pid,
        )

    def _compile(self, code: str) -> str | ExecResult | None:
        """Compile ``code`` in the pool's compiler. Returns the program to send (base64
        marshal data), a result that ends the run (compile error, timeout), or None to let the
        fresh worker compile it: when the compiler is busy (a caller never waits behind another
        caller's compile, which may be adversarially slow), cannot start, crashed, or the
        program is too large to ship."""
        if not self._compiler_lock.acquire(blocking=False):
            return None
        try:
            compiler = self._compiler
            if compiler is None:
                try:
                    compiler = WorkerProcess.fork_from(self._get_zygote(), self.limits)
                except (WorkerUnavailable, SandboxError):
                    return None
                self._compiler = compiler
            started = time.perf_counter()
            try:
                reply = compiler.compile(next(self._request_ids), code, self.limits.timeout_s)
            except FrameTimeout:
                self._compiler = None
                compiler.retire()
                return _timed_out(self.limits.timeout_s, started, compiler.pid)
            except (WorkerUnavailable, WorkerDied, ProtocolError):
                self._compiler = None
                compiler.retire()
                return None  # the run's own worker compiles, and reports what happens
        finally:
            self._compiler_lock.release()
        if reply["status"] == "compile_error":
            return ExecResult(
                "compile_error",
                error=reply["error"],
                duration_s=time.perf_counter() - started,
                worker_pid=compiler.pid,
            )
        program: str | None = reply["program"]
        return program

    # --- slots and workers --------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError("sandbox is closed")

    def _checkout(self) -> _Slot:
        with self._cond:
            while not self._idle:
                self._check_open()
                self._cond.wait()
            self._check_open()
            # Prefer a worker that has reported ready, then one still locking down (oldest
            # first: forked longest ago), then an empty slot.
            forked = None
            for position, slot in enumerate(self._idle):
                if slot.worker is not None:
                    if slot.worker.ready_now():
                        return self._idle.pop(position)
                    forked = position if forked is None else forked
            return self._idle.pop(forked if forked is not None else 0)

    def _checkin(self, slot: _Slot) -> None:
        with self._cond:
            self._idle.append(slot)
            self._cond.notify_all()  # a waiting caller, or close() waiting for all slots

    def _get_zygote(self) -> Zygote:
        """The pool's zygote, (re)started if it is missing or has died."""
        with self._zygote_lock:
            self._check_open()
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    self._zygote.close()
                try:
                    self._zygote = Zygote(self.limits, unrestricted=self._unrestricted)
                except ZygoteError as exc:
                    self._zygote = None
                    raise SandboxError(f"sandbox cannot start: {exc}") from None
            return self._zygote

    def _spawn_into(self, slot: _Slot, *, wait: bool = True) -> WorkerProcess:
        """Fork a worker into ``slot`` (waiting for it to be ready only with ``wait``)."""
        self._check_open()
        for attempt in range(2):
            zygote = self._get_zygote()
            try:
                worker = WorkerProcess.fork_from(zygote, self.limits, wait=wait)
                break
            except WorkerUnavailable as exc:
                if zygote.alive or attempt:  # the worker itself failed: report it
                    raise SandboxError(str(exc)) from None
        slot.worker = worker
        if wait:
            self._isolation = worker.isolation
        if self._closed:  # close() ran while we were spawning
            worker.kill()
        return worker

    def _replace_worker(self, slot: _Slot) -> None:
        """Retire the slot's worker and have its successor forked in the background; the slot
        returns to the pool as soon as the successor is forked (it locks itself down while the
        slot waits to be lent), or empty, to be retried on checkout."""
        retired, slot.worker = slot.worker, None
        if retired is not None:
            retired.retire()
        with self._cond:
            if self._closed:
                self._idle.append(slot)
                self._cond.notify_all()  # close() may be waiting for in-flight runs
                return
            if self._refiller is None:
                self._refiller = threading.Thread(
                    target=self._refill_slots, daemon=True, name="sandbox-refill"
                )
                self._refiller.start()
            self._refill.put(slot)  # under the lock: close() queues its sentinel after it

    def _refill_slots(self) -> None:
        while (slot := self._refill.get()) is not None:
            try:
                self._spawn_into(slot, wait=False)
            except SandboxError:
                slot.worker = None  # the next checkout retries and reports the failure
            finally:
                self._checkin(slot)

    def _get_executor(self) -> ThreadPoolExecutor:
        with self._cond:
            self._check_open()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="sandbox")
            return self._executor
