"""A process-wide shared sandbox, so tools in one process share one pool of workers."""

from __future__ import annotations

import atexit
import threading

from .pool import Sandbox

_lock = threading.Lock()
_shared: Sandbox | None = None
_atexit_registered = False


def get_default_sandbox() -> Sandbox:
    """The shared :class:`Sandbox` (default workers and limits), created on first use and
    closed when the interpreter exits. A closed one is replaced by a fresh one."""
    global _shared, _atexit_registered
    with _lock:
        if _shared is None or _shared.closed:
            _shared = Sandbox()
        if not _atexit_registered:
            atexit.register(close_default_sandbox)
            _atexit_registered = True
        return _shared


def close_default_sandbox() -> None:
    """Close the shared sandbox if one exists (registered with atexit)."""
    global _shared
    with _lock:
        if _shared is not None:
            _shared.close()
            _shared = None
