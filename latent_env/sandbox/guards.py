"""Runtime half of the policy layer: the guard functions RestrictedPython's compiled code calls,
the builtins model code sees, and (from :mod:`.output`) the capped print collector.

These run inside worker processes only. The compile-time half (which names and syntax are
accepted, and where the guards are inserted) is in :mod:`.policy`.
"""

from __future__ import annotations

import _string  # the parser str.format itself uses, so field names are split identically
import abc
import builtins
import decimal
import functools
import operator
import string
import types
from collections import UserDict, UserList, UserString, deque
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from .limits import MAX_POW_RESULT_BITS
from .output import OutputBuffer as OutputBuffer  # re-exported: the worker imports them from here
from .output import OutputLimitExceeded as OutputLimitExceeded
from .output import PrintCollector as PrintCollector

#: Filename given to compiled model code; tracebacks and the write guard recognise it by this.
USER_FILENAME = "<sandbox>"
#: Set in the namespace of every class model code defines (model code cannot spell the name).
USER_CLASS_MARK = "__sandbox_user_class__"

# Attribute names refused on every object: frame/traceback/generator internals (also rejected at
# compile time, but getattr(x, name) is dynamic), the class graph, raw-pointer escapes
# (ndarray.ctypes, numpy bit generators' ctypes/cffi/capsule interfaces), and the Python 2
# aliases Cython functions still carry (numpy.random's: func_globals is the extension module's
# dict, with its __loader__ reading any file, and writable for every later run).
_CYTHON_FUNCTION_NAMES = {"func_globals", "func_code", "func_closure", "func_dict", "func_defaults"}
_BLOCKED_NAMES = frozenset(
    INSPECT_ATTRIBUTES | _CYTHON_FUNCTION_NAMES | {"mro", "ctypes", "cffi", "capsule"}
)
# Refused on numpy arrays and scalars: pickling/file output, and in-place reallocation
# (``resize(refcheck=False)`` can free memory that views still point to).
_NUMPY_BLOCKED_NAMES = frozenset({"tofile", "dump", "dumps", "resize", "setflags"})
# Objects whose attributes lead into interpreter internals; generators keep send/throw/close.
_OPAQUE_TYPES = (
    types.FrameType,
    types.CodeType,
    types.TracebackType,
    types.ModuleType,
    types.CoroutineType,
    types.AsyncGeneratorType,
)
_GENERATOR_METHODS = frozenset({"send", "throw", "close"})
# The only "_" names allowed (policy.ALLOWED_DUNDER_ATTRIBUTES; kept in sync by a test).
_ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__qualname__", "__doc__"})
_NUMPY_TYPES = (np.ndarray, np.generic)
_WRITABLE_CONTAINERS = (dict, list, set, bytearray, deque, np.ndarray, UserDict, UserList)
# Objects whose attributes model code may set although it did not create them; each is reset
# per run (decimal: a fresh context for every run, see facades.reset_run_state).
_WRITABLE_ATTRIBUTE_TYPES = (decimal.Context,)


class SandboxAttributeError(AttributeError):
    """Raised for attribute names the policy refuses."""


def _refuse(name: str) -> SandboxAttributeError:
    return SandboxAttributeError(f"access to attribute {name!r} is not allowed in the sandbox")


def is_opaque(value: Any) -> bool:
    """Modules, frames, code objects, tracebacks and the like: never handed to model code."""
    return isinstance(value, _OPAQUE_TYPES)


def is_public_attribute_name(name: Any) -> bool:
    """Whether model code may name this attribute: an exact str, not private (bar the allowed
    dunders) and not blocked. Library code that stores under caller-chosen names checks it."""
    if type(name) is not str:
        return False
    return not ((name[:1] == "_" and name not in _ALLOWED_DUNDERS) or name in _BLOCKED_NAMES)


def _check_attribute_name(name: Any) -> None:
    if type(name) is not str:
        raise TypeError("attribute name must be a string")
    if not is_public_attribute_name(name):
        raise _refuse(name)


# --- attribute access -------------------------------------------------------------------------


class _GuardedFormatter(string.Formatter):
    """str.format that resolves ``{0.attr}`` / ``{0[key]}`` through the sandbox guards."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
        first, rest = _string.formatter_field_name_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attr, key in rest:
            obj = guarded_getattr(obj, key) if is_attr else obj[key]
        return obj, first


_FORMATTER = _GuardedFormatter()


def safe_format(template: str, /, *args: Any, **kwargs: Any) -> str:
    """``template.format(*args, **kwargs)`` without unguarded attribute walks."""
    if not isinstance(template, str):
        raise TypeError("format() template must be a str")
    return _FORMATTER.vformat(template, args, kwargs)


def safe_format_map(template: str, mapping: Any, /) -> str:
    """``template.format_map(mapping)`` without unguarded attribute walks."""
    if not isinstance(template, str):
        raise TypeError("format_map() template must be a str")
    return _FORMATTER.vformat(template, (), mapping)


def _user_string_format(self: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``UserString.format``, which calls ``self.data.format``: through the guard."""
    return guarded_getattr(guarded_getattr(self, "data"), "format")(*args, **kwargs)


def _user_string_format_map(self: Any, mapping: Any, /) -> Any:
    """``UserString.format_map``, likewise."""
    return guarded_getattr(guarded_getattr(self, "data"), "format_map")(mapping)


_SAFE_FORMATS: dict[str, Callable[..., str]] = {
    "format": safe_format,
    "format_map": safe_format_map,
}
# Unbound methods that end in the raw str.format, whatever object they are reached from
# (compared by identity: a model object's __hash__ must not run inside the guard).
_SAFE_UNBOUND_FORMATS: tuple[tuple[Any, Callable[..., Any]], ...] = (
    (str.format, safe_format),
    (str.format_map, safe_format_map),
    (UserString.format, _user_string_format),
    (UserString.format_map, _user_string_format_map),
)
_ABC_REGISTER = abc.ABCMeta.register


def _safe_unbound_format(func: Any) -> Callable[..., Any] | None:
    for raw, safe in _SAFE_UNBOUND_FORMATS:
        if func is raw:
            return safe
    return None


def _is_str_or_str_type(obj: Any) -> bool:
    return isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))


# Types _checked_value looks at more closely; none can be subclassed, so type() finds them.
_INSPECTED_KINDS = frozenset(
    {
        types.BuiltinMethodType,
        types.MethodType,
        types.MethodDescriptorType,
        types.FunctionType,
        memoryview,
        *_OPAQUE_TYPES,
    }
)


def _checked_value(value: Any, name: str | None) -> Any:
    """What getattr found, as model code may have it: never a module, frame, code object or
    traceback, nor a memoryview of object pointers; str.format in any guise (bound, unbound,
    via UserString or super()) replaced by the guarded formatter; no ABC ``register`` (it
    changes classes shared by every run). ``name`` is None for an item."""
    kind = type(value)
    if kind not in _INSPECTED_KINDS:
        if isinstance(value, types.ModuleType):  # a module subclass
            raise _refuse_value(value, name)
        return value
    if kind is types.BuiltinMethodType:
        receiver = value.__self__
        if isinstance(receiver, str) and value.__name__ in _SAFE_FORMATS:
            return functools.partial(_SAFE_FORMATS[value.__name__], receiver)
    elif kind is types.MethodType:
        if value.__func__ is _ABC_REGISTER:
            raise SandboxAttributeError("ABC registration is not allowed in the sandbox")
        safe = _safe_unbound_format(value.__func__)
        if safe is not None:
            return functools.partial(safe, value.__self__)
    elif kind is types.MethodDescriptorType or kind is types.FunctionType:
        return _safe_unbound_format(value) or value
    elif kind is memoryview:
        if holds_object_pointers(value):  # ndarray.data of an object array
            raise _refuse_value(value, name)
    else:  # one of _OPAQUE_TYPES
        raise _refuse_value(value, name)
    return value


def _refuse_value(value: Any, name: str | None) -> SandboxAttributeError:
    if name is not None:
        return _refuse(name)
    return SandboxAttributeError(f"{type(value).__name__} items are not handed out in the sandbox")


def _is_numpy_object(obj: Any) -> bool:
    if isinstance(obj, _NUMPY_TYPES):
        return True
    return isinstance(obj, type) and issubclass(obj, _NUMPY_TYPES)


def holds_object_pointers(buffer: Any) -> bool:
    """Whether a buffer's memory is (or includes) PyObject pointers, as an object array's is:
    cast to bytes, or read by a numeric array, it forges objects. Unreadable formats count."""
    try:
        return bool(np.asarray(memoryview(buffer)).dtype.hasobject)
    except Exception:
        return True


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for model code: refuses private and dangerous names by raising, and hands
    out what it finds only after :func:`_checked_value`.

    A refused name raises even when a default is given, so probing cannot be silenced into None.
    Type-based rules look through ``super()`` objects: ``super(S, s).format`` on a str subclass
    would otherwise be the raw ``str.format``.
    """
    if type(name) is not str:  # the rule of _check_attribute_name, inlined: a hot path
        raise TypeError("attribute name must be a string")
    if (name[:1] == "_" and name not in _ALLOWED_DUNDERS) or name in _BLOCKED_NAMES:
        raise _refuse(name)
    target = obj.__self__ if isinstance(obj, super) else obj
    if name == "format" or name == "format_map":
        if isinstance(target, str):
            return functools.partial(_SAFE_FORMATS[name], target)
        if _is_str_or_str_type(target):
            return _SAFE_FORMATS[name]
    elif name == "obj" and isinstance(target, BaseException):
        # AttributeError.obj would hand out whatever object trusted code failed on.
        raise _refuse(name)
    elif name == "__init__":
        # Re-running __init__ on a shared object (a facade, np.mgrid, typing.List) would change
        # it for every later run; only objects model code made may be re-initialised.
        if isinstance(target, type):  # Base.__init__(self, ...): checked when called
            return _init_for_model_objects(getattr(obj, name))
        if not _is_model_made(target):
            raise _refuse(name)
    elif name in _NUMPY_BLOCKED_NAMES and _is_numpy_object(target):
        raise _refuse(name)
    if isinstance(target, _OPAQUE_TYPES):
        raise _refuse(name)
    if type(target) is memoryview and holds_object_pointers(target):  # cast() would unlock it
        raise _refuse(name)
    if isinstance(target, types.GeneratorType) and name not in _GENERATOR_METHODS:
        raise _refuse(name)
    return _checked_value(getattr(obj, name, *default), name)


def guarded_hasattr(obj: Any, name: str) -> bool:
    """``hasattr`` through the guard: refused names read as absent."""
    try:
        guarded_getattr(obj, name)
    except AttributeError:
        return False
    return True


def guarded_getitem(obj: Any, key: Any) -> Any:
    """``obj[key]``, with the value checks of attribute access: a container trusted code filled
    (a kwargs dict, a dataclasses.asdict result) hands out nothing getattr would refuse."""
    return _checked_value(obj[key], None)


# --- writes -----------------------------------------------------------------------------------


def make_user_class(
    name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
) -> type:
    """The ``__metaclass__`` RestrictedPython puts on every class statement: marks the class as
    model-made so the write guard lets model code set attributes on it and its instances."""
    namespace[USER_CLASS_MARK] = True
    return type(name, bases, namespace, **kwargs)


def is_user_class(cls: Any) -> bool:
    """True for classes defined by model code in this run (or subclasses of them)."""
    return isinstance(cls, type) and USER_CLASS_MARK in cls.__dict__


def is_user_function(obj: Any) -> bool:
    """True for functions and lambdas compiled from model code."""
    return isinstance(obj, types.FunctionType) and obj.__code__.co_filename == USER_FILENAME


def may_write_attributes(obj: Any) -> bool:
    """Whether model code may set attributes on ``obj``: only on things it made itself."""
    if isinstance(obj, type):
        return is_user_class(obj)
    return getattr(type(obj), USER_CLASS_MARK, False) is True or is_user_function(obj)


def _is_model_made(obj: Any) -> bool:
    """may_write_attributes, false for None (an unbound ``super()``)."""
    return obj is not None and may_write_attributes(obj)


def _init_for_model_objects(init: Any) -> Any:
    """``X.__init__`` read from a class is unbound, callable on any object: hand it out as is
    only if model code wrote it, else checked against a model-made ``self`` at call time."""
    if is_user_function(init):
        return init

    def init_model_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not may_write_attributes(self):
            raise TypeError("__init__ can only re-initialise objects made in the sandbox")
        return init(self, *args, **kwargs)

    return init_model_object


class _ItemWriter:
    """What ``_write_`` hands out for containers: item assignment yes, attribute assignment no."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._target[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._target[key]

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError(f"cannot set attributes on {type(self._target).__name__} objects")

    def __delattr__(self, name: str) -> None:
        raise TypeError(f"cannot delete attributes of {type(self._target).__name__} objects")


def guarded_write(obj: Any) -> Any:
    """``_write_``: the target of ``x.a = v`` / ``x[k] = v`` / ``del ...`` must be model-made
    (its own classes, instances and functions) or a plain container."""
    if may_write_attributes(obj) or type(obj) in _WRITABLE_ATTRIBUTE_TYPES:
        return obj
    if isinstance(obj, _WRITABLE_CONTAINERS):
        return _ItemWriter(obj)
    raise TypeError(f"cannot modify {type(obj).__name__} objects in the sandbox")


def guarded_setattr(obj: Any, name: str, value: Any) -> None:
    """``setattr`` for model code, with the same rules as ``obj.name = value``."""
    _check_attribute_name(name)
    setattr(guarded_write(obj), name, value)


# --- arithmetic and calls ---------------------------------------------------------------------


def guarded_pow(base: Any, exp: Any, mod: Any = None) -> Any:
    """``pow`` / ``**`` that refuses integer results above MAX_POW_RESULT_BITS.

    Big-int powers run in C holding the GIL, so refusing up front beats waiting for the timeout.
    """
    if mod is None and isinstance(base, int) and isinstance(exp, int) and exp > 0:
        # int.bit_length, not base.bit_length: an int subclass from model code could lie.
        if exp * (int.bit_length(base) - 1) > MAX_POW_RESULT_BITS:
            raise OverflowError(f"integer power too large (over {MAX_POW_RESULT_BITS} bits)")
    if mod is None:
        return base**exp
    return builtins.pow(base, exp, mod)


def _guarded_ipow(target: Any, value: Any) -> Any:
    if isinstance(target, int) and isinstance(value, int):
        return guarded_pow(target, value)
    return operator.ipow(target, value)


_INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": _guarded_ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}


def guarded_inplacevar(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_``: apply an augmented-assignment operator (``x += v``)."""
    return _INPLACE_OPERATORS[op](target, value)


def guarded_apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: calls written with ``*args`` / ``**kwargs``."""
    return func(*args, **kwargs)


# --- builtins and namespace -------------------------------------------------------------------

_SAFE_BUILTIN_NAMES = (
    "abs", "all", "any", "ascii", "bin", "bool", "bytearray", "bytes", "callable", "chr",
    "classmethod", "complex", "dict", "divmod", "enumerate", "filter", "float", "format",
    "frozenset", "hash", "hex", "int", "isinstance", "issubclass", "iter", "len", "list", "map",
    "max", "min", "next", "object", "oct", "ord", "property", "range", "repr", "reversed",
    "round", "set", "slice", "sorted", "staticmethod", "str", "sum", "super", "tuple", "zip",
    "NotImplemented", "Ellipsis", "None", "True", "False",
)  # fmt: skip
_EXCEPTION_NAMES = (
    "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "Exception",
    "FloatingPointError", "GeneratorExit", "ImportError", "IndexError", "KeyError",
    "KeyboardInterrupt", "LookupError", "MemoryError", "ModuleNotFoundError", "NameError",
    "NotImplementedError", "OSError", "OverflowError", "RecursionError", "RuntimeError",
    "StopIteration", "SystemExit", "TypeError", "UnboundLocalError", "UnicodeDecodeError",
    "UnicodeEncodeError", "UnicodeError", "ValueError", "ZeroDivisionError", "Warning",
    "UserWarning", "RuntimeWarning", "DeprecationWarning",
)  # fmt: skip


def build_builtins(import_hook: Callable[..., Any]) -> dict[str, Any]:
    """The ``__builtins__`` of model code. Never type, vars, globals, locals, dir, open,
    compile, eval, exec, input, exit, quit, help, breakpoint, id, memoryview or an unguarded
    getattr/setattr; ``print`` is rewritten by the compiler onto the run's collector."""
    table: dict[str, Any] = {name: getattr(builtins, name) for name in _SAFE_BUILTIN_NAMES}
    table.update({name: getattr(builtins, name) for name in _EXCEPTION_NAMES})
    table.update(
        {
            "__build_class__": builtins.__build_class__,
            "__import__": import_hook,
            "getattr": guarded_getattr,
            "hasattr": guarded_hasattr,
            "setattr": guarded_setattr,
            "pow": guarded_pow,
        }
    )
    return table


def build_globals_template(builtins_table: dict[str, Any]) -> dict[str, Any]:
    """Names every run's fresh globals start from (copied per run, never shared)."""
    return {
        "__builtins__": builtins_table,
        "__name__": "__main__",
        "__metaclass__": make_user_class,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": iter,
        "_write_": guarded_write,
        "_inplacevar_": guarded_inplacevar,
        "_apply_": guarded_apply,
        "_pow_": guarded_pow,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
    }


def new_run_globals(template: dict[str, Any], output: OutputBuffer) -> dict[str, Any]:
    """Fresh globals for one run, printing into ``output``."""
    namespace = dict(template)
    namespace["_print_"] = output.collector
    # The last-expression rewrite can leave a print outside any collector scope; give the
    # module scope a collector up front.
    namespace["_print"] = output.collector()
    return namespace


def iter_exception_lines(tb: types.TracebackType | None) -> Iterator[int]:
    """Line numbers of model-code frames in a traceback, outermost first."""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == USER_FILENAME:
            yield tb.tb_lineno
        tb = tb.tb_next
