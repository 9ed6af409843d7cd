"""Sandbox behaviour on adversarial and ordinary model code, through the real worker pool.

One module-scoped pool (2 workers, 0.5 s timeout) serves every test here, once with the pool's
shared compiler and once with each fresh worker compiling; after each payload a health-check
snippet must still get the right answer.
"""

from __future__ import annotations

import random

import pytest

from latent_env.sandbox import ExecResult, Limits, Sandbox

try:
    from .sandbox_corpus import ADVERSARIAL, Payload
    from .sandbox_snippets import HEALTH_CHECK, LEGIT, Snippet
except ImportError:  # tests/ not a package
    from sandbox_corpus import ADVERSARIAL, Payload
    from sandbox_snippets import HEALTH_CHECK, LEGIT, Snippet

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 0.5


@pytest.fixture(scope="module", params=[True, False], ids=["shared-compiler", "worker-compiles"])
def sandbox(request):
    # Every outcome must be the same whether the pool's compiler or the fresh worker compiles.
    limits = Limits(timeout_s=TIMEOUT_S, shared_compiler=request.param)
    with Sandbox(workers=2, limits=limits) as pool:
        pool.start()
        yield pool


def assert_healthy(sandbox: Sandbox) -> None:
    result = sandbox.run(HEALTH_CHECK.code)
    assert (result.status, result.value) == ("ok", HEALTH_CHECK.value), result


def test_corpus_is_large_and_varied():
    categories = {payload.category for payload in ADVERSARIAL}
    assert len(ADVERSARIAL) >= 60
    assert len(categories) >= 15
    assert len({payload.id for payload in ADVERSARIAL}) == len(ADVERSARIAL)
    assert len(LEGIT) >= 20


@pytest.mark.parametrize("payload", ADVERSARIAL, ids=lambda p: p.id)
def test_adversarial_payload_is_contained(sandbox: Sandbox, payload: Payload):
    result = sandbox.run(payload.code)
    assert result.status == payload.status, result
    assert result.error is not None and payload.error_contains in result.error, result
    assert "\n" not in result.error and "Traceback" not in result.error
    assert result.value is None
    assert_healthy(sandbox)


@pytest.mark.parametrize("snippet", LEGIT, ids=lambda s: s.name)
def test_ordinary_code_gives_the_right_answer(sandbox: Sandbox, snippet: Snippet):
    result = sandbox.run(snippet.code)
    assert result.status == "ok", result
    assert result.error is None
    assert result.stdout == snippet.stdout
    assert result.value == snippet.value


# --- no state survives a run -----------------------------------------------------------------

POISON_THEN_CHECK = [
    ("import math\nmath.sqrt = lambda x: 0", "import math\nmath.sqrt(16)", "4.0"),
    ("import decimal\ndecimal.getcontext().prec = 2",
     "from decimal import Decimal\nDecimal(1) / Decimal(3)",
     "Decimal('0.3333333333333333333333333333')"),
    ("len = lambda x: 0", "len([1, 2])", "2"),
    ("import random\nrandom.seed(12345)\nrandom.random()", "import random\nrandom.random()",
     repr(random.Random(0).random())),
    ("import numpy as np\nnp.random.seed(7)", "import numpy as np\nfloat(np.random.rand())",
     None),
    # Caches in shared modules keyed by objects whose __hash__/__eq__ model code wrote: a key
    # equal to everything answers a later run's lookup with this run's entry. Each poison first
    # evicts what the check's baseline run left in that worker's cache.
    ("from datetime import datetime\nclass Fmt(str):\n    def __hash__(self):\n"
     "        return hash('%Y-%m-%d')\n    def __eq__(self, other):\n        return True\n"
     "for f in ['%d', '%m', '%H', '%M', '%S', '%y', '%j']:\n    datetime.strptime('01', f)\n"
     "datetime.strptime('05-03-2024', Fmt('%d-%m-%Y'))",
     "from datetime import datetime\ndatetime.strptime('2024-03-05', '%Y-%m-%d').isoformat()",
     "'2024-03-05T00:00:00'"),
    ("import re\nclass F(int):\n    def __hash__(self):\n        return 0\n"
     "    def __eq__(self, other):\n        return True\n"
     "re.purge()\nre.findall('a b', 'a b ab', F(re.VERBOSE))",
     "import re\nre.findall('a b', 'a b ab')", "['a b']"),
    ("import typing\nclass K:\n    def __call__(self):\n        pass\n"
     "    def __hash__(self):\n        return hash(int)\n"
     "    def __eq__(self, other):\n        return True\n"
     "for i in range(200):\n    typing.List[typing.Literal[i]]\ntyping.List[K()]",
     "import typing\ntyping.List[int]", "typing.List[int]"),
    # ABC registration (UserDict's positive issubclass cache keeps int for good)
    ("import fractions\nfractions.Fraction.register(float)",
     "import fractions\nisinstance(1.5, fractions.Fraction)", "False"),
    ("import collections\nclass D(collections.UserDict):\n    pass\nD.register(int)\n"
     "issubclass(int, collections.UserDict)",
     "import collections\nisinstance(1, collections.UserDict)", "False"),
    # a Cython function's module globals
    ("import numpy as np\nnp.random.Generator.beta.func_globals['np'] = None",
     "import numpy as np\nnp.random.default_rng(1).beta(1, 2, size=2).shape", "(2,)"),
]  # fmt: skip


def test_a_fresh_workers_first_run_starts_from_reset_state(sandbox: Sandbox):
    # The zygote's warm-up divides decimals (setting Inexact and Rounded) and a forked worker's
    # first run skips the full reset: the zygote must hand it the state a reset leaves.
    code = (
        "import decimal, numpy as np\n"
        "c = decimal.getcontext()\n"
        "flags = sorted(k.__name__ for k, v in c.flags.items() if v)\n"
        "traps = sorted(k.__name__ for k, v in c.traps.items() if v)\n"
        "(flags, traps, c.prec, sorted(np.geterr().items()))"
    )
    expected = (
        "([], ['DivisionByZero', 'InvalidOperation', 'Overflow'], 28, [('divide', 'warn'), "
        "('invalid', 'warn'), ('over', 'warn'), ('under', 'ignore')])"
    )
    for _ in range(3):  # each run is a fresh fork's first
        assert sandbox.run(code).value == expected


@pytest.mark.parametrize("poison,check,expected", POISON_THEN_CHECK)
def test_nothing_leaks_into_the_next_run(sandbox: Sandbox, poison, check, expected):
    baseline = sandbox.run(check, seed=0)
    # Both workers get poisoned, whichever the check lands on afterwards.
    sandbox.run_many([poison, poison])
    for _ in range(2):
        result = sandbox.run(check, seed=0)
        assert result.status == "ok", result
        assert result.value == (expected or baseline.value)


@pytest.fixture(scope="module")
def reused_sandbox():
    # One worker serving every run: the policy layer's own per-run resets, which a fresh fork
    # per run (the default) would hide.
    limits = Limits(timeout_s=TIMEOUT_S, runs_per_worker=100_000)
    with Sandbox(workers=1, limits=limits) as pool:
        pool.start()
        yield pool


@pytest.mark.parametrize("poison,check,expected", POISON_THEN_CHECK)
def test_nothing_leaks_between_runs_of_a_reused_worker(
    reused_sandbox: Sandbox, poison, check, expected
):
    baseline = reused_sandbox.run(check, seed=0)
    reused_sandbox.run(poison)
    result = reused_sandbox.run(check, seed=0)
    assert result.worker_pid == baseline.worker_pid  # the same process served all three
    assert result.status == "ok", result
    assert result.value == (expected or baseline.value)


def test_cyclic_garbage_is_finalised_within_its_own_run(sandbox: Sandbox):
    # Otherwise the generator's finally would run during some later run, against its state.
    code = (
        "def g():\n    try:\n        yield 1\n    finally:\n        print('finalised')\n"
        "x = g()\nnext(x)\ncycle = [x]\ncycle.append(cycle)"
    )
    result = sandbox.run(code)
    assert (result.status, result.stdout) == ("ok", "finalised\n")


def test_names_do_not_survive_between_runs(sandbox: Sandbox):
    sandbox.run_many(["secret = 41", "secret = 41"])
    result = sandbox.run("secret + 1")
    assert result.status == "error" and "NameError" in result.error


def test_random_is_seeded_per_run(sandbox: Sandbox):
    code = "import random\nimport numpy as np\n[random.random(), float(np.random.rand())]"
    first, second = sandbox.run(code, seed=5), sandbox.run(code, seed=5)
    other = sandbox.run(code, seed=6)
    assert first.value == second.value != other.value
    assert first.value.startswith(f"[{random.Random(5).random()!r}, ")


def test_dtype_is_checked_and_used_once(sandbox: Sandbox):
    # A dtype-like object answering "i8" to the check and "O" to the build would forge
    # object pointers; the facade converts once and builds with what it checked.
    code = (
        "import numpy as np\nclass D:\n    n = 0\n    @property\n    def dtype(self):\n"
        "        D.n += 1\n        return np.dtype('i8' if D.n == 1 else 'O')\n"
        "np.ndarray((1,), dtype=D(), buffer=np.array([4096])).dtype.kind"
    )
    assert sandbox.run(code).value == "'i'"


# --- results ---------------------------------------------------------------------------------


def test_value_prefers_last_expression_then_result(sandbox: Sandbox):
    assert sandbox.run("result = 3\nresult * 2").value == "6"
    assert sandbox.run("result = 3\nprint('x')").value == "3"
    assert sandbox.run("x = 1").value is None
    assert sandbox.run("None").value is None


def test_error_is_one_line_with_the_model_line_number(sandbox: Sandbox):
    result = sandbox.run("x = 1\ny = [1, 2]\n\ny[5]")
    assert result.status == "error"
    assert result.error == "IndexError: list index out of range (line 4)"


def test_missing_import_is_a_name_error(sandbox: Sandbox):
    # The founding example called mean() without importing it; nothing is pre-bound.
    result = sandbox.run("mean([1, 2, 3])")
    assert result.status == "error"
    assert result.error == "NameError: name 'mean' is not defined (line 1)"


def test_output_before_an_error_is_kept(sandbox: Sandbox):
    result = sandbox.run("print('step 1')\n1 / 0")
    assert (result.status, result.stdout) == ("error", "step 1\n")
    assert result.error.startswith("ZeroDivisionError")


def test_output_limit_keeps_the_first_characters(sandbox: Sandbox):
    cap = sandbox.limits.max_output_chars
    result = sandbox.run("for i in range(10000):\n    print('abcdefghij')")
    assert result.status == "output_limit"
    assert len(result.stdout) == cap and result.stdout.startswith("abcdefghij\n")


def test_long_values_are_truncated(sandbox: Sandbox):
    result = sandbox.run("list(range(100000))")
    assert result.status == "ok"
    assert len(result.value) == sandbox.limits.max_value_chars
    assert result.value.endswith("...")


def test_compile_error_reports_syntax(sandbox: Sandbox):
    result = sandbox.run("def f(:\n    pass")
    assert result.status == "compile_error"
    assert result.error.startswith("SyntaxError") and "(line 1)" in result.error


def test_oversized_source_is_refused_without_a_worker(sandbox: Sandbox):
    result = sandbox.run("x = 1\n" * (sandbox.limits.max_code_chars // 6 + 1))
    assert result.status == "compile_error" and "SourceTooLong" in result.error
    assert result.worker_pid is None


def test_unencodable_source_is_refused(sandbox: Sandbox):
    result = sandbox.run("x = '\ud800'")
    assert result.status == "compile_error"


def test_exec_result_is_frozen_and_serialisable(sandbox: Sandbox):
    result = sandbox.run("print('hi')\n7")
    assert isinstance(result, ExecResult) and result.ok
    data = result.to_dict()
    assert data["status"] == "ok" and data["stdout"] == "hi\n" and data["value"] == "7"
    assert set(data) == {"status", "stdout", "value", "error", "duration_s", "worker_pid"}
    assert 0 < result.duration_s < 1
    with pytest.raises(AttributeError):
        result.status = "error"  # type: ignore[misc]


def test_non_ascii_output_round_trips(sandbox: Sandbox):
    result = sandbox.run("print('naïve café ✓')\n'ünï'")
    assert (result.stdout, result.value) == ("naïve café ✓\n", "'ünï'")
