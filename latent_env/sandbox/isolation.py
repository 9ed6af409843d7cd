"""Process layer, inside the worker: resource limits, dropping root, and a seccomp filter.

:func:`lock_down` runs once per worker after every library is imported (the interpreter lives
under ``/root`` here, which ``nobody`` cannot read, so nothing may be imported afterwards) and
before any model code. It returns a report of what was actually applied; the pool publishes it
as ``Sandbox.isolation``.

What each piece stops:

* RLIMIT_AS (``memory_mb``): allocation bombs raise MemoryError instead of eating the host.
* RLIMIT_CPU: a backstop if the parent's wall-clock kill never comes (re-armed per run).
* RLIMIT_FSIZE 0 (SIGXFSZ ignored, so writes fail with EFBIG) and RLIMIT_NOFILE = the number of
  fds already open (the request/reply pipes and /dev/null): no new files, sockets or pipes.
* RLIMIT_NPROC 0 plus a different uid: no fork, no threads (the count is per uid, and root
  would be exempt); the uid also makes signals and ptrace against the parent fail.
* seccomp (via the system's libseccomp, when present): EPERM for sockets, exec, fork-style
  clone, ptrace, signals to other processes, mounts, namespaces, filesystem changes and other
  kernel attack surface, as a second wall behind the uid and rlimits.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import math
import os
import resource
import shutil
import signal
from typing import Any

from .limits import Limits

_CLONE_THREAD = 0x00010000
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE = 1
_SCMP_CMP_MASKED_EQ = 7
_PR_GET_NO_NEW_PRIVS = 39

# Denied with EPERM. Names unknown on this architecture are skipped.
_DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
    "sendmsg", "sendmmsg", "execve", "execveat", "fork", "vfork", "ptrace",
    "process_vm_readv", "process_vm_writev", "tkill", "pidfd_open", "pidfd_send_signal",
    "pidfd_getfd", "kcmp", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "open_by_handle_at", "name_to_handle_at", "memfd_create", "mknod", "mknodat", "link",
    "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "mkdir", "mkdirat", "rmdir", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown",
    "fchownat", "truncate", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "setfsuid", "setfsgid", "personality", "acct", "quotactl",
    "settimeofday", "clock_settime", "adjtimex", "sethostname", "setdomainname", "iopl",
    "ioperm", "fanotify_init", "move_pages", "migrate_pages",
)  # fmt: skip


def lock_down(limits: Limits) -> dict[str, Any]:
    """Apply every process-level restriction available; return what was applied."""
    report: dict[str, Any] = {"baseline_vm_mb": _vm_size_mb()}
    if report["baseline_vm_mb"] + 32 > limits.memory_mb:
        raise RuntimeError(
            f"memory_mb={limits.memory_mb} leaves no room: a warm worker already maps "
            f"{report['baseline_vm_mb']} MiB"
        )
    seccomp_filter: _SeccompFilter | str = (
        _build_seccomp_filter() if limits.use_seccomp else "disabled by Limits.use_seccomp"
    )
    report["rlimits"] = _apply_rlimits(limits)
    report.update(_drop_privileges(limits.unprivileged_id))
    report["seccomp"] = _load_seccomp(seccomp_filter)
    report["no_new_privs"] = _no_new_privs()
    return report


def arm_cpu_limit(timeout_s: float) -> None:
    """Before each run, set the soft CPU limit a little above this run's budget."""
    used = _cpu_seconds()
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used) + math.ceil(timeout_s) + 2
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def preload_isolation() -> None:
    """Load libseccomp in the zygote, so forked workers find it already mapped."""
    _load_libseccomp()


def host_capabilities() -> dict[str, Any]:
    """Parent-side detection of optional isolation tools (no worker needed)."""
    return {
        "libseccomp": _load_libseccomp() is not None,
        "bwrap": shutil.which("bwrap"),
        "running_as_root": os.geteuid() == 0,
    }


# --- rlimits and privileges -------------------------------------------------------------------


def _vm_size_mb() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) // 1024
    except OSError:  # no procfs: skip the headroom check
        pass
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _highest_open_fd() -> int:
    try:
        listed = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no procfs: assume only the three standard fds
        return 2
    still_open = []
    for fd in listed:  # the listing's own directory fd is closed again by now
        try:
            os.fstat(fd)
        except OSError:
            continue
        still_open.append(fd)
    return max(still_open)


def _apply_rlimits(limits: Limits) -> dict[str, Any]:
    # Writes past RLIMIT_FSIZE must fail with EFBIG rather than kill the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    nofile = _highest_open_fd() + 1
    cpu_hard = int(_cpu_seconds()) + limits.runs_per_worker * (math.ceil(limits.timeout_s) + 1)
    cpu_hard += 60
    memory = limits.memory_mb * 1024 * 1024
    settings = {
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_FSIZE": (0, 0),
        "RLIMIT_NOFILE": (nofile, nofile),
        "RLIMIT_NPROC": (0, 0),
        "RLIMIT_AS": (memory, memory),
        "RLIMIT_CPU": (min(cpu_hard, int(_cpu_seconds()) + 60), cpu_hard),
    }
    for name, value in settings.items():
        resource.setrlimit(getattr(resource, name), value)
    return {name: list(value) for name, value in settings.items()}


def _drop_privileges(target_id: int) -> dict[str, Any]:
    if os.geteuid() != 0:
        return {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "privileges_dropped": False,
            "privileges_note": "worker not started as root; keeps the caller's uid",
        }
    os.setgroups([])
    os.setresgid(target_id, target_id, target_id)
    os.setresuid(target_id, target_id, target_id)
    try:
        os.setuid(0)
    except PermissionError:
        regained = False
    else:
        regained = True
    if regained or os.getresuid() != (target_id,) * 3:
        raise RuntimeError("dropping root privileges did not stick")
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "privileges_dropped": True,
        "privileges_note": f"setresuid/setresgid to {target_id}, supplementary groups cleared",
    }


def _no_new_privs() -> bool | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0))
    except (OSError, AttributeError):
        return None


# --- seccomp via the system libseccomp ----------------------------------------------------------


class _ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp`` from <seccomp.h>."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def _load_libseccomp() -> ctypes.CDLL | None:
    for name in ("libseccomp.so.2", "libseccomp.so"):
        try:
            lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            continue
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_rule_add_array.restype = ctypes.c_int
        lib.seccomp_rule_add_array.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.POINTER(_ArgCmp),
        ]
        lib.seccomp_load.restype = ctypes.c_int
        lib.seccomp_load.argtypes = [ctypes.c_void_p]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        return lib
    return None


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


class _SeccompFilter:
    """A libseccomp filter context being built; loaded last, after the uid drop."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.ctx = lib.seccomp_init(_SCMP_ACT_ALLOW)
        if not self.ctx:
            raise OSError("seccomp_init failed")
        self.rules = 0

    def deny(self, name: str, code: int = errno.EPERM, *conditions: _ArgCmp) -> None:
        number = self.lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a syscall on this architecture
        array = (_ArgCmp * len(conditions))(*conditions) if conditions else None
        rc = self.lib.seccomp_rule_add_array(
            self.ctx, _errno_action(code), number, len(conditions), array
        )
        if rc != 0:
            raise OSError(-rc, f"seccomp rule for {name} rejected")
        self.rules += 1


def _build_seccomp_filter() -> _SeccompFilter | str:
    """The filter, or a string saying why there is none."""
    lib = _load_libseccomp()
    if lib is None:
        return "unavailable: libseccomp not found (rlimits and uid drop still apply)"
    try:
        sfilter = _SeccompFilter(lib)
        for name in _DENIED_SYSCALLS:
            sfilter.deny(name)
        pid = os.getpid()
        # New processes yes-no: clone without CLONE_THREAD is a fork. clone3 passes its flags
        # in memory, which seccomp cannot inspect, so it reports ENOSYS and libc falls back.
        sfilter.deny("clone", errno.EPERM, _ArgCmp(0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD, 0))
        sfilter.deny("clone3", errno.ENOSYS)
        # Signals only to itself (sibling workers share the unprivileged uid).
        sfilter.deny("kill", errno.EPERM, _ArgCmp(0, _SCMP_CMP_NE, pid, 0))
        sfilter.deny("tgkill", errno.EPERM, _ArgCmp(0, _SCMP_CMP_NE, pid, 0))
    except OSError as exc:
        return f"unavailable: building the filter failed ({exc})"
    return sfilter


def _load_seccomp(sfilter: _SeccompFilter | str) -> str:
    if isinstance(sfilter, str):
        return sfilter
    try:
        rc = sfilter.lib.seccomp_load(sfilter.ctx)
    finally:
        sfilter.lib.seccomp_release(sfilter.ctx)
    if rc != 0:
        return f"unavailable: seccomp_load failed ({os.strerror(-rc)})"
    return f"active: {sfilter.rules} syscall rules (EPERM), no_new_privs set"
