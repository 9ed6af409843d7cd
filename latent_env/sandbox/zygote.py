"""The zygote: one warm, trusted process per pool that forks new workers in milliseconds.

Starting a worker from scratch costs ~150 ms of CPU (interpreter, numpy, RestrictedPython,
facades, warm-up); a timeout, memory error or recycle needs a new one. So each pool starts one
zygote (``python -I`` in its own session, minimal environment, cwd ``/``) that does all of that
once and then only forks. The zygote never runs model code and never drops root; every fork
becomes a worker that locks itself down (:func:`.worker.become_worker`) before it reads a
request. Forked workers share the zygote's hash seed, so string hashing (``set`` order) is the
same in every worker of a pool.

Control channel (a Unix socket pair, the zygote's end passed as an fd): the parent sends
``b"S"`` with two fds attached (the new worker's request-pipe read end and reply-pipe write end)
and gets back a frame ``{"pid": n}``; it sends ``b"W"`` plus a 4-byte pid and a 4-byte timeout in
ms to wait for a worker's end, and gets ``{"status": raw wait status or None if still running}``.

The zygote reaps every exited worker at each message and keeps the last :data:`_KEPT_STATUSES`
statuses for ``W``, so retiring a worker costs the parent no round trip: it signals through a
pidfd, which names one process and can never hit a recycled pid. Without pidfds (Linux < 5.3)
the parent asks ``W`` before it forgets a worker, as the only safe order is signal, then reap.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .limits import MAX_ERROR_CHARS, Limits
from .protocol import FrameTimeout, ProtocolError, encode_frame, read_frame, write_all

if TYPE_CHECKING:
    from .worker import Runner

PACKAGE_DIR = Path(__file__).resolve().parent
# Load this package as "_latent_sandbox" without running latent_env/__init__.py (which may
# import heavy parts of the project), then hand over to zygote_main.
_BOOTSTRAP = (
    "import sys, types\n"
    "package = types.ModuleType('_latent_sandbox')\n"
    "package.__path__ = [sys.argv[1]]\n"
    "sys.modules['_latent_sandbox'] = package\n"
    "from _latent_sandbox.zygote import zygote_main\n"
    "sys.exit(zygote_main(sys.argv[2:]))\n"
)
# Single-threaded BLAS: threads would count against RLIMIT_NPROC and add nothing on 2 cores.
_ZYGOTE_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
_SPAWN = b"S"
_WAIT = b"W"
_WAIT_ARGS = struct.Struct(">iI")
_MAX_CONTROL_FRAME = 1 << 16
# Exit statuses of reaped workers that the parent has not asked for (it asks only to describe a
# crash); the oldest are dropped first.
_KEPT_STATUSES = 512


class ZygoteError(Exception):
    """The zygote could not be started or stopped answering."""


class Zygote:
    """Parent-side handle on a zygote process. Thread-safe."""

    def __init__(self, limits: Limits, *, unrestricted: bool = False) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._broken = False
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        #: Whether workers get pidfds; only then may the zygote reap them before being asked.
        self.pidfds = _have_pidfds()
        config = json.dumps(
            {"limits": limits.to_dict(), "unrestricted": unrestricted, "reap": self.pidfds}
        )
        with theirs, _startup_errors(ours):
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-c",
                    _BOOTSTRAP,
                    str(PACKAGE_DIR),
                    str(theirs.fileno()),
                    config,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
                start_new_session=True,
                env=_ZYGOTE_ENV,
                cwd="/",
            )
        self._sock = ours
        try:
            ready = self._read(limits.spawn_timeout_s)
        except ZygoteError:
            self.close()
            raise
        if ready.get("ready") is not True:
            self.close()
            raise ZygoteError(str(ready.get("error", "zygote failed to start"))[:MAX_ERROR_CHARS])

    @property
    def alive(self) -> bool:
        """False once the zygote has exited or stopped answering."""
        return not self._broken and self._proc.poll() is None

    def fork_worker(self) -> tuple[int, int, int, int | None]:
        """Fork a worker; returns (pid, fd to write requests, fd to read replies, pidfd).

        The caller reads the worker's ready message from the reply fd. The pidfd (None without
        kernel support) is opened before the zygote handles another message, so before it can
        reap this worker and let its pid be reused. On error the worker, if any, reads EOF and
        exits by itself.
        """
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._sock, [_SPAWN], [request_read, reply_write])
                except OSError as exc:
                    self._broken = True
                    raise ZygoteError(f"zygote unreachable: {exc}") from None
                answer = self._read(self.limits.spawn_timeout_s)
                pid = answer.get("pid")
                if type(pid) is not int or pid <= 0:
                    raise ZygoteError(f"zygote could not fork: {answer.get('error', answer)}")
                try:
                    pidfd = os.pidfd_open(pid) if self.pidfds else None
                except OSError as exc:
                    raise ZygoteError(f"no pidfd for the new worker: {exc}") from None
        except BaseException:
            for fd in (request_write, reply_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(reply_write)
        return pid, request_write, reply_read, pidfd

    def wait(self, pid: int, timeout_s: float) -> int | None:
        """Reap worker ``pid``: its raw wait status, or None if it is still running."""
        message = _WAIT + _WAIT_ARGS.pack(pid, int(timeout_s * 1000))
        with self._lock:
            try:
                self._sock.sendall(message)
                answer = self._read(timeout_s + 5.0)
            except (OSError, ZygoteError):
                self._broken = True
                return None
        status = answer.get("status")
        return status if type(status) is int else None

    def close(self) -> None:
        """Stop the zygote (its already forked workers are not affected)."""
        self._sock.close()
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._proc.wait()

    def _read(self, timeout_s: float) -> dict[str, Any]:
        try:
            message = read_frame(
                self._sock.fileno(), _MAX_CONTROL_FRAME, time.monotonic() + timeout_s
            )
        except (FrameTimeout, ProtocolError, OSError) as exc:
            self._broken = True
            raise ZygoteError(f"zygote did not answer ({type(exc).__name__})") from None
        if message is None:
            self._broken = True
            raise ZygoteError("zygote exited")
        return message


def _have_pidfds() -> bool:
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


@contextlib.contextmanager
def _startup_errors(sock: socket.socket) -> Iterator[None]:
    """Turn a failure to launch the interpreter into ZygoteError."""
    try:
        yield
    except OSError as exc:
        sock.close()
        raise ZygoteError(f"cannot launch {sys.executable}: {exc}") from None


# --- inside the zygote process ----------------------------------------------------------------


def zygote_main(argv: list[str]) -> int:
    """Zygote entry point: ``argv`` is [control fd, JSON config]."""
    control = socket.socket(fileno=int(argv[0]))
    config = json.loads(argv[1])
    limits = Limits(**config["limits"])
    try:
        # Imported here, not at module level: the parent imports this module for Zygote and
        # must not pay for numpy and the policy layer.
        from .worker import prepare_runner

        runner = prepare_runner(limits, restricted=not config["unrestricted"])
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        write_all(control.fileno(), encode_frame({"ready": False, "error": error}))
        return 1
    write_all(control.fileno(), encode_frame({"ready": True}))
    statuses: dict[int, int] = {}
    reap = config["reap"] is True
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(control, 1, 2)
        except OSError:
            return 1
        if not data:
            return 0  # the pool is gone
        if reap:
            _reap_exited(statuses)
        if data == _SPAWN and len(fds) == 2:
            reply = _fork(control, fds, runner, limits)
            statuses.pop(reply.get("pid", 0), None)  # a recycled pid's old status is not its own
        elif data == _WAIT:
            try:
                pid, timeout_ms = _WAIT_ARGS.unpack(_recv_exact(control, _WAIT_ARGS.size))
            except EOFError:
                return 0
            reply = {"status": _wait_for(pid, timeout_ms / 1000, statuses)}
        else:
            reply = {"error": "bad control message"}
        for fd in fds:
            os.close(fd)
        write_all(control.fileno(), encode_frame(reply))


def _fork(control: socket.socket, fds: list[int], runner: Runner, limits: Limits) -> dict[str, Any]:
    from .worker import become_worker  # already loaded by prepare_runner

    try:
        pid = os.fork()
    except OSError as exc:
        return {"error": f"fork failed: {exc}"}
    if pid == 0:  # the new worker; never returns into the zygote loop
        code = 1
        try:
            control.close()
            code = become_worker(fds[0], fds[1], runner, limits)
        finally:
            os._exit(code)
    return {"pid": pid}


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("control channel closed")
        data += chunk
    return data


def _reap_exited(statuses: dict[int, int]) -> None:
    """Collect every worker that has exited, keeping its status for a later ``W``."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        statuses[pid] = status
        if len(statuses) > _KEPT_STATUSES:
            del statuses[next(iter(statuses))]


def _wait_for(pid: int, timeout_s: float, statuses: dict[int, int]) -> int | None:
    """Wait up to ``timeout_s`` for worker ``pid`` to exit; its wait status, or None.

    The wait polls a pidfd where the kernel has them (a just-killed worker is reaped in
    microseconds, not at the next tick of a sleep loop).
    """
    if pid in statuses:
        return statuses.pop(pid)
    deadline = time.monotonic() + timeout_s
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return statuses.pop(pid, None)  # not ours, or reaped and its status dropped
            if done:
                return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if pidfd is None:
                time.sleep(min(0.001, remaining))
            else:
                select.select([pidfd], [], [], remaining)
    finally:
        if pidfd is not None:
            os.close(pidfd)
