"""``IsolatedTool``: a plugin tool whose ``run`` happens in a worker process, under a time limit.

Tools run in the trainer's process, so a slow or crashing ``run`` stalls or kills training. A
plugin that calls anything whose time it cannot bound (a solver, a parser of model-written text,
a C extension) should subclass :class:`IsolatedTool` instead of :class:`~latent_env.tools.Tool`::

    class Solve(IsolatedTool):
        tag = "solve"
        timeout_s = 2.0

        def run(self, text: str) -> ToolOutput:
            ...  # runs in the worker process

Each block is sent to one persistent worker (a ``spawn``-ed Python that imports the tool's
module once). A block that outruns ``timeout_s`` ends as status "timeout", a worker that dies as
"crashed"; either way the worker is killed and the next block starts a new one. The worker is an
ordinary process of the trainer's user: this bounds time and contains crashes, it is not a
sandbox for untrusted code (``<python>`` blocks have :mod:`latent_env.sandbox` for that). The
instance must pickle (a class defined at module level, with picklable attributes).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any, ClassVar

from latent_env.tools.base import Tool, ToolOutput

#: Seconds one block may run in the worker, as for ``<python>`` blocks in the sandbox.
DEFAULT_ISOLATED_TIMEOUT_S = 2.0
#: Seconds a new worker may take to start and import the tool's module.
WORKER_START_TIMEOUT_S = 60.0


class IsolatedTool(Tool):
    """A :class:`Tool` whose ``run`` executes in a worker process with a per-block timeout."""

    timeout_s: ClassVar[float] = DEFAULT_ISOLATED_TIMEOUT_S

    def safe_run(self, text: str) -> ToolOutput:
        """Run ``run(text)`` in the worker; never raises, never waits past ``timeout_s``."""
        with self._lock():
            start = time.perf_counter()
            try:
                connection = self._connection()
                connection.send(text)
                if not connection.poll(self.timeout_s):
                    self._stop_worker()
                    message = f"TimeoutError: the block ran past the {self.timeout_s:g} s limit"
                    return ToolOutput.failure("timeout", message, self.timeout_s)
                result = connection.recv()
            except (EOFError, OSError) as exc:
                self._stop_worker()
                message = f"WorkerCrashed: the tool's worker died ({type(exc).__name__})"
                return ToolOutput.failure("crashed", message, time.perf_counter() - start)
        if not isinstance(result, ToolOutput):
            message = f"the tool returned {type(result).__name__}, not a ToolOutput"
            return ToolOutput.failure("error", message, time.perf_counter() - start)
        return result

    def close(self) -> None:
        with self._lock():
            self._stop_worker()

    # --- the worker -----------------------------------------------------------------------

    def _lock(self) -> threading.Lock:
        lock = self.__dict__.get("_isolated_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_isolated_lock", threading.Lock())
        return lock

    def _connection(self) -> Any:
        worker = self.__dict__.get("_isolated_worker")
        if worker is not None and worker[0].is_alive():
            return worker[1]
        context = multiprocessing.get_context("spawn")  # no fork of a threaded trainer
        ours, theirs = context.Pipe()
        process = context.Process(target=_serve, args=(theirs, self), daemon=True,
                                  name=f"latent-env-{self.tag}")
        process.start()
        theirs.close()
        if not ours.poll(WORKER_START_TIMEOUT_S) or ours.recv() != "ready":
            process.kill()
            raise OSError("the tool's worker did not start")
        self.__dict__["_isolated_worker"] = (process, ours)
        return ours

    def _stop_worker(self) -> None:
        worker = self.__dict__.pop("_isolated_worker", None)
        if worker is not None:
            process, connection = worker
            process.kill()
            process.join(timeout=5.0)
            connection.close()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_isolated_")}


def _serve(connection: Any, tool: IsolatedTool) -> None:
    """In the worker: answer each text with ``Tool.safe_run`` (the in-process guard)."""
    connection.send("ready")
    while True:
        try:
            text = connection.recv()
        except EOFError:
            return
        connection.send(Tool.safe_run(tool, text))
