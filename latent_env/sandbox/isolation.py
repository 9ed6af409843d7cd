"""Process layer, inside the worker: resource limits, dropping root, Landlock and seccomp.

:func:`lock_down` runs once per worker after every library is imported (the interpreter lives
under ``/root`` here, which ``nobody`` cannot read, so nothing may be imported afterwards) and
before any model code. It returns a report of what was actually applied; the pool publishes it
as ``Sandbox.isolation``.

What each piece stops:

* RLIMIT_AS (``memory_mb``): allocation bombs raise MemoryError instead of eating the host.
* RLIMIT_CPU: a backstop if the parent's wall-clock kill never comes.
* RLIMIT_FSIZE 0 (SIGXFSZ ignored, so writes fail with EFBIG) and RLIMIT_NOFILE = the number of
  fds already open (the request/reply pipes and /dev/null): no new files, sockets or pipes.
* RLIMIT_NPROC 0 plus a different uid: no fork, no threads (the count is per uid, and root
  would be exempt); the uid also makes signals and ptrace against the parent fail.
* Landlock (Linux >= 5.13, no library needed): a ruleset that handles every filesystem right
  the kernel knows and grants none, so no file or directory can be opened, created, removed or
  executed, ``/proc`` of other processes included; from ABI 4 no TCP bind/connect, from ABI 6
  no signals or abstract Unix sockets outside the worker. The zygote creates the ruleset once;
  each worker enforces the inherited fd (a domain of its own) and closes it before model code.
* seccomp (via the system's libseccomp, when present): EPERM for sockets, exec, fork-style
  clone, ptrace, every signal-sending call, rlimit changes, mounts, namespaces, filesystem
  changes and other kernel attack surface, and EACCES for ``open``/``openat``/``openat2``: a
  second wall behind Landlock for file reads. The zygote compiles the filter once
  (:func:`preload_isolation`); a worker installs the compiled program with one ``prctl``.
  Doing in the zygote everything that is the same for every worker cut the lock-down from
  ~1.0 ms to ~0.3 ms of a fresh fork's time (``benchmarks/RESULTS.md``).

A freed fd (``os.close(2)``) gets past RLIMIT_NOFILE, so file reads rest on Landlock and
seccomp; where neither is available the report says so and only the uid stands in the way.
"""

from __future__ import annotations

import ctypes
import dataclasses
import errno
import functools
import math
import os
import resource
import shutil
import signal
from typing import Any

from . import landlock
from .limits import Limits

_CLONE_THREAD = 0x00010000
_SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_CMP_NE = 1
_SCMP_CMP_MASKED_EQ = 7
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_BPF_INSTRUCTION_BYTES = 8  # struct sock_filter

# Denied with EPERM. Names unknown on this architecture are skipped.
_DENIED_SYSCALLS = (
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto",
    "sendmsg", "sendmmsg", "execve", "execveat", "fork", "vfork", "ptrace",
    "process_vm_readv", "process_vm_writev", "tkill", "pidfd_open", "pidfd_send_signal",
    "pidfd_getfd", "kcmp", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "init_module", "finit_module",
    "kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "setrlimit",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff",
    "open_by_handle_at", "name_to_handle_at", "memfd_create", "mknod", "mknodat", "link",
    "linkat", "symlink", "symlinkat", "unlink", "unlinkat", "rename", "renameat", "renameat2",
    "mkdir", "mkdirat", "rmdir", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown",
    "fchownat", "truncate", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "setfsuid", "setfsgid", "personality", "acct", "quotactl",
    "settimeofday", "clock_settime", "adjtimex", "sethostname", "setdomainname", "iopl",
    "ioperm", "fanotify_init", "move_pages", "migrate_pages", "landlock_create_ruleset",
    "landlock_add_rule",
)  # fmt: skip
# Denied with EACCES, like a file the uid may not read: Landlock's second wall.
_DENIED_OPENS = ("open", "openat", "openat2", "creat")


def lock_down(limits: Limits, open_fds: int) -> dict[str, Any]:
    """Apply every process-level restriction available; return what was applied.

    ``open_fds``: the worker holds fds 0 .. open_fds - 1 and, until Landlock is enforced, the
    fds of :func:`inherited_fds`; no others (RLIMIT_NOFILE)."""
    prepared = _PREPARED or _prepare(limits)
    # A fork maps what the zygote maps; measured there once (reading /proc costs a worker ~1 ms).
    report: dict[str, Any] = {"baseline_vm_mb": prepared.vm_mb}
    if report["baseline_vm_mb"] + 32 > limits.memory_mb:
        raise RuntimeError(
            f"memory_mb={limits.memory_mb} leaves no room: a warm worker already maps "
            f"{report['baseline_vm_mb']} MiB"
        )
    report["landlock"] = prepared.landlock_note
    if prepared.landlock_fd is not None:  # first: the ruleset fd is closed before RLIMIT_NOFILE
        report["landlock"] = landlock.enforce(prepared.landlock_fd) or prepared.landlock_note
    report["rlimits"] = _apply_rlimits(limits, open_fds)
    report.update(_drop_privileges(limits.unprivileged_id))
    report["seccomp"] = _install_seccomp(prepared.seccomp)
    report["no_new_privs"] = _no_new_privs()
    return report


def preload_isolation(limits: Limits) -> None:
    """In the zygote: do once what every forked worker would otherwise redo (the Landlock
    ruleset, the seccomp program and its ctypes structures), leaving a worker only the
    syscalls: its lock-down takes ~0.3 ms of a fresh fork's time instead of ~1.0 ms."""
    global _PREPARED
    _PREPARED = _prepare(limits)


def inherited_fds() -> tuple[int, ...]:
    """Fds a forked worker must keep open until :func:`lock_down` (the Landlock ruleset)."""
    fd = _PREPARED.landlock_fd if _PREPARED is not None else None
    return () if fd is None else (fd,)


@dataclasses.dataclass(frozen=True)
class _Prepared:
    """The zygote's share of the lock-down."""

    vm_mb: int
    landlock_fd: int | None
    landlock_note: str  # what enforcing means, or why there is nothing to enforce
    seccomp: _SeccompProgram | str  # the filter to install, or why there is none


_PREPARED: _Prepared | None = None
# A compiled seccomp filter: its buffer, the sock_fprog pointing into it, the report line.
_SeccompProgram = tuple[Any, Any, str]


def _prepare(limits: Limits) -> _Prepared:
    if limits.use_landlock:
        fd, note = landlock.prepare()
    else:
        fd, note = None, "disabled by Limits.use_landlock"
    seccomp = _prepare_seccomp() if limits.use_seccomp else "disabled by Limits.use_seccomp"
    return _Prepared(_vm_size_mb(), fd, note, seccomp)


def host_capabilities() -> dict[str, Any]:
    """Parent-side detection of optional isolation tools (no worker needed)."""
    return {
        "libseccomp": _load_libseccomp() is not None,
        "landlock_abi": landlock.abi_version(),
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


def _apply_rlimits(limits: Limits, nofile: int) -> dict[str, Any]:
    # Writes past RLIMIT_FSIZE must fail with EFBIG rather than kill the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # One CPU budget for the worker's whole life: seccomp refuses later rlimit changes.
    cpu = int(_cpu_seconds()) + limits.runs_per_worker * (math.ceil(limits.timeout_s) + 1) + 2
    memory = limits.memory_mb * 1024 * 1024
    settings = {
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_FSIZE": (0, 0),
        "RLIMIT_NOFILE": (nofile, nofile),
        "RLIMIT_NPROC": (0, 0),
        "RLIMIT_AS": (memory, memory),
        "RLIMIT_CPU": (cpu, cpu),
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
        return bool(landlock.LIBC.prctl(_PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0))
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
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_export_bpf.restype = ctypes.c_int
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        return lib
    return None


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO(code)


class _SeccompFilter:
    """A libseccomp filter context being built (in the zygote)."""

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


def _compile_seccomp_filter() -> tuple[bytes, int] | str:
    """The filter as a BPF program and its rule count, or a string saying why there is none.

    No rule depends on the worker (its pid, say), so one program serves every fork."""
    lib = _load_libseccomp()
    if lib is None:
        return "unavailable: libseccomp not found (rlimits, uid drop and Landlock still apply)"
    try:
        sfilter = _SeccompFilter(lib)
    except OSError as exc:
        return f"unavailable: {exc}"
    try:
        for name in _DENIED_SYSCALLS:
            sfilter.deny(name)
        for name in _DENIED_OPENS:
            sfilter.deny(name, errno.EACCES)
        # New processes: clone without CLONE_THREAD is a fork. clone3 passes its flags in
        # memory, which seccomp cannot inspect, so it reports ENOSYS and libc falls back.
        sfilter.deny("clone", errno.EPERM, _ArgCmp(0, _SCMP_CMP_MASKED_EQ, _CLONE_THREAD, 0))
        sfilter.deny("clone3", errno.ENOSYS)
        # getrlimit is prlimit64 with no new limit; setting one is refused.
        sfilter.deny("prlimit64", errno.EPERM, _ArgCmp(2, _SCMP_CMP_NE, 0, 0))
        return _export_bpf(sfilter), sfilter.rules
    except OSError as exc:
        return f"unavailable: building the filter failed ({exc})"
    finally:
        lib.seccomp_release(sfilter.ctx)


def _export_bpf(sfilter: _SeccompFilter) -> bytes:
    read_end, write_end = os.pipe()
    try:
        rc = sfilter.lib.seccomp_export_bpf(sfilter.ctx, write_end)
        os.close(write_end)
        write_end = -1
        if rc != 0:
            raise OSError(-rc, "seccomp_export_bpf failed")
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    program = b"".join(chunks)
    if not program or len(program) % _BPF_INSTRUCTION_BYTES:
        raise OSError(errno.EINVAL, "seccomp_export_bpf gave no program")
    return program


class _SockFprog(ctypes.Structure):
    """``struct sock_fprog`` from <linux/filter.h>."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _prepare_seccomp() -> _SeccompProgram | str:
    """The compiled filter, ready for ``prctl`` (its buffer kept alive beside the pointer)."""
    compiled = _compile_seccomp_filter()
    if isinstance(compiled, str):
        return compiled
    program, rules = compiled
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // _BPF_INSTRUCTION_BYTES, ctypes.addressof(buffer))
    return buffer, fprog, f"active: {rules} syscall rules (EPERM; EACCES for opens), no_new_privs set"


def _install_seccomp(prepared: _SeccompProgram | str) -> str:
    """Install the zygote's compiled filter (no_new_privs first, as the kernel requires)."""
    if isinstance(prepared, str):
        return prepared
    _, fprog, note = prepared
    libc = landlock.LIBC
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return f"unavailable: no_new_privs refused ({os.strerror(ctypes.get_errno())})"
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        return f"unavailable: installing the filter failed ({os.strerror(ctypes.get_errno())})"
    return note
