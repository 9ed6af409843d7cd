"""Adversarial payloads for the sandbox tests, grouped by category.

Each payload names the status it must end with and a fragment its error line must contain, so a
payload cannot pass by failing for an unrelated reason (a typo would give a NameError, not the
refusal being tested).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Payload:
    """Adversarial code and the outcome the sandbox must produce."""

    category: str
    name: str
    code: str
    status: str
    error_contains: str

    @property
    def id(self) -> str:
        return f"{self.category}-{self.name}"


_GEN = "def g():\n    yield 1\n"
_NP = "import numpy as np\n"
_ZERO_DIV = "try:\n    1 / 0\nexcept Exception as e:\n"

# (category, name, code, expected status, fragment of the error line)
# fmt: off
_TABLE: list[tuple[str, str, str, str, str]] = [
    # --- imports ---
    ("import", "os", "import os", "error", "not allowed"),
    ("import", "subprocess", "import subprocess", "error", "not allowed"),
    ("import", "ctypes", "import ctypes", "error", "not allowed"),
    ("import", "multiprocessing", "import multiprocessing", "error", "not allowed"),
    ("import", "importlib", "import importlib.util", "error", "not allowed"),
    ("import", "sys", "from sys import modules", "error", "not allowed"),
    ("import", "builtins", "import builtins", "compile_error", "reserved name"),
    ("import", "builtins-alias", "import builtins as b", "compile_error", "reserved name"),
    ("import", "dunder-import", "__import__('os')", "compile_error", "__import__"),
    ("import", "relative", "from . import secrets", "error", "relative"),
    ("import", "numpy-ctypeslib", "import numpy.ctypeslib", "error", "not allowed"),
    ("import", "numpy-lib", "import numpy.lib.stride_tricks", "error", "not allowed"),
    # CPython falls back to sys.modules['numpy.ctypeslib'] if a facade had a __name__.
    ("import", "from-numpy-ctypeslib", "from numpy import ctypeslib", "error", "cannot import"),
    ("import", "from-numpy-lib", "from numpy import lib", "error", "cannot import"),
    ("import", "from-numpy-testing", "from numpy import testing", "error", "cannot import"),
    # --- module graph leaks ---
    ("module-graph", "statistics-sys", "import statistics\nstatistics.sys", "error",
     "no attribute"),
    ("module-graph", "getattr-concat", "import fractions\ngetattr(fractions, 's' + 'ys')",
     "error", "no attribute"),
    ("module-graph", "from-datetime-sys", "from datetime import sys", "error", "cannot import"),
    ("module-graph", "module-dict", "import math\nmath.__dict__", "compile_error", "__dict__"),
    ("module-graph", "getattr-loader", "import math\ngetattr(math, '__loader__')", "error",
     "not allowed"),
    ("module-graph", "function-globals",
     "from statistics import mean\ngetattr(mean, '__glo' + 'bals__')", "error", "not allowed"),
    ("module-graph", "numpy-core", _NP + "np.core", "error", "no attribute"),
    ("module-graph", "numpy-random-mtrand", _NP + "np.random.mtrand", "error", "no attribute"),
    ("module-graph", "decimal-default-context", "import decimal\ndecimal.DefaultContext",
     "error", "no attribute"),
    ("module-graph", "singledispatch", "import functools\nfunctools.singledispatch", "error",
     "no attribute"),
    # --- object graph walks ---
    ("object-graph", "subclasses-syntax", "().__class__.__bases__[0].__subclasses__()",
     "compile_error", "__class__"),
    ("object-graph", "subclasses-getattr", "getattr(object, '__subclasses__')()", "error",
     "not allowed"),
    ("object-graph", "mro", "int.mro()", "error", "not allowed"),
    ("object-graph", "class-getattr", "getattr(1, '__class__')", "error", "not allowed"),
    ("object-graph", "init-globals",
     "class A:\n    def __init__(self):\n        pass\nA.__init__.__globals__",
     "compile_error", "__globals__"),
    ("object-graph", "init-self", "getattr(object.__init__, '__self__')", "error",
     "not allowed"),
    ("object-graph", "type-builtin", "type(1)", "error", "NameError"),
    # re-running __init__ on shared objects would change them for later runs
    ("object-graph", "reinit-facade", "import math\nmath.__init__('math', {})", "error",
     "not allowed"),
    ("object-graph", "reinit-mgrid", _NP + "np.mgrid.__init__(sparse=True)", "error",
     "not allowed"),
    ("object-graph", "reinit-typing", "import typing\ntyping.List.__init__(dict, ())", "error",
     "not allowed"),
    ("object-graph", "reinit-super", "import math\nsuper(object, math).__init__()", "error",
     "not allowed"),
    ("object-graph", "reinit-via-model-class",
     _NP + "class G:\n    pass\nG.__init__(np.mgrid)", "error", "only re-initialise"),
    ("object-graph", "exception-obj",
     "try:\n    (1).foo\nexcept AttributeError as e:\n    e.obj", "error", "not allowed"),
    ("object-graph", "attrgetter", "import operator\noperator.attrgetter('__class__')", "error",
     "no attribute"),
    ("object-graph", "vars", "vars()", "error", "NameError"),
    ("object-graph", "setattr-facade", "import math\nsetattr(math, 'pi', 3)", "error",
     "cannot modify"),
    # --- format strings ---
    ("format", "str-format-class", "'{0.__class__}'.format(1)", "error", "not allowed"),
    ("format", "format-map", "'{x.__class__.__mro__}'.format_map({'x': 1})", "error",
     "not allowed"),
    ("format", "unbound-str-format", "str.format('{0.__class__}', 1)", "error", "not allowed"),
    ("format", "nested-spec", "'{0:{1.__class__}}'.format(1, 2)", "error", "not allowed"),
    ("format", "gi-frame-field", _GEN + "'{0.gi_frame}'.format(g())", "error", "not allowed"),
    ("format", "string-formatter", "import string\nstring.Formatter().format('{0}', 1)",
     "error", "no attribute"),
    ("format", "methodcaller", "import operator\noperator.methodcaller('__reduce__')", "error",
     "no attribute"),
    ("format", "super-str-format",
     "class S(str):\n    pass\nsuper(S, S('{0.__class__}')).format(1)", "error", "not allowed"),
    ("format", "super-in-method",
     "class S(str):\n    def show(self):\n        return super().format(1)\n"
     "S('{0.__class__.__mro__}').show()", "error", "not allowed"),
    ("format", "fstring-dunder", "f'{(1).__class__}'", "compile_error", "__class__"),
    # --- frames and tracebacks ---
    ("frames", "gi-frame", _GEN + "g().gi_frame", "compile_error", "gi_frame"),
    ("frames", "gi-frame-getattr", _GEN + "getattr(g(), 'gi_' + 'frame')", "error",
     "not allowed"),
    ("frames", "gi-code-getattr", _GEN + "getattr(g(), 'gi_' + 'code')", "error", "not allowed"),
    ("frames", "traceback-attr", _ZERO_DIV + "    e.__traceback__", "compile_error",
     "__traceback__"),
    ("frames", "traceback-getattr", _ZERO_DIV + "    getattr(e, '__trace' + 'back__')",
     "error", "not allowed"),
    ("frames", "tb-frame-name", _ZERO_DIV + "    getattr(e, 'tb_frame')", "error",
     "not allowed"),
    # --- dangerous builtins ---
    ("builtins", "open", "open('/etc/passwd').read()", "error", "NameError"),
    ("builtins", "eval", "eval('1 + 1')", "compile_error", "Eval calls"),
    ("builtins", "exec", "exec('x = 1')", "compile_error", "Exec calls"),
    ("builtins", "compile", "compile('1', 'x', 'eval')", "error", "NameError"),
    ("builtins", "input", "input()", "error", "NameError"),
    ("builtins", "exit", "exit()", "error", "NameError"),
    ("builtins", "breakpoint", "breakpoint()", "compile_error", "breakpoint"),
    ("builtins", "globals", "globals()", "error", "NameError"),
    ("builtins", "builtins-dict", "__builtins__['open']", "compile_error", "__builtins__"),
    # --- guard shadowing ---
    ("shadowing", "posonly-getattr", "def f(_getattr_, /):\n    pass", "compile_error",
     "_getattr_"),
    ("shadowing", "assign-write", "_write_ = lambda ob: ob", "compile_error", "_write_"),
    ("shadowing", "metaclass-global", "__metaclass__ = type", "compile_error", "__metaclass__"),
    ("shadowing", "import-as-guard", "import math as _getitem_", "compile_error", "_getitem_"),
    ("shadowing", "except-as-guard", "try:\n    pass\nexcept Exception as _print_:\n    pass",
     "compile_error", "_print_"),
    # --- newer syntax ---
    ("syntax", "except-star", "try:\n    pass\nexcept* ValueError:\n    pass", "compile_error",
     "TryStar"),
    ("syntax", "match-class-pattern", "match 1:\n    case int(real=r):\n        pass",
     "compile_error", "Match"),
    ("syntax", "metaclass-keyword", "class A(metaclass=object):\n    pass", "compile_error",
     "metaclass"),
    ("syntax", "async-def", "async def f():\n    pass", "compile_error", "AsyncFunctionDef"),
    ("syntax", "dunder-del-method", "class A:\n    def __del__(self):\n        pass",
     "compile_error", "__del__"),
    ("syntax", "class-dunder-attr", "class A:\n    __array_interface__ = {}", "compile_error",
     "__array_interface__"),
    # --- state poisoning (the tests also check that the next run is unaffected) ---
    ("poison", "math-sqrt", "import math\nmath.sqrt = lambda x: 0", "error", "cannot modify"),
    ("poison", "facade-delattr", "import math\ndel math.pi", "error", "cannot modify"),
    ("poison", "class-attr", "import fractions\nfractions.Fraction.limit_denominator = None",
     "error", "cannot modify"),
    ("poison", "numpy-seterr", _NP + "np.seterr(all='raise')", "error", "no attribute"),
    ("poison", "numpy-printoptions", _NP + "np.set_printoptions(precision=1)", "error",
     "no attribute"),
    ("poison", "numpy-class-array", _NP + "np.polynomial.Polynomial.domain[0] = 5", "error",
     "read-only"),
    ("poison", "update-wrapper",
     "import functools, statistics\nfunctools.update_wrapper(statistics.mean, lambda: 0)",
     "error", "only accepts"),
    ("poison", "dataclass-shared",
     "import dataclasses, fractions\ndataclasses.dataclass(fractions.Fraction)", "error",
     "only accepts"),
    # --- memory bombs ---
    ("memory", "str-repeat", "'x' * 10**10", "memory_error", "MemoryError"),
    ("memory", "list-repeat", "[0] * 10**10", "memory_error", "MemoryError"),
    ("memory", "numpy-zeros", _NP + "np.zeros(10**11)", "memory_error", "MemoryError"),
    ("memory", "bytearray", "bytearray(10**10)", "memory_error", "MemoryError"),
    ("memory", "gradual-growth", "chunks = []\nwhile True:\n    chunks.append(bytes(10**8))",
     "memory_error", "MemoryError"),
    # --- CPU bombs ---
    ("cpu", "while-true", "while True:\n    pass", "timeout", "time limit"),
    ("cpu", "factorial", "import math\nmath.factorial(10**8)", "timeout", "time limit"),
    ("cpu", "sum-count", "import itertools\nsum(itertools.count())", "timeout", "time limit"),
    ("cpu", "catch-everything",
     "while True:\n    try:\n        while True:\n            pass\n"
     "    except BaseException:\n        pass", "timeout", "time limit"),
    ("cpu", "power-operator", "3**10**9", "error", "too large"),
    ("cpu", "pow-builtin", "pow(10, 10**9)", "error", "too large"),
    ("cpu", "inplace-power", "x = 2\nx **= 10**9", "error", "too large"),
    ("cpu", "huge-int-str", "str(10**5000)", "error", "ValueError"),
    # --- recursion ---
    ("recursion", "infinite", "def f(n):\n    return f(n + 1)\nf(0)", "error", "RecursionError"),
    ("recursion", "nested-repr", "x = []\nfor i in range(100000):\n    x = [x]\nrepr(x)",
     "error", "RecursionError"),
    ("recursion", "deep-parens", "(" * 500 + ")" * 500, "compile_error", "SyntaxError"),
    # --- output floods ---
    ("output", "one-huge-print", "print('x' * 10**7)", "output_limit", "exceeded"),
    ("output", "many-prints", "for i in range(10**6):\n    print(i)", "output_limit",
     "exceeded"),
    ("output", "swallowed-limit",
     "for i in range(10**5):\n    try:\n        print('x' * 50)\n    except BaseException:\n"
     "        pass", "output_limit", "exceeded"),
    # --- exits raised by model code ---
    ("exit", "system-exit", "raise SystemExit(3)", "error", "SystemExit"),
    ("exit", "keyboard-interrupt", "raise KeyboardInterrupt", "error", "KeyboardInterrupt"),
    ("exit", "generator-exit", "raise GeneratorExit", "error", "GeneratorExit"),
    ("exit", "quit", "quit()", "error", "NameError"),
    # --- numpy pickle / ctypes / raw memory ---
    ("numpy", "load-pickle", _NP + "np.load('x.npy', allow_pickle=True)", "error",
     "no attribute"),
    ("numpy", "array-ctypes", _NP + "np.arange(3).ctypes", "error", "not allowed"),
    ("numpy", "reduce", _NP + "np.ndarray.__reduce__", "compile_error", "__reduce__"),
    ("numpy", "dumps", _NP + "np.arange(3).dumps()", "error", "not allowed"),
    ("numpy", "tofile", _NP + "np.arange(3).tofile('/tmp/x')", "error", "not allowed"),
    ("numpy", "frombuffer", _NP + "np.frombuffer(b'abc', dtype=np.uint8)", "error",
     "no attribute"),
    ("numpy", "resize-refcheck", _NP + "np.arange(3).resize(10, refcheck=False)", "error",
     "not allowed"),
    ("numpy", "bitgen-ctypes", _NP + "np.random.PCG64(1).ctypes", "error", "not allowed"),
    ("numpy", "bitgen-capsule", _NP + "np.random.PCG64(1).capsule", "error", "not allowed"),
    ("numpy", "object-view", _NP + "np.zeros(2, dtype=object).view(np.int64)", "error",
     "Cannot change data-type"),
    # integers reinterpreted as PyObject pointers would forge objects
    ("numpy", "object-over-buffer",
     _NP + "np.ndarray((1,), dtype=object, buffer=np.array([4096], dtype=np.int64))",
     "error", "raw buffer"),
    ("numpy", "record-over-buffer", _NP + "np.recarray((1,), dtype=[('a', 'O')], buf=b'x' * 8)",
     "error", "no attribute"),
    ("numpy", "strides-setter", _NP + "a = np.arange(4)\na.strides = (10**9,)", "error",
     "cannot set attributes"),
    # ndarray.resize(refcheck=False) reached through super() on a subclass: dangling views
    ("numpy", "super-resize",
     _NP + "m = np.matrix(np.zeros((4, 4)))\nsuper(np.matrix, m).resize((1, 1), refcheck=False)",
     "error", "not allowed"),
    ("numpy", "super-setflags",
     _NP + "m = np.matrix(np.zeros(2))\nsuper(np.matrix, m).setflags(write=True)", "error",
     "not allowed"),
    ("numpy", "r-frame-lookup", _NP + "np.r_['__builtins__']", "error", "matrix-builder"),
    ("numpy", "memmap", _NP + "np.memmap", "error", "no attribute"),
    ("numpy", "test-runner", _NP + "np.test()", "error", "no attribute"),
    ("numpy", "array-interface", _NP + "getattr(np.zeros(1), '__array_interface__')", "error",
     "not allowed"),
    # Cython functions keep Python 2 aliases: func_globals is numpy.random's module dict (its
    # __loader__ reads any file, and writes to it change numpy.random for every later run).
    ("numpy", "cython-func-globals",
     _NP + "g = np.random.Generator.beta.func_globals\ng['__loader__'].get_data('/etc/passwd')",
     "error", "not allowed"),
    ("numpy", "cython-func-globals-getattr",
     _NP + "getattr(np.random.RandomState.rand, 'func_' + 'globals')['np'] = None", "error",
     "not allowed"),
    ("numpy", "cython-func-dict", _NP + "np.random.Generator.beta.func_dict['x'] = 1", "error",
     "not allowed"),
    ("numpy", "cython-func-code", _NP + "np.random.PCG64.advance.func_code", "error",
     "not allowed"),
    # numpy takes a negative offset: a writable view of the heap just before the buffer
    ("numpy", "negative-offset",
     _NP + "b = np.ndarray((16,), dtype='u1', buffer=bytearray(16), offset=-64)\nb[8] = 0",
     "error", "within the buffer"),
    # an int64 view of an object array's memory: its PyObject pointers, writable
    ("numpy", "int-view-over-object-buffer",
     _NP + "a = np.zeros(2, dtype=object)\nb = np.ndarray((2,), dtype=np.int64, buffer=a)\n"
     "b[0] = 4096", "error", "raw buffer"),
    ("numpy", "int-view-over-object-memoryview",
     _NP + "a = np.array([(1, None)], dtype=[('i', 'i8'), ('o', 'O')])\n"
     "np.ndarray((2,), dtype=np.int64, buffer=a.data)", "error", "not allowed"),
    ("numpy", "object-data-cast",
     _NP + "a = np.zeros(2, dtype=object)\nm = np.asarray(a.data.cast('B'))\nm[0] = 1", "error",
     "not allowed"),
    ("numpy", "void-scalar-data",
     _NP + "np.zeros(1, dtype=[('a', 'O')])[0].data.cast('B')[0]", "error", "not allowed"),
    # dataclasses.replace/asdict/astuple read fields with a plain getattr: a model dataclass
    # over np.matrix got ``data``, a writable memoryview of the object pointers
    ("numpy", "dataclass-replace-object-data",
     _NP + "import dataclasses\nclass M(np.matrix):\n    data: object\n"
     "    def __init__(self, *args, **kwargs):\n        self.got = kwargs\n"
     "M = dataclasses.dataclass(init=False, eq=False, repr=False)(M)\n"
     "r = dataclasses.replace(M(np.array([[None, None]], dtype=object)))\n"
     "np.asarray(r.got['data'].cast('B'))[0] = 1", "error", "not allowed"),
    # --- functools.update_wrapper / wraps copying caller-chosen attribute names ---
    ("wrapper", "update-wrapper-globals",
     "import functools, statistics\ndef w():\n    pass\n"
     "functools.update_wrapper(w, statistics.mean, (), ('__globals__',))\n"
     "def f():\n    b = globals()['__builtins__']\n    g = {}\n"
     "    b['exec'](\"import os; os.close(2); out = open('/etc/passwd').read(32)\", g)\n"
     "    return g['out']\nprint(f())", "error", "WRAPPER_UPDATES"),
    ("wrapper", "wraps-globals",
     "import functools, statistics\n@functools.wraps(statistics.mean, (), ('__globals__',))\n"
     "def w():\n    pass\ndef f():\n    return globals()['__builtins__']['exec']\nf()",
     "error", "WRAPPER_UPDATES"),
    # a class attribute __array_interface__ pointing at a freed temporary's buffer
    ("wrapper", "update-wrapper-array-interface",
     _NP + "import functools\nclass C:\n    pass\n"
     "functools.update_wrapper(C, np.zeros(1), ('__array_interface__',), ())\n"
     "np.asarray(C()).dtype.kind", "error", "WRAPPER_ASSIGNMENTS"),
    ("wrapper", "assigned-str-subclass",
     "import functools\nclass S(str):\n    pass\ndef w():\n    pass\ndef f():\n    pass\n"
     "functools.update_wrapper(w, f, (S('__name__'),))", "error", "WRAPPER_ASSIGNMENTS"),
    ("wrapper", "updated-not-a-sequence",
     "import functools\ndef w():\n    pass\nfunctools.wraps(len, updated='__dict__')(w)",
     "error", "WRAPPER_UPDATES"),
    # cached_property stores under its attrname, which a subclass instance lets model code set:
    # __reduce_ex__ in an instance dict, honoured by the deepcopy in dataclasses.asdict, sets
    # any attribute on any object (here a shared class, for every later run).
    ("wrapper", "cached-property-attrname",
     "import functools, fractions, dataclasses\nclass CP(functools.cached_property):\n"
     "    pass\ndef evil(self):\n"
     "    return lambda proto: (lambda: fractions.Fraction, (), "
     "(None, {'limit_denominator': 5}))\n"
     "cp = CP(evil)\ncp.attrname = '__reduce_ex__'\nclass Box:\n    pass\nBox.thing = cp\n"
     "b = Box()\nb.thing\n@dataclasses.dataclass\nclass H:\n    v: object\n"
     "dataclasses.asdict(H(b))\nfractions.Fraction.limit_denominator", "error",
     "cannot store"),
    # --- str.format reached through other receivers ---
    ("format", "userstring-format",
     "import collections\ncollections.UserString('{0.__class__.__mro__}').format(1)", "error",
     "not allowed"),
    ("format", "userstring-format-map",
     "import collections\ncollections.UserString('{x.__class__}').format_map({'x': 1})",
     "error", "not allowed"),
    ("format", "userstring-unbound",
     "import collections\n"
     "collections.UserString.format(collections.UserString('{0.__class__}'), 1)", "error",
     "not allowed"),
    ("format", "userstring-subclass-data",
     "import collections\nclass S(collections.UserString):\n    pass\ns = S('')\n"
     "s.data = '{0.__class__}'\ns.format(1)", "error", "not allowed"),
    ("format", "userstring-super",
     "import collections\nclass S(collections.UserString):\n    def format(self, *a):\n"
     "        return super().format(*a)\nS('{0.__class__}').format(1)", "error", "not allowed"),
    ("format", "dataclass-asdict-userstring",
     "import collections, dataclasses\n@dataclasses.dataclass(init=False, eq=False, repr=False)\n"
     "class S(collections.UserString):\n    format: object\n    def __init__(self):\n"
     "        self.data = '{0.__class__.__mro__}'\n"
     "dataclasses.asdict(S())['format'](1)", "error", "not allowed"),
    ("format", "dataclass-replace-userstring",
     "import collections, dataclasses\n@dataclasses.dataclass(init=False, eq=False, repr=False)\n"
     "class S(collections.UserString):\n    format: object\n"
     "    def __init__(self, *args, **kwargs):\n        self.data = '{0.__class__.__mro__}'\n"
     "        self.got = kwargs\n"
     "dataclasses.replace(S()).got.get('format')(1)", "error", "not allowed"),
    # routes that were already guarded, kept as regressions for the value-based check
    ("format", "map-unbound", "list(map(str.format, ['{0.__class__}'], [1]))", "error",
     "not allowed"),
    ("format", "partial-unbound",
     "import functools\nfunctools.partial(str.format, '{0.__class__}')(1)", "error",
     "not allowed"),
    ("format", "numpy-str", _NP + "np.str_('{0.__class__}').format(1)", "error", "not allowed"),
    ("format", "call-of-bound", "getattr('{0.__class__}'.format, '__call__')(1)", "error",
     "not allowed"),
    # --- ABC registration changes shared classes for every later run ---
    ("abc", "register-fraction", "import fractions\nfractions.Fraction.register(float)",
     "error", "registration"),
    ("abc", "register-typing-alias", "import typing\ntyping.Mapping.register(list)", "error",
     "registration"),
    # issubclass caches the positive answer on UserDict itself, for good
    ("abc", "register-model-subclass",
     "import collections\nclass D(collections.UserDict):\n    pass\nD.register(int)\n"
     "issubclass(int, collections.UserDict)", "error", "registration"),
    # RegexFlag(v) caches a pseudo-member under v: a model int with a chosen hash answering
    # True to == makes a later run's re.I | re.M mean VERBOSE
    ("cache", "regexflag-value-map", "import re\nre.RegexFlag(66)", "error", "no attribute"),
]
# fmt: on

ADVERSARIAL: list[Payload] = [Payload(*row) for row in _TABLE]
