"""Read-only module facades: what ``import`` hands model code instead of real modules.

Real modules leak: ``statistics.sys``, ``fractions.sys`` and ``datetime.sys`` are the ``sys``
module, and numpy submodules reach ``ctypes`` and file I/O. A :class:`Facade` exposes a fixed
table of vetted attributes (functions, classes, immutable constants; never modules or shared
mutable containers), refuses assignment, and has no ``__name__`` (CPython's ``from m import x``
falls back to ``sys.modules[m.__name__ + '.x']`` when ``x`` is missing).

Facades are built once per worker and shared by all its runs. Per-run state lives elsewhere:
``random`` and ``numpy.random`` delegate to generators seeded afresh for every run
(:data:`RUN_STATE`), and :func:`reset_run_state` gives each run a new ``decimal`` context and
numpy's default floating-point error handling; a worker that serves more than one run also
drops, after each, library-cache entries keyed by that run's objects
(:func:`.facade_guards.clear_shared_caches`). Library functions that set attributes by name or store under names the
caller picks are replaced by the checked versions in :mod:`.facade_guards`.
"""

from __future__ import annotations
import __future__

import bisect
import builtins
import cmath
import collections
import dataclasses
import datetime
import decimal
import fractions
import functools
import heapq
import itertools
import json
import math
import operator
import random
import re
import statistics
import string
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import numpy.fft
import numpy.linalg
import numpy.polynomial
import numpy.random

from .facade_guards import (
    SandboxCachedProperty,
    guarded_dataclass,
    only_for_model_objects,
    safe_asdict,
    safe_astuple,
    safe_replace,
    safe_update_wrapper,
    safe_wraps,
)
from .guards import holds_object_pointers


class Facade:
    """A read-only stand-in for a module."""

    __slots__ = ("_facade_label", "_facade_attrs")

    def __init__(self, label: str, attrs: Mapping[str, Any]) -> None:
        try:
            object.__getattribute__(self, "_facade_attrs")
        except AttributeError:
            pass
        else:
            raise TypeError("a facade cannot be re-initialised")
        for name, value in attrs.items():
            if isinstance(value, types.ModuleType):
                raise TypeError(f"facade {label}: {name} is a raw module")
        object.__setattr__(self, "_facade_label", label)
        object.__setattr__(self, "_facade_attrs", types.MappingProxyType(dict(attrs)))

    def __getattr__(self, name: str) -> Any:
        attrs = object.__getattribute__(self, "_facade_attrs")  # no recursion before __init__
        try:
            return attrs[name]
        except KeyError:
            label = self._facade_label
            raise AttributeError(
                f"module {label!r} has no attribute {name!r} in the sandbox"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"module {self._facade_label!r} is read-only in the sandbox")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"module {self._facade_label!r} is read-only in the sandbox")

    def __dir__(self) -> list[str]:
        return sorted(self._facade_attrs)

    def __repr__(self) -> str:
        return f"<module {self._facade_label!r} (sandboxed)>"


def facade_items(facade: Facade) -> Iterable[tuple[str, Any]]:
    """The attributes a facade exposes (for audits and tests)."""
    attrs: Mapping[str, Any] = object.__getattribute__(facade, "_facade_attrs")
    return attrs.items()


# --- per-run state ----------------------------------------------------------------------------


class RunState:
    """Generators of the current run, created on first use from the run's seed."""

    def __init__(self) -> None:
        self.seed = 0
        self._python: random.Random | None = None
        self._numpy: np.random.RandomState | None = None

    def reset(self, seed: int) -> None:
        """Forget the previous run's generators."""
        self.seed = seed
        self._python = None
        self._numpy = None

    def python_random(self) -> random.Random:
        """This run's ``random.Random``."""
        if self._python is None:
            self._python = random.Random(self.seed)
        return self._python

    def numpy_random(self) -> np.random.RandomState:
        """This run's legacy numpy generator (behind ``np.random.rand`` and friends)."""
        if self._numpy is None:
            self._numpy = np.random.RandomState(self.seed % 2**32)
        return self._numpy


RUN_STATE = RunState()
_DECIMAL_TRAPS = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
_NUMPY_ERR_DEFAULTS = {"divide": "warn", "over": "warn", "under": "ignore", "invalid": "warn"}


def reset_run_state(seed: int) -> None:
    """Per-run reset of everything a run can change outside its own globals."""
    RUN_STATE.reset(seed)
    # Built from explicit values, not DefaultContext, so nothing a run did can carry over.
    decimal.setcontext(
        decimal.Context(
            prec=28,
            rounding=decimal.ROUND_HALF_EVEN,
            Emin=-999999,
            Emax=999999,
            capitals=1,
            clamp=0,
            flags=[],
            traps=_DECIMAL_TRAPS,
        )
    )
    np.seterr(**_NUMPY_ERR_DEFAULTS)
    np.seterrcall(None)  # np.errstate(call=...) left open by a suspended generator


def _delegates(names: Iterable[str], source: Callable[[], Any], label: str) -> dict[str, Any]:
    """Functions that forward to a method of the current run's generator."""

    def make(name: str) -> Callable[..., Any]:
        def forward(*args: Any, **kwargs: Any) -> Any:
            return getattr(source(), name)(*args, **kwargs)

        forward.__name__ = forward.__qualname__ = name
        forward.__doc__ = f"{label}.{name}, from this run's freshly seeded generator."
        return forward

    return {name: make(name) for name in names}


# --- building the tables ----------------------------------------------------------------------

_IMMUTABLE_SCALARS = (bool, int, float, complex, str, bytes, type(None), np.generic)


def _is_shareable(value: Any) -> bool:
    """Safe to share between runs: callables and immutable constants, not modules or
    containers another run could mutate."""
    if isinstance(value, types.ModuleType):
        return False
    if isinstance(value, _IMMUTABLE_SCALARS):
        return True
    if isinstance(value, (tuple, frozenset)):
        return all(_is_shareable(item) for item in value)
    return callable(value)


def _table(
    module: types.ModuleType, names: Iterable[str] | None = None, exclude: Iterable[str] = ()
) -> dict[str, Any]:
    """Public shareable attributes of ``module`` (``__all__`` when it has one)."""
    if names is None:
        names = getattr(module, "__all__", None) or [n for n in dir(module) if n[:1] != "_"]
    skip = set(exclude)
    table = {}
    for name in names:
        if name in skip or name[:1] == "_" or not hasattr(module, name):
            continue
        value = getattr(module, name)
        if _is_shareable(value):
            table[name] = value
    return table


_NUMPY_EXCLUDED = (
    # file and buffer I/O, pickles, raw memory
    "load", "save", "savez", "savez_compressed", "savetxt", "loadtxt", "genfromtxt",
    "fromregex", "fromfile", "frombuffer", "fromstring", "from_dlpack", "memmap",
    # process-wide settings another run would inherit
    "set_printoptions", "printoptions", "get_printoptions", "setbufsize", "getbufsize",
    "seterr", "seterrcall", "geterrcall",
    # introspection of the installation, the test runner, caller-frame evaluation
    "show_config", "show_runtime", "info", "get_include", "test", "bmat",
    # record arrays can be built over a raw buffer with object fields (forged pointers)
    "recarray", "record",
    # submodules: never touched here (numpy imports them lazily on attribute access, e.g.
    # f2py and testing), the four offered get facades of their own below
    "ma", "emath", "dtypes", "f2py", "char", "strings", "ctypeslib", "fft", "rec", "testing",
    "random", "lib", "exceptions", "polynomial", "core", "linalg", "typing",
)  # fmt: skip
_NUMPY_RANDOM_METHODS = (
    "beta", "binomial", "bytes", "chisquare", "choice", "dirichlet", "exponential", "f",
    "gamma", "geometric", "gumbel", "hypergeometric", "laplace", "logistic", "lognormal",
    "logseries", "multinomial", "multivariate_normal", "negative_binomial", "normal", "pareto",
    "permutation", "poisson", "power", "rand", "randint", "randn", "random", "random_sample",
    "ranf", "rayleigh", "sample", "seed", "shuffle", "standard_cauchy", "standard_exponential",
    "standard_gamma", "standard_normal", "standard_t", "triangular", "uniform", "vonmises",
    "wald", "weibull", "zipf",
)  # fmt: skip
_PYTHON_RANDOM_METHODS = (
    "betavariate", "choice", "choices", "expovariate", "gammavariate", "gauss",
    "getrandbits", "lognormvariate", "normalvariate", "paretovariate", "randbytes", "randint",
    "random", "randrange", "sample", "seed", "shuffle", "triangular", "uniform",
    "vonmisesvariate", "weibullvariate",
)  # fmt: skip
_TYPING_NAMES = (
    "Any", "Callable", "ClassVar", "Counter", "DefaultDict", "Deque", "Dict", "Final",
    "FrozenSet", "Generator", "Iterable", "Iterator", "List", "Literal", "Mapping",
    "MutableMapping", "Optional", "Sequence", "Set", "Tuple", "TypeVar", "Union", "cast",
    "TYPE_CHECKING",
)  # fmt: skip


class _ConcatenatorFacade:
    """``np.r_`` / ``np.c_`` without the matrix-builder form: for a bare string key numpy
    looks names up in the *calling frame's* globals and locals (``sys._getframe``)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Any) -> None:
        if hasattr(self, "_inner"):
            raise TypeError("cannot be re-initialised")
        self._inner = inner

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            raise TypeError("matrix-builder strings are not supported in the sandbox")
        return self._inner[key]

    def __len__(self) -> int:
        return len(self._inner)


def _index_tuple(value: Any) -> tuple[int, ...]:
    """A shape or strides argument as exact ints. Converted here, once, so that a model
    ``__index__`` runs before the buffer is inspected rather than inside numpy after it."""
    try:
        return (operator.index(value),)
    except TypeError:
        return tuple(operator.index(item) for item in value)


def _plain_buffer_size(buffer: Any) -> int:
    """Byte size of ``buffer``, refusing the memory of an object array: read as integers it is
    a writable table of PyObject pointers (forged objects, arbitrary memory access)."""
    nbytes = memoryview(buffer).nbytes  # a TypeError, as from numpy, for a non-buffer
    if holds_object_pointers(buffer):
        raise TypeError("arrays cannot be built over an object array's raw buffer in the sandbox")
    return nbytes


class _GuardedNdarrayMeta(type):
    """Metaclass of the ``np.ndarray`` that model code sees: ``isinstance`` and ``issubclass``
    answer for the real class, and construction over a buffer is checked."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, np.ndarray)

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, np.ndarray)

    def __call__(
        cls,
        shape: Any,
        dtype: Any = float,
        buffer: Any = None,
        offset: int = 0,
        strides: Any = None,
        order: Any = None,
    ) -> np.ndarray:
        # Convert once: a model object whose ``dtype`` property changes between two
        # conversions must not pass the check as "i8" and build as "O".
        descr = np.dtype(dtype)
        if buffer is None:
            return np.ndarray(shape, descr, None, offset, strides, order)
        # Object dtype over caller-supplied bytes turns integers into PyObject pointers.
        if descr.hasobject:
            raise TypeError("object arrays cannot be built over a raw buffer in the sandbox")
        shape = _index_tuple(shape)
        strides = None if strides is None else _index_tuple(strides)
        offset = operator.index(offset)
        # numpy checks the far end but takes a negative offset: memory before the buffer.
        if not 0 <= offset <= _plain_buffer_size(buffer):
            raise ValueError("offset must lie within the buffer")
        return np.ndarray(shape, descr, buffer, offset, strides, order)


class GuardedNdarray(metaclass=_GuardedNdarrayMeta):
    """Stands in for ``numpy.ndarray`` (isinstance checks and guarded construction)."""


def _default_rng(seed: Any = None) -> np.random.Generator:
    """numpy's default_rng, seeded from the run's seed when none is given (reproducible)."""
    return np.random.default_rng(RUN_STATE.seed if seed is None else seed)


def _numpy_facades() -> dict[str, Facade]:
    np_random = Facade(
        "numpy.random",
        {
            **_delegates(_NUMPY_RANDOM_METHODS, RUN_STATE.numpy_random, "numpy.random"),
            "default_rng": _default_rng,
            "Generator": np.random.Generator,
            "RandomState": np.random.RandomState,
            "PCG64": np.random.PCG64,
            "SeedSequence": np.random.SeedSequence,
        },
    )
    linalg = Facade("numpy.linalg", _table(numpy.linalg))
    fft = Facade("numpy.fft", _table(numpy.fft))
    polynomial = Facade(
        "numpy.polynomial",
        _table(
            numpy.polynomial,
            ["Polynomial", "Chebyshev", "Legendre", "Hermite", "HermiteE", "Laguerre"],
        ),
    )
    top = _table(np, exclude=_NUMPY_EXCLUDED)
    top.update(r_=_ConcatenatorFacade(np.r_), c_=_ConcatenatorFacade(np.c_), ndarray=GuardedNdarray)
    # Index helpers are shared instances (not callables, so _table skips them); they hold only
    # flags, which the write guard and the __init__ rule keep model code from changing.
    top.update(mgrid=np.mgrid, ogrid=np.ogrid, s_=np.s_, index_exp=np.index_exp)
    top.update({"random": np_random, "linalg": linalg, "fft": fft, "polynomial": polynomial})
    return {
        "numpy": Facade("numpy", top),
        "numpy.random": np_random,
        "numpy.linalg": linalg,
        "numpy.fft": fft,
        "numpy.polynomial": polynomial,
    }


def _stdlib_facades() -> dict[str, Facade]:
    python_random = _delegates(_PYTHON_RANDOM_METHODS, RUN_STATE.python_random, "random")
    python_random["Random"] = random.Random
    # singledispatch(method).register evaluates string annotations with typing.get_type_hints,
    # i.e. eval() outside the policy layer.
    functools_table = _table(functools, exclude=("singledispatch", "singledispatchmethod"))
    functools_table.update(
        update_wrapper=safe_update_wrapper,
        wraps=safe_wraps,
        cached_property=SandboxCachedProperty,
        total_ordering=only_for_model_objects(functools.total_ordering, "total_ordering"),
    )
    dataclasses_table = _table(
        dataclasses, ["field", "fields", "is_dataclass", "FrozenInstanceError", "InitVar"]
    )
    dataclasses_table.update(
        dataclass=guarded_dataclass, replace=safe_replace, asdict=safe_asdict, astuple=safe_astuple
    )
    tables: dict[str, dict[str, Any]] = {
        "math": _table(math),
        "cmath": _table(cmath),
        "statistics": _table(statistics),
        "fractions": _table(fractions),
        # DefaultContext & co. are shared mutable Context objects: _is_shareable drops them.
        "decimal": _table(decimal),
        "datetime": _table(datetime),
        "itertools": _table(itertools),
        "functools": functools_table,
        "collections": _table(collections),
        "heapq": _table(heapq),
        "bisect": _table(bisect),
        "random": python_random,
        "operator": _table(operator, exclude=("attrgetter", "methodcaller", "setitem", "delitem")),
        "string": _table(string, exclude=("Formatter", "Template")),
        # RegexFlag(v) caches a pseudo-member under v, for every later run: a model int equal
        # to everything and hashing like 10 would make a later re.I | re.M mean VERBOSE.
        "re": _table(re, exclude=("template", "RegexFlag")),
        "json": _table(json, ["dumps", "loads", "JSONDecodeError"]),
        "typing": _table(typing, _TYPING_NAMES),
        "dataclasses": dataclasses_table,
        "__future__": {n: getattr(__future__, n) for n in __future__.all_feature_names},
    }
    return {name: Facade(name, table) for name, table in tables.items()}


def build_facades() -> dict[str, Facade]:
    """Every importable name mapped to its facade."""
    facades = _stdlib_facades()
    facades.update(_numpy_facades())
    _freeze_class_arrays(facades.values())
    return facades


def _freeze_class_arrays(facades: Iterable[Facade]) -> None:
    """Make arrays stored on exposed classes read-only (``Polynomial.domain`` is one), since
    classes are shared by every run of the worker."""
    for facade in facades:
        for _, value in facade_items(facade):
            if isinstance(value, type):
                for attr in vars(value).values():
                    if isinstance(attr, np.ndarray):
                        attr.setflags(write=False)


def make_import_hook(facades: Mapping[str, Facade]) -> Callable[..., Facade]:
    """The ``__import__`` of model code: facades from the allow-list, ImportError otherwise."""
    allowed = ", ".join(sorted(n for n in facades if not n.startswith("_")))

    def guarded_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Facade | None:
        if type(fromlist) is list:
            # C code (numpy's cached imports, datetime.strptime) imports through
            # PyImport_Import, which looks up the *calling frame's* __import__ - ours, when
            # model code is on the stack - passes an empty list, and ignores the return value
            # in favour of sys.modules. Import statements always pass None or a tuple, and
            # model code cannot name __import__, so this path hands nothing to model code.
            builtins.__import__(name, globals, locals, fromlist, level)
            return None
        if level != 0:
            raise ImportError("relative imports are not allowed in the sandbox")
        facade = facades.get(name)
        if facade is None:
            raise ImportError(
                f"import of {name!r} is not allowed in the sandbox (allowed: {allowed})"
            )
        if fromlist:
            return facade
        # ``import numpy.linalg`` binds the top-level package, like the real import.
        return facades[name.partition(".")[0]]

    return guarded_import
