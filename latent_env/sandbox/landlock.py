"""Landlock: an unprivileged Linux security module that lets a process give up file access.

The zygote creates a ruleset that *handles* every access right its kernel knows and adds no
rule granting any; each worker restricts itself with it: from then on it can open, create, remove or execute no
file or directory anywhere (``/proc`` included), whatever its uid or free fds. Files opened
before (the protocol pipes, ``/dev/null``) keep working. From ABI 4 the ruleset also handles TCP
bind/connect, and from ABI 6 it scopes signals and abstract Unix sockets to the worker itself.

Raw syscalls through ctypes (the numbers are the same on every architecture but alpha); no
library is needed. Where the kernel lacks Landlock, :func:`restrict_self` says so and changes
nothing.
"""

from __future__ import annotations

import ctypes
import os

_SYS_CREATE_RULESET = 444
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights by the ABI version that introduced them (linux/landlock.h).
_FS_RIGHTS_V1 = (1 << 13) - 1  # execute, write/read file, read dir, remove, make 7 kinds
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


#: The C library, loaded once (in the zygote, before workers fork from it).
LIBC = ctypes.CDLL(None, use_errno=True)


class _RulesetAttr(ctypes.Structure):
    """``struct landlock_ruleset_attr``; the kernel reads only the fields its ABI knows."""

    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def _syscall(*args: int | ctypes._Pointer | None) -> tuple[int, int]:
    result = LIBC.syscall(*args)
    return result, ctypes.get_errno()


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 where Landlock is missing or disabled."""
    version, _ = _syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    return max(version, 0)


def ruleset_for(abi: int) -> _RulesetAttr:
    """Everything ABI ``abi`` can deny, handled (and so denied, since no rule grants it)."""
    fs = _FS_RIGHTS_V1
    if abi >= 2:
        fs |= _FS_REFER
    if abi >= 3:
        fs |= _FS_TRUNCATE
    if abi >= 5:
        fs |= _FS_IOCTL_DEV
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    return _RulesetAttr(fs, net, scoped)


def prepare() -> tuple[int | None, str]:
    """In the zygote: create the ruleset once. Returns its fd (None where Landlock is missing)
    and what enforcing it means, for the isolation report.

    Every worker forked afterwards inherits the fd and enforces it with :func:`enforce`, which
    makes a domain of its own; building the ruleset in each worker cost ~0.25 ms.
    """
    abi = abi_version()
    if abi == 0:
        return None, "unavailable: the kernel has no Landlock (file reads rest on seccomp and the uid)"
    attr = ruleset_for(abi)
    size = ctypes.sizeof(ctypes.c_uint64) * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    fd, error = _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if fd < 0:
        return None, f"unavailable: creating the ruleset failed ({os.strerror(error)})"
    scope = ", TCP" if abi >= 4 else ""
    scope += ", signals and abstract sockets outside the worker" if abi >= 6 else ""
    return fd, f"active: ABI {abi}, every file access denied{scope}"


def enforce(fd: int) -> str | None:
    """In a worker: deny this process (and anything it could start) all file access with the
    zygote's ruleset ``fd``, then close that fd (rules added through it would reach every later
    worker). Returns None on success, else why it failed."""
    try:
        if LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return f"unavailable: no_new_privs refused ({os.strerror(ctypes.get_errno())})"
        done, error = _syscall(_SYS_RESTRICT_SELF, fd, 0)
        if done != 0:
            return f"unavailable: restrict_self failed ({os.strerror(error)})"
        return None
    finally:
        os.close(fd)
