"""Parent-side handle on one worker process: fork it, request/reply with a deadline, kill it.

Workers are forked by the pool's :class:`.zygote.Zygote` and lock themselves down before
saying they are ready; the pool forks successors ahead of need and reads that ready message
when it first lends the worker (:meth:`WorkerProcess.ensure_ready`). The wall-clock deadline is enforced here, outside the worker: a C-level
loop holds the GIL, so nothing inside the worker could interrupt it. On a timeout or protocol
violation the worker gets SIGKILL, sent through a pidfd where the kernel has them, so a recycled
pid can never be hit.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from typing import Any

from .limits import MAX_ERROR_CHARS, Limits
from .protocol import (
    FrameTimeout,
    ProtocolError,
    encode_frame,
    read_frame,
    validate_compile_reply,
    validate_reply,
    write_all,
)
from .zygote import Zygote, ZygoteError

_MAX_HELLO_BYTES = 1 << 16
_REAP_TIMEOUT_S = 5.0


class WorkerUnavailable(Exception):
    """The worker could not be started, or died before receiving a request."""


class WorkerDied(Exception):
    """The worker's reply stream ended (it crashed or was killed)."""


class WorkerProcess:
    """One running worker. Not thread-safe: the pool lends it to one caller at a time."""

    def __init__(
        self,
        pid: int,
        request_fd: int,
        reply_fd: int,
        zygote: Zygote,
        limits: Limits,
        pidfd: int | None = None,
    ) -> None:
        self.pid = pid
        self.limits = limits
        self.isolation: dict[str, Any] = {}
        self.runs = 0
        self._request_fd = request_fd
        self._reply_fd = reply_fd
        self._zygote = zygote
        self._status: int | None = None  # wait status once reaped
        self._reaped = False
        self._ready = False
        self._ready_by = time.monotonic() + limits.spawn_timeout_s
        self._pidfd = pidfd

    @classmethod
    def fork_from(cls, zygote: Zygote, limits: Limits, *, wait: bool = True) -> WorkerProcess:
        """Fork a worker; with ``wait``, also wait until it reports ready.

        Raises WorkerUnavailable if it cannot be forked or (with ``wait``) does not start."""
        try:
            pid, request_fd, reply_fd, pidfd = zygote.fork_worker()
        except ZygoteError as exc:
            raise WorkerUnavailable(str(exc)) from None
        worker = cls(pid, request_fd, reply_fd, zygote, limits, pidfd)
        if wait:
            worker.ensure_ready()
        return worker

    def ready_now(self) -> bool:
        """True if the worker has reported ready (its message may still be unread)."""
        if not self._ready:
            poller = select.poll()
            poller.register(self._reply_fd, select.POLLIN)
            return bool(poller.poll(0))
        return True

    def ensure_ready(self) -> None:
        """Read the worker's ready message (once), waiting until the spawn deadline; raise
        WorkerUnavailable, with the worker killed, if it failed to start."""
        if self._ready:
            return
        try:
            hello = read_frame(self._reply_fd, _MAX_HELLO_BYTES, self._ready_by)
            self.isolation = _check_hello(hello, self.pid)
        except (FrameTimeout, ProtocolError, WorkerUnavailable) as exc:
            self.kill()
            reason = "did not start in time" if isinstance(exc, FrameTimeout) else str(exc)
            raise WorkerUnavailable(f"sandbox worker failed to start: {reason}") from None
        for fd in (self._request_fd, self._reply_fd):
            os.set_blocking(fd, False)
        self._ready = True

    def request(
        self,
        request_id: int,
        code: str,
        seed: int,
        timeout_s: float,
        *,
        program: str | None = None,
    ) -> dict[str, Any]:
        """Send one run (of ``code``, or of ``program`` compiled from it by the pool's
        compiler) and wait for its validated reply.

        Raises WorkerUnavailable if the request could not be delivered (the code never ran),
        FrameTimeout past the deadline, ProtocolError for a bad reply, WorkerDied on EOF.
        """
        body = {"id": request_id, "seed": seed}
        body.update({"code": code} if program is None else {"program": program})
        self.runs += 1
        message = self._exchange(body, timeout_s, self.limits.max_reply_bytes)
        return validate_reply(
            message,
            request_id=request_id,
            max_output_chars=self.limits.max_output_chars,
            max_value_chars=self.limits.max_value_chars,
            max_error_chars=MAX_ERROR_CHARS,
        )

    def compile(self, request_id: int, code: str, timeout_s: float) -> dict[str, Any]:
        """Have this worker compile ``code`` for another one (same errors as :meth:`request`);
        the validated reply, ``program`` being base64 marshal data or None."""
        message = self._exchange(
            {"id": request_id, "compile": code}, timeout_s, self.limits.max_compile_reply_bytes
        )
        return validate_compile_reply(
            message,
            request_id=request_id,
            max_program_chars=self.limits.max_program_chars,
            max_error_chars=MAX_ERROR_CHARS,
        )

    def _exchange(self, body: dict[str, Any], timeout_s: float, max_reply: int) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        try:
            write_all(self._request_fd, encode_frame(body), deadline)
        except (BrokenPipeError, ConnectionResetError):
            raise WorkerUnavailable("worker exited before the request was delivered") from None
        message = read_frame(self._reply_fd, max_reply, deadline)
        if message is None:
            raise WorkerDied(self.exit_description())
        return message

    def exit_description(self) -> str:
        """How the worker ended, e.g. "worker killed by SIGSEGV" (waits up to 1 s for it)."""
        status = self._reap(1.0)
        if status is None:
            return "worker closed its reply pipe"
        code = os.waitstatus_to_exitcode(status)
        if code < 0:
            try:
                return f"worker killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"worker killed by signal {-code}"
        return f"worker exited with status {code}"

    def terminate(self) -> None:
        """SIGKILL the worker without touching its pipes (safe while another thread uses
        them); :meth:`kill` still has to follow."""
        if not self._reaped:
            with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)

    def retire(self) -> None:
        """Let go of a worker that is done: SIGKILL and close its pipes without waiting. The
        zygote reaps it. Without a pidfd the pid must be reaped before it is forgotten, so
        this is :meth:`kill`."""
        if self._pidfd is None:
            self.kill()
            return
        self.terminate()
        self._reaped = True  # the zygote collects it; never signal this worker again
        self._close_fds()

    def kill(self) -> None:
        """SIGKILL the worker, reap it and close its pipes. Idempotent."""
        if not self._reaped:
            self.terminate()
            self._reap(_REAP_TIMEOUT_S)
            self._reaped = True  # even if the zygote is gone: never signal this pid again
        self._close_fds()

    def _close_fds(self) -> None:
        for attr in ("_request_fd", "_reply_fd", "_pidfd"):
            fd = getattr(self, attr)
            if fd is not None and fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, attr, -1 if attr != "_pidfd" else None)

    def _reap(self, timeout_s: float) -> int | None:
        if not self._reaped:
            status = self._zygote.wait(self.pid, timeout_s)
            if status is not None:
                self._status, self._reaped = status, True
        return self._status


def _check_hello(hello: dict[str, Any] | None, pid: int) -> dict[str, Any]:
    if hello is None:
        raise WorkerUnavailable("worker exited during startup")
    if hello.get("ready") is not True:
        raise WorkerUnavailable(str(hello.get("error", "no ready message"))[:MAX_ERROR_CHARS])
    isolation = hello.get("isolation")
    if hello.get("pid") != pid or not isinstance(isolation, dict):
        raise WorkerUnavailable("malformed ready message")
    return isolation
