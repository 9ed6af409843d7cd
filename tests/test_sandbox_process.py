"""Process layer and pool lifecycle.

The OS-level tests use the test-only unrestricted worker mode: raw Python (no policy layer)
runs inside a real worker, standing in for code that escaped the policy layer, and we check
what the process layer still denies.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from latent_env.sandbox import (
    Limits,
    Sandbox,
    SandboxError,
    close_default_sandbox,
    get_default_sandbox,
)
from latent_env.sandbox import default as default_module

pytestmark = pytest.mark.timeout(120)

IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def raw():
    """A pool whose worker runs raw Python: only the process layer stands in the way."""
    with Sandbox(
        workers=1, limits=Limits(timeout_s=5), _unsafe_unrestricted_for_tests=True
    ) as pool:
        yield pool


# Frees fd 2, so RLIMIT_NOFILE no longer blocks a new fd (as an escaped run could).
_FREE_FD2 = "try:\n    os.close(2)\nexcept OSError:\n    pass\n"


def raw_value(sandbox: Sandbox, code: str) -> object:
    result = sandbox.run(code)
    assert result.status == "ok", result
    return eval(result.value)  # a repr of ints/strings/tuples produced by the test's own code


def seccomp_active(sandbox: Sandbox) -> bool:
    return str(sandbox.isolation["seccomp"]).startswith("active")


def files_walled(sandbox: Sandbox) -> bool:
    """Landlock or seccomp denies opens; without either only the uid stands in the way."""
    return seccomp_active(sandbox) or str(sandbox.isolation["landlock"]).startswith("active")


_ERRNO_OF = (
    "import os\n"
    "def errno_of(fn):\n"
    "    try:\n        fn()\n        return 0\n"
    "    except OSError as e:\n        return e.errno\n"
)


# --- what the OS layer denies to code that escaped the policy layer ---------------------------


def test_no_new_files_or_fds(raw: Sandbox):
    code = (
        "import os\n"
        "def attempt(fn):\n"
        "    try:\n        fn()\n        return 0\n"
        "    except OSError as e:\n        return e.errno\n"
        "(attempt(lambda: open('/tmp/sandbox-probe', 'w')), attempt(lambda: os.dup(0)),\n"
        " attempt(lambda: os.pipe()))"
    )
    opened, dup, pipe = raw_value(raw, code)
    assert opened == (errno.EACCES if files_walled(raw) else errno.EMFILE)
    assert dup == pipe == errno.EMFILE


def test_worker_holds_only_its_pipes_and_cannot_reach_the_shared_ruleset(raw: Sandbox):
    # The zygote's Landlock ruleset fd is inherited by every fork: a worker that kept it could
    # add rules granting file access to every later worker. It is closed before model code,
    # and seccomp refuses the Landlock calls that would make or extend one.
    code = (
        _ERRNO_OF + "import ctypes\n"
        "held = [fd for fd in range(3, 1024) if errno_of(lambda: os.fstat(fd)) != 9]\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "rc = libc.syscall(444, None, 0, 1)\n"  # landlock_create_ruleset: ABI query
        "(held, rc, ctypes.get_errno())"
    )
    held, rc, error = raw_value(raw, code)
    assert held == []
    if seccomp_active(raw):
        assert (rc, error) == (-1, errno.EPERM)


def test_no_file_is_created_even_with_a_freed_fd(raw: Sandbox):
    # With fd 2 freed, RLIMIT_NOFILE no longer blocks open(): Landlock and seccomp must refuse
    # the open itself, in a root-owned directory and in world-writable /tmp alike.
    probe = Path("/tmp") / f"sandbox-probe-{uuid.uuid4().hex}"
    here = Path(__file__).parent / "sandbox-probe"
    code = (
        _ERRNO_OF + _FREE_FD2
        + f"tuple(errno_of(lambda: open(p, 'w').write('x')) for p in {(str(here), str(probe))!r})"
    )
    try:
        outcome = raw_value(raw, code)
        created = [p for p in (probe, here) if p.exists()]
    finally:
        probe.unlink(missing_ok=True)
    if not files_walled(raw):
        pytest.skip("neither Landlock nor seccomp here: only the uid and RLIMIT_FSIZE apply")
    assert outcome == (errno.EACCES, errno.EACCES)
    assert created == []


def test_no_file_can_be_read_even_with_a_freed_fd(raw: Sandbox):
    # The reads the review made after escaping the policy layer: system files, the project,
    # the venv, the trainer's /proc entries; plus directory listings.
    paths = ["/etc/passwd", __file__, os.path.realpath(os.sys.executable),
             f"/proc/{os.getpid()}/cmdline", f"/proc/{os.getpid()}/environ", "/proc/1/cmdline",
             "/proc/self/status"]
    code = (
        _ERRNO_OF + _FREE_FD2
        + f"reads = tuple(errno_of(lambda: open(p, 'rb').read(8)) for p in {paths!r})\n"
        "lists = tuple(errno_of(lambda: os.listdir(p)) for p in ('/', '/tmp', '/proc'))\n"
        "(reads, lists)"
    )
    reads, lists = raw_value(raw, code)
    if not files_walled(raw):
        pytest.skip("neither Landlock nor seccomp here: reads rest on the uid alone")
    assert reads == (errno.EACCES,) * len(paths)
    assert lists == (errno.EACCES,) * 3


def test_rlimits_cannot_be_changed(raw: Sandbox):
    code = (
        "import resource\nout = []\n"
        "for name in ('RLIMIT_CPU', 'RLIMIT_AS', 'RLIMIT_NOFILE', 'RLIMIT_NPROC'):\n"
        "    which = getattr(resource, name)\n"
        "    soft, hard = resource.getrlimit(which)\n"
        "    for new in ((0, hard), (soft, hard), (hard + 1, hard + 1)):\n"
        "        try:\n            resource.setrlimit(which, new)\n            out.append('set')\n"
        "        except (OSError, ValueError):\n            out.append('refused')\n"
        "    out.append(resource.getrlimit(which) == (soft, hard))\n"
        "tuple(out)"
    )
    if not seccomp_active(raw):
        pytest.skip("no seccomp: lowering a limit is allowed (raising one still fails)")
    assert raw_value(raw, code) == ("refused", "refused", "refused", True) * 4


def test_no_new_processes_or_threads(raw: Sandbox):
    code = (
        "import os, threading\n"
        "try:\n    pid = os.fork()\n    if pid == 0:\n        os._exit(0)\n    fork = 'forked'\n"
        "except OSError as e:\n    fork = e.errno\n"
        "try:\n    threading.Thread(target=print).start()\n    thread = 'started'\n"
        "except RuntimeError:\n    thread = 'refused'\n"
        "(fork, thread, os.system('true') != 0)"
    )
    fork, thread, system_failed = raw_value(raw, code)
    assert fork in (errno.EPERM, errno.EAGAIN)
    assert thread == "refused" and system_failed


def test_parent_cannot_be_signalled_or_traced(raw: Sandbox):
    parent = os.getpid()
    code = (
        "import os, ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "def kill(pid):\n    try:\n        os.kill(pid, 0)\n        return 0\n"
        "    except OSError as e:\n        return e.errno\n"
        f"traced = libc.ptrace(16, {parent}, 0, 0), ctypes.get_errno()\n"
        f"(kill({parent}), kill(1), traced)"
    )
    to_parent, to_init, traced = raw_value(raw, code)
    if not (IS_ROOT or seccomp_active(raw)):
        pytest.skip("neither a uid drop nor seccomp here: same-uid signals are allowed")
    assert to_parent == errno.EPERM and to_init == errno.EPERM
    assert traced == (-1, errno.EPERM)


def test_privileges_are_gone_for_good(raw: Sandbox):
    code = (
        "import os, resource\n"
        "try:\n    os.setuid(0)\n    regained = True\nexcept PermissionError:\n"
        "    regained = False\n"
        "try:\n    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))\n    raised = True\n"
        "except (ValueError, OSError):\n    raised = False\n"
        "(os.getuid(), os.getgid(), os.getgroups(), regained, raised)"
    )
    uid, gid, groups, regained, raised = raw_value(raw, code)
    assert not regained and not raised
    if IS_ROOT:
        assert (uid, gid, groups) == (65534, 65534, [])


def test_sockets_and_exec(raw: Sandbox):
    code = (
        "import os, ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        + _FREE_FD2
        + "fd = libc.socket(2, 1, 0)\nsocket_errno = ctypes.get_errno()\n"
        "try:\n    os.execv('/bin/true', ['true'])\n"
        "except OSError as e:\n    exec_errno = e.errno\n"
        "(fd, socket_errno, exec_errno)"
    )
    if not seccomp_active(raw):
        pytest.skip(
            "no seccomp: after freeing an fd, sockets and exec are not blocked by rlimits "
            "or the uid alone (documented limitation)"
        )
    assert raw_value(raw, code) == (-1, errno.EPERM, errno.EPERM)


def test_isolation_report_matches_the_machine(raw: Sandbox):
    report = raw.isolation
    assert report["rlimits"]["RLIMIT_NPROC"] == [0, 0]
    assert report["rlimits"]["RLIMIT_FSIZE"] == [0, 0]
    assert report["rlimits"]["RLIMIT_NOFILE"] == [3, 3]
    assert report["rlimits"]["RLIMIT_AS"][0] == raw.limits.memory_mb * 1024 * 1024
    assert report["privileges_dropped"] is IS_ROOT
    assert seccomp_active(raw) is report["host"]["libseccomp"]
    assert report["host"]["bwrap"] is None or Path(report["host"]["bwrap"]).exists()
    assert report["landlock"].startswith("active") is (report["host"]["landlock_abi"] > 0)
    # Own session and process group, away from the trainer's.
    assert raw_value(raw, "import os\nos.getpgid(0) == os.getsid(0) == os.getpid()") is True


# --- protocol violations by a compromised worker ----------------------------------------------

VIOLATIONS = {
    "oversized-frame": ("os.write(1, struct.pack('>I', 2**31))", "exceeds"),
    "malformed-json": ("os.write(1, struct.pack('>I', 5) + b'{bad}')", "malformed"),
    "not-an-object": ("os.write(1, struct.pack('>I', 2) + b'[]')", "not a JSON object"),
    "truncated": ("os.write(1, struct.pack('>I', 100) + b'{}')\nos._exit(0)", "inside a frame"),
    "extra-key": ("send({'id': 0, 'status': 'ok', 'stdout': '', 'value': None, 'error': None,"
                  " 'x': 1})", "keys"),
    "claims-timeout": ("send({'id': 0, 'status': 'timeout', 'stdout': '', 'value': None,"
                       " 'error': 'x'})", "different request"),
    "exit": ("os._exit(3)", "exited with status 3"),
    "segfault": ("import ctypes\nctypes.string_at(0)", "SIGSEGV"),
}  # fmt: skip
_SEND = (
    "import os, struct, json\n"
    "def send(message):\n"
    "    body = json.dumps(message).encode()\n"
    "    os.write(1, struct.pack('>I', len(body)) + body)\n"
)


@pytest.mark.parametrize("name", sorted(VIOLATIONS))
def test_protocol_violations_kill_the_worker(raw: Sandbox, name: str):
    code, reason = VIOLATIONS[name]
    before = raw.worker_pids()
    result = raw.run(_SEND + code + "\nimport time\ntime.sleep(1)")
    assert result.status == "crashed", result
    assert reason in result.error
    follow_up = raw.run("40 + 2")
    assert follow_up.value == "42" and follow_up.worker_pid not in before


# --- pool lifecycle ---------------------------------------------------------------------------


def test_timeout_kills_and_respawns():
    with Sandbox(workers=1, limits=Limits(timeout_s=0.3)) as pool:
        result = pool.run("import itertools\nsum(itertools.count())")
        assert result.status == "timeout"
        assert 0.3 <= result.duration_s < 2.0
        assert _dead_within(result.worker_pid, 2.0)  # killed (a zombie until the zygote reaps)
        started = time.perf_counter()
        follow_up = pool.run("1 + 1")
        assert follow_up.value == "2" and follow_up.worker_pid != result.worker_pid
        assert time.perf_counter() - started < 10  # one respawn, not a hang
        pool.run("2 + 2")  # the zygote reaps exited workers whenever it is asked for one
        with pytest.raises(ProcessLookupError):
            os.kill(result.worker_pid, 0)


def _dead_within(pid: int, seconds: float) -> bool:
    """True once ``pid`` has exited (gone, or a zombie), polling for up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):  # gone, even between open and read
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False


def test_timeout_on_one_worker_does_not_stall_the_other():
    with Sandbox(workers=2, limits=Limits(timeout_s=0.3)) as pool:
        pool.start()
        assert pool.run("while True:\n    pass").status == "timeout"
        started = time.perf_counter()
        assert pool.run("1 + 1").value == "2"
        assert time.perf_counter() - started < 1.0  # served by the warm worker


def test_workers_are_forked_from_one_zygote():
    with Sandbox(workers=2) as pool:
        pool.start()
        results = pool.run_many(["hash('reward') & 0xFFFF"] * 6)
        # A fresh fork for every run, with the zygote's hash seed: set order does not depend on
        # the worker.
        assert len({r.worker_pid for r in results}) == 6
        assert len({r.value for r in results}) == 1


def test_a_dead_zygote_is_restarted():
    with Sandbox(workers=1) as pool:
        zygote = pool._get_zygote()
        os.kill(zygote._proc.pid, 9)
        zygote._proc.wait()
        result = pool.run("1 + 2")  # needs a worker, so a new zygote
        assert result.value == "3"
        assert pool._zygote is not zygote


def test_memory_error_replaces_the_worker():
    with Sandbox(workers=1) as pool:
        first = pool.run("'x' * 10**10")
        assert first.status == "memory_error"
        second = pool.run("1")
        assert second.ok and second.worker_pid != first.worker_pid


def test_workers_are_recycled_after_n_runs():
    with Sandbox(workers=1, limits=Limits(runs_per_worker=3)) as pool:
        pids = [pool.run("1").worker_pid for _ in range(7)]
    assert pids[0] == pids[1] == pids[2]
    assert pids[3] == pids[4] == pids[5]
    assert len({pids[0], pids[3], pids[6]}) == 3


def test_run_many_from_several_threads():
    codes = [f"sum(range({n} * 100000))" for n in range(1, 9)]
    expected = [repr(sum(range(n * 100000))) for n in range(1, 9)]
    outcomes: list[list[str | None]] = []
    pids: set[int | None] = set()
    lock = threading.Lock()

    def caller() -> None:
        results = pool.run_many(codes)
        with lock:
            outcomes.append([r.value for r in results])
            pids.update(r.worker_pid for r in results)

    with Sandbox(workers=2) as pool:
        pool.start()
        threads = [threading.Thread(target=caller) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert outcomes == [expected] * 3
    assert len(pids) == 24  # one fresh worker per run


def test_close_kills_workers_and_refuses_runs():
    pool = Sandbox(workers=2)
    pool.start()
    pids = pool.worker_pids()
    assert len(pids) == 2
    pool.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(SandboxError):
        pool.run("1")
    pool.close()  # idempotent


def test_close_during_a_run_ends_it():
    pool = Sandbox(workers=1, limits=Limits(timeout_s=30))
    pool.start()
    pid = pool.worker_pids()[0]
    results = []
    runner = threading.Thread(target=lambda: results.append(pool.run("while True:\n    pass")))
    runner.start()
    time.sleep(0.3)  # the run is under way
    started = time.perf_counter()
    pool.close()
    runner.join(timeout=10)
    assert time.perf_counter() - started < 10
    assert [r.status for r in results] == ["crashed"]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_unstartable_worker_raises():
    with Sandbox(workers=1, limits=Limits(memory_mb=64)) as pool:
        with pytest.raises(SandboxError, match="memory_mb=64"):
            pool.run("1")


def test_default_sandbox_is_shared_and_replaced_after_close(monkeypatch):
    # Start from no shared pool, and leave any pool other tests share untouched.
    monkeypatch.setattr(default_module, "_shared", None)
    first = get_default_sandbox()
    assert get_default_sandbox() is first
    assert first.run("6 * 7").value == "42"
    close_default_sandbox()
    assert first.closed
    second = get_default_sandbox()
    assert second is not first and not second.closed
    close_default_sandbox()


def test_seccomp_can_be_switched_off_and_says_so():
    with Sandbox(workers=1, limits=Limits(use_seccomp=False)) as pool:
        assert pool.isolation["seccomp"] == "disabled by Limits.use_seccomp"
        assert pool.run("2 + 2").value == "4"


def test_describe_reports_configuration():
    with Sandbox(workers=1, limits=Limits(timeout_s=1.5)) as pool:
        info = pool.describe()
    assert info["workers"] == 1 and info["limits"]["timeout_s"] == 1.5
    assert info["unrestricted_test_mode"] is False
    assert {"seccomp", "rlimits", "uid", "host"} <= set(info["isolation"])
    assert info["compiler"].startswith("one locked-down worker")
    with Sandbox(workers=1, limits=Limits(shared_compiler=False)) as pool:
        assert pool.describe()["compiler"] == "each worker compiles its own run"


# --- no state crosses runs: an attacker run, then a victim run in the same pool ---------------

_RE_POISON = (
    "import re\n"
    "class F(int):\n"
    "    def __hash__(self):\n        return 0\n"
    "    def __eq__(self, other):\n        return True\n"
    "re.compile(r'(\\d+) apples', F(re.X))\n"
)
_STRPTIME_POISON = (
    "import datetime\n"
    "class S(str):\n"
    "    def __hash__(self):\n        return hash('%Y-%m-%d')\n"
    "    def __eq__(self, other):\n        return True\n"
    "datetime.datetime.strptime('2024-02-01', S('%Y-%d-%m'))\n"
)
_SORT_USE_AFTER_FREE = (
    "import numpy as np\n"
    "class E:\n"
    "    def __init__(self, v):\n        self.v = v\n"
    "    def __lt__(self, other):\n"
    "        arr[:] = [E(0) for _ in range(len(arr))]\n"
    "        return self.v < other.v\n"
    "arr = np.array([E(i) for i in range(200)], dtype=object)\n"
    "for _ in range(20):\n    arr.sort()\n"
)
_NESTED_MAPS = "it = [1]\nfor _ in range(10**6):\n    it = map(abs, it)\nnext(it)\n"
SEQUELS = {
    "re-compile-cache": (_RE_POISON, "import re\nre.search(r'(\\d+) apples', 'I have 12 apples')"
                         "[1]", "'12'"),
    "strptime-format-cache": (_STRPTIME_POISON, "import datetime\n"
                              "str(datetime.datetime.strptime('2024-01-02', '%Y-%m-%d').date())",
                              "'2024-01-02'"),
    # Memory-corruption primitives: whatever they do to their own worker, the next run is clean.
    "numpy-sort-use-after-free": (_SORT_USE_AFTER_FREE, "sorted([3, 1, 2])", "[1, 2, 3]"),
    "nested-map-overflow": (_NESTED_MAPS, "sorted([3, 1, 2])", "[1, 2, 3]"),
}


@pytest.mark.parametrize("name", sorted(SEQUELS))
def test_what_a_run_does_to_its_worker_dies_with_it(name: str):
    attack, victim, expected = SEQUELS[name]
    with Sandbox(workers=1) as pool:
        pool.run(attack)
        assert pool.run(victim).value == expected


def test_a_run_that_rewrites_the_worker_cannot_forge_later_runs(raw: Sandbox):
    # What the review's escaped run did: patch the reply function so that later runs lie.
    attack = (
        "import sys\nworker = sys.modules['_latent_sandbox.worker']\nreal = worker._reply\n"
        "worker._reply = lambda status, real=real, **fields: real('ok', stdout='5\\n')\n"
    )
    assert raw.run(attack).ok
    assert [raw.run("print(2 + 2)").stdout for _ in range(3)] == ["4\n"] * 3


# --- the pool's compiler ----------------------------------------------------------------------


def test_compile_errors_come_from_the_compiler_and_runs_from_fresh_workers():
    with Sandbox(workers=1) as pool:
        pool.start()
        compiler = pool._compiler.pid
        errors = [pool.run("x = (") for _ in range(2)]
        assert [e.status for e in errors] == ["compile_error"] * 2
        assert errors[0].error == errors[1].error
        assert {e.worker_pid for e in errors} == {compiler}
        runs = [pool.run("print(6 * 7)") for _ in range(2)]
        assert [r.stdout for r in runs] == ["42\n"] * 2
        assert len({r.worker_pid for r in runs} | {compiler}) == 3


def test_a_busy_compiler_is_never_waited_for():
    # A caller compiles in its own worker rather than wait behind another caller's compile,
    # which model code can make as slow as it likes.
    with Sandbox(workers=1) as pool:
        pool.start()
        compiler = pool._compiler.pid
        with pool._compiler_lock:
            started = time.perf_counter()
            result = pool.run("print(6 * 7)")
            error = pool.run("x = (")
            assert time.perf_counter() - started < 5
        assert result.stdout == "42\n"
        assert error.status == "compile_error" and error.worker_pid != compiler


def test_a_dead_compiler_is_replaced_and_costs_no_run():
    with Sandbox(workers=1) as pool:
        pool.start()
        first = pool._compiler.pid
        os.kill(first, 9)
        assert pool.run("print(6 * 7)").stdout == "42\n"  # compiled by the run's worker
        assert pool.run("1 + 1").value == "2"  # a new compiler
        assert pool._compiler is not None and pool._compiler.pid != first


def test_a_worker_that_ran_code_never_compiles_for_others():
    # What model code did to a worker could change how it compiles: such a worker closes the
    # pipe on a compile request instead of answering it.
    from latent_env.sandbox.process import WorkerDied, WorkerProcess

    limits = Limits(runs_per_worker=2)
    with Sandbox(workers=1, limits=limits) as pool:
        worker = WorkerProcess.fork_from(pool._get_zygote(), limits)
        try:
            assert worker.request(1, "1 + 1", 0, 5.0)["value"] == "2"
            with pytest.raises(WorkerDied):
                worker.compile(2, "1 + 1", 5.0)
        finally:
            worker.kill()


def test_a_compile_that_exhausts_the_compilers_memory_reaches_no_later_run():
    # 5,000 distinct folded 4,096-character constants: the compiler runs out of memory
    # shipping them, says so, and exits; the run's own worker compiles the program, and the
    # next caller gets a fresh compiler with all of its memory.
    source = "x = (" + ",".join(f"'\\u{0x100 + i:04x}' * 4096" for i in range(5000)) + ")\nlen(x)"
    with Sandbox(workers=1, limits=Limits(memory_mb=200, timeout_s=10)) as pool:
        pool.start()
        first = pool._compiler.pid
        attack = pool.run(source)
        assert attack.status in ("ok", "memory_error", "compile_error")
        assert attack.worker_pid != first
        assert _dead_within(first, 5.0)
        assert pool.run("1 + 1").value == "2"
        assert pool.run("print(6 * 7)").stdout == "42\n"
        assert pool._compiler is not None and pool._compiler.pid != first
