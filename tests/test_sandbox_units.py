"""Unit tests of the sandbox's parts: framing, reply validation, limits, the compiler policy,
the facade tables and the guard functions. Nothing here executes model code: compilation is
checked in-process, guards are called directly on trusted objects."""

from __future__ import annotations

import _strptime
import dataclasses
import json
import os
import re
import struct
import threading
import time
import types
import typing
from collections import UserDict, UserList, UserString, deque
from datetime import datetime
from fractions import Fraction

import numpy as np
import pytest

from latent_env.sandbox import Limits
from latent_env.sandbox.facade_guards import (
    SandboxCachedProperty,
    clear_shared_caches,
    safe_asdict,
    safe_astuple,
    safe_replace,
    safe_update_wrapper,
    safe_wraps,
)
from latent_env.sandbox.facades import (
    Facade,
    _numpy_facades,
    _stdlib_facades,
    facade_items,
    make_import_hook,
)
from latent_env.sandbox.guards import (
    _ALLOWED_DUNDERS,
    USER_FILENAME,
    OutputBuffer,
    OutputLimitExceeded,
    guarded_getattr,
    guarded_getitem,
    guarded_pow,
    guarded_write,
    safe_format,
)
from latent_env.sandbox.policy import ALLOWED_DUNDER_ATTRIBUTES, CompileCache, compile_program
from latent_env.sandbox.protocol import (
    FrameTimeout,
    ProtocolError,
    encode_frame,
    read_frame,
    validate_reply,
)

pytestmark = pytest.mark.timeout(60)


# --- framing ----------------------------------------------------------------------------------


@pytest.fixture
def pipe():
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


def test_frame_round_trip(pipe):
    read_fd, write_fd = pipe
    message = {"id": 3, "text": "naïve ✓", "items": [1, None]}
    os.write(write_fd, encode_frame(message))
    assert read_frame(read_fd, 1024, time.monotonic() + 1) == message


def test_clean_end_of_stream_reads_as_none(pipe):
    read_fd, write_fd = pipe
    os.close(write_fd)
    assert read_frame(read_fd, 1024, time.monotonic() + 1) is None


@pytest.mark.parametrize(
    "raw,reason",
    [
        (struct.pack(">I", 10_000), "exceeds"),
        (struct.pack(">I", 5) + b"{bad}", "malformed"),
        (struct.pack(">I", 2) + b"\xff\xfe", "malformed"),
        (struct.pack(">I", 3) + b"[1]", "not a JSON object"),
        (struct.pack(">I", 50) + b"{}", "inside a frame"),
        (b"\x00\x00", "inside a frame"),
    ],
)
def test_bad_frames_are_rejected(pipe, raw, reason):
    read_fd, write_fd = pipe
    os.write(write_fd, raw)
    os.close(write_fd)
    with pytest.raises(ProtocolError, match=reason):
        read_frame(read_fd, 1024, time.monotonic() + 1)


def test_deeply_nested_json_is_rejected_not_crashing(pipe):
    read_fd, write_fd = pipe
    body = b"[" * 100_000 + b"]" * 100_000
    os.set_blocking(read_fd, False)
    os.write(write_fd, struct.pack(">I", len(body)))
    writer = threading.Thread(target=os.write, args=(write_fd, body))
    writer.start()
    with pytest.raises(ProtocolError):
        read_frame(read_fd, 1 << 20, time.monotonic() + 5)
    writer.join()


def test_read_deadline(pipe):
    read_fd, write_fd = pipe
    os.write(write_fd, struct.pack(">I", 10) + b"{")  # incomplete, writer stays open
    started = time.monotonic()
    with pytest.raises(FrameTimeout):
        read_frame(read_fd, 1024, started + 0.2)
    assert 0.15 < time.monotonic() - started < 2


# --- reply validation -------------------------------------------------------------------------

GOOD = {"id": 7, "status": "ok", "stdout": "hi\n", "value": "1", "error": None}


def validate(message, **caps):
    limits = {"max_output_chars": 10, "max_value_chars": 10, "max_error_chars": 10, **caps}
    return validate_reply(message, request_id=7, **limits)


def test_valid_reply_passes():
    assert validate(dict(GOOD)) == GOOD
    error_reply = {**GOOD, "status": "error", "value": None, "error": "E: x"}
    assert validate(error_reply)["status"] == "error"


@pytest.mark.parametrize(
    "change,reason",
    [
        ({"extra": 1}, "keys"),
        ({"id": 8}, "different request"),
        ({"id": True}, "different request"),
        ({"status": "timeout", "error": "x"}, "invalid status"),
        ({"status": "crashed", "error": "x"}, "invalid status"),
        ({"status": "pwned"}, "invalid status"),
        ({"stdout": "x" * 11}, "exceeds"),
        ({"stdout": None}, "not a string"),
        ({"value": 5}, "not a string"),
        ({"error": "boom"}, "disagree"),
        ({"status": "error"}, "disagree"),
    ],
)
def test_invalid_replies_are_rejected(change, reason):
    with pytest.raises(ProtocolError, match=reason):
        validate({**GOOD, **change})


def test_missing_key_is_rejected():
    reply = dict(GOOD)
    del reply["value"]
    with pytest.raises(ProtocolError, match="keys"):
        validate(reply)


# --- limits -----------------------------------------------------------------------------------


def test_limits_defaults_and_validation():
    limits = Limits()
    assert limits.timeout_s == 2.0 and limits.memory_mb == 512
    assert limits.max_reply_bytes > limits.max_output_chars
    assert json.loads(json.dumps(limits.to_dict()))["runs_per_worker"] == 1
    for bad in ({"timeout_s": 0}, {"memory_mb": -1}, {"unprivileged_id": 0}):
        with pytest.raises(ValueError):
            Limits(**bad)


# --- compiler policy (compile only) -----------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    ["x[k] += 1", "self.n += 1", "a[1:2, ::3] *= 2", "x: int = 1", "self.x: int = 1",
     "super().__init__()", "f.__name__", "2 ** 8", "if __name__ == '__main__':\n    pass",
     "class A:\n    def __repr__(self):\n        return 'A'"],
)  # fmt: skip
def test_everyday_syntax_compiles(source):
    program = compile_program(source)
    assert program.error is None and program.code is not None


@pytest.mark.parametrize(
    "source",
    ["$last_value = 1", "_x = 1", "x.__class__", "x.__class__ += 1", "__name__ = 'x'",
     "class A:\n    def __getattribute__(self, name):\n        pass", "exec('1')"],
)  # fmt: skip
def test_forbidden_syntax_is_refused(source):
    program = compile_program(source)
    assert program.code is None and program.error


def test_allowed_dunder_lists_agree():
    assert ALLOWED_DUNDER_ATTRIBUTES == _ALLOWED_DUNDERS


def test_compile_cache_is_bounded_and_reuses():
    cache = CompileCache(2)
    first = cache.get("1 + 1")
    assert cache.get("1 + 1") is first
    cache.get("2")
    cache.get("3")
    assert len(cache) == 2
    assert cache.get("1 + 1") is not first  # evicted, compiled again


# --- facades ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facades():
    # The builders without build_facades()'s freezing of shared numpy arrays, which would
    # change numpy classes in this test process.
    return {**_stdlib_facades(), **_numpy_facades()}


def test_facades_expose_no_modules_or_shared_containers(facades):
    for name, facade in facades.items():
        for attr, value in facade_items(facade):
            assert not isinstance(value, types.ModuleType), (name, attr)
            assert not isinstance(value, dict | list | set | bytearray | np.ndarray), (name, attr)
            assert not attr.startswith("_"), (name, attr)


def test_shared_objects_hold_no_mutable_public_state(facades):
    # Classes and instances behind facades are shared by every run of a worker; a public
    # mutable container on one would carry data between runs. Numpy's polynomial classes keep
    # default domain/window arrays, which build_facades() makes read-only.
    mutable = (dict, list, set, bytearray, deque, UserDict, UserList, np.ndarray)
    found = set()
    for _, facade in facades.items():
        for _, value in facade_items(facade):
            namespace = vars(value) if hasattr(value, "__dict__") else {}
            for key, item in namespace.items():
                if not key.startswith("_") and isinstance(item, mutable):
                    found.add((getattr(value, "__name__", "?"), key, type(item).__name__))
    allowed_arrays = {
        (cls, key, "ndarray")
        for cls in ("Polynomial", "Chebyshev", "Legendre", "Hermite", "HermiteE", "Laguerre")
        for key in ("domain", "window")
    }
    assert found <= allowed_arrays


def test_only_vetted_ndarray_subclasses_are_exposed(facades):
    # Real ndarray subclasses inherit a constructor that takes a raw buffer; np.ndarray itself
    # is exposed as a guarded stand-in, and np.matrix's constructor always copies.
    subclasses = {
        value
        for facade in facades.values()
        for _, value in facade_items(facade)
        if isinstance(value, type) and issubclass(value, np.ndarray) and value is not np.ndarray
    }
    assert subclasses == {np.matrix}
    assert dict(facade_items(facades["numpy"]))["ndarray"] is not np.ndarray


def test_ndarray_over_a_buffer_is_checked(facades):
    ndarray = dict(facade_items(facades["numpy"]))["ndarray"]
    raw = np.arange(4, dtype=np.int64)
    assert ndarray((2,), np.int64, raw, 8).tolist() == [1, 2]
    assert ndarray(np.int64(2), "u1", bytearray(b"ab"), strides=[np.int64(1)]).tolist() == [97, 98]
    with pytest.raises(ValueError, match="within the buffer"):
        ndarray((2,), np.uint8, bytearray(4), -1)  # numpy itself would read before the buffer
    objects = np.zeros(2, dtype=object)
    for buffer in (objects, np.zeros(1, dtype=[("i", "i8"), ("o", "O")]), memoryview(objects)):
        with pytest.raises(TypeError, match="raw buffer"):
            ndarray((1,), np.int64, buffer)
    with pytest.raises(AttributeError):
        guarded_getattr(objects, "data")  # castable to writable bytes of the pointers
    with pytest.raises(AttributeError):
        guarded_getattr(memoryview(objects), "cast")  # one trusted code handed over
    with pytest.raises(AttributeError):
        guarded_getitem({"view": memoryview(objects)}, "view")
    assert len(guarded_getattr(np.zeros(3), "data")) == 3


def test_facades_are_read_only_and_nameless(facades):
    math_facade = facades["math"]
    assert math_facade.sqrt(9) == 3
    with pytest.raises(AttributeError):
        math_facade.sqrt = None
    with pytest.raises(AttributeError):
        del math_facade.pi
    assert not hasattr(math_facade, "__name__")  # blocks the sys.modules import fallback
    assert not hasattr(facades["statistics"], "sys")


def test_numpy_facade_omits_dangerous_names(facades):
    numpy_names = {attr for attr, _ in facade_items(facades["numpy"])}
    for name in ("load", "save", "fromfile", "frombuffer", "memmap", "ctypeslib", "lib",
                 "testing", "seterr", "set_printoptions", "recarray", "test", "bmat"):  # fmt: skip
        assert name not in numpy_names
    assert {"array", "polyfit", "linalg", "random", "ndarray", "r_"} <= numpy_names


def test_import_hook(facades):
    hook = make_import_hook(facades)
    assert isinstance(hook("numpy", None, None, None, 0), Facade)
    assert hook("numpy.linalg", None, None, ("inv",), 0) is facades["numpy.linalg"]
    assert hook("numpy.linalg", None, None, None, 0) is facades["numpy"]
    for name, level in (("os", 0), ("math", 1)):
        with pytest.raises(ImportError):
            hook(name, None, None, None, level)


# --- guards -----------------------------------------------------------------------------------


def test_guarded_getattr():
    assert guarded_getattr([1], "count")(1) == 1
    assert guarded_getattr(object(), "missing", 5) == 5
    for obj, name in ((1, "__class__"), (1, "mro"), (np.zeros(1), "ctypes"),
                      (np.zeros(1), "tofile"), (ValueError(), "obj"), ((x for x in []), "gi_frame"),
                      (types, "ModuleType")):  # fmt: skip
        with pytest.raises(AttributeError):
            guarded_getattr(obj, name, None)  # a default does not silence a refusal


def test_safe_format():
    assert safe_format("{0:>4}|{x[1]}|{y.real}", 7, x=[0, 1], y=2.5) == "   7|1|2.5"
    with pytest.raises(AttributeError):
        safe_format("{0.__class__}", 1)
    assert guarded_getattr("{}-{}", "format")(1, 2) == "1-2"


def test_format_is_guarded_whatever_the_receiver():
    class Sub(UserString):
        pass

    sub = Sub("")
    sub.data = "{0.__class__}"
    template = UserString("{0.__class__}")
    raw_holder = types.SimpleNamespace(bound="{0.__class__}".format, unbound=str.format)
    calls = [
        (guarded_getattr(template, "format"), (1,)),
        (guarded_getattr(UserString, "format"), (template, 1)),
        (guarded_getattr(UserString("{x.__class__}"), "format_map"), ({"x": 1},)),
        (guarded_getattr(UserString, "format_map"), (UserString("{x.__class__}"), {"x": 1})),
        (guarded_getattr(sub, "format"), (1,)),
        (guarded_getattr(super(Sub, sub), "format"), (1,)),
        (guarded_getattr(raw_holder, "bound"), (1,)),  # str.format found under another name
        (guarded_getattr(raw_holder, "unbound"), ("{0.__class__}", 1)),
    ]
    for format_, args in calls:
        with pytest.raises(AttributeError):
            format_(*args)
    assert guarded_getattr(UserString("a{}"), "format")(1) == "a1"
    assert guarded_getattr(UserString("{x}"), "format_map")({"x": 2}) == "2"


def test_no_modules_code_or_cython_globals_are_handed_out():
    holder = types.SimpleNamespace(module=types, code=test_safe_format.__code__)
    for name in ("module", "code"):
        with pytest.raises(AttributeError):
            guarded_getattr(holder, name)
    with pytest.raises(AttributeError):
        guarded_getitem({"m": types}, "m")
    assert guarded_getitem({"m": 1}, "m") == 1
    beta = np.random.Generator.beta  # a Cython function: func_globals is its module's dict
    for name in ("func_globals", "func_code", "func_closure", "func_dict", "func_defaults"):
        with pytest.raises(AttributeError):
            guarded_getattr(beta, name)
    assert guarded_getattr(beta, "__name__") == "beta"


def test_abc_registration_is_refused():
    for abc_class in (Fraction, UserDict, typing.Mapping):
        with pytest.raises(AttributeError, match="registration"):
            guarded_getattr(abc_class, "register")
    assert guarded_getattr(types.SimpleNamespace(register=len), "register") is len


def test_dataclass_helpers_read_fields_through_the_guard():
    @dataclasses.dataclass(init=False, eq=False, repr=False)
    class Text(UserString):
        format: object  # UserString.format: the raw str.format when read without the guard

        def __init__(self, data="{0.__class__}", **kwargs):
            super().__init__(data)
            self.kwargs = kwargs

    text = Text()
    for value in (
        safe_replace(text).kwargs["format"],
        safe_asdict(text)["format"],
        safe_astuple(text, tuple_factory=list)[0],
    ):
        with pytest.raises(AttributeError):
            value(1)

    @dataclasses.dataclass
    class Point:
        x: int
        tags: list

    point = Point(1, ["a"])
    assert safe_asdict(point) == {"x": 1, "tags": ["a"]}
    assert safe_asdict(point)["tags"] is not point.tags  # deep-copied, as dataclasses does
    assert safe_astuple(point) == (1, ["a"]) and safe_replace(point, x=3) == Point(3, ["a"])
    with pytest.raises(TypeError):
        safe_asdict(Point)


def model_function(name: str = "w") -> types.FunctionType:
    """A function the write guard treats as model-made (compiled under USER_FILENAME)."""
    namespace: dict = {}
    exec(compile(f"def {name}():\n    pass", USER_FILENAME, "exec"), namespace)
    return namespace[name]


def test_update_wrapper_copies_only_the_standard_names():
    def wrapped(x: int) -> int:
        """Doc."""
        return x

    wrapped.public = 1
    wrapped.__dict__["_private"] = 2
    wrapper = model_function()
    assert safe_update_wrapper(wrapper, wrapped) is wrapper
    assert (wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__) == ("wrapped", "Doc.", wrapped)
    assert wrapper.__annotations__ == wrapped.__annotations__ == {"x": "int", "return": "int"}
    assert wrapper.public == 1
    assert "_private" not in wrapper.__dict__
    partial = safe_wraps(wrapped, ["__name__"], [])(model_function("v"))
    assert (partial.__name__, partial.__doc__) == ("wrapped", None)

    class Named(str):
        pass

    for assigned, updated in [
        ((), ("__globals__",)),
        (("__array_interface__",), ()),
        ((Named("__name__"),), ()),
        ("__name__", ()),
        ((), "__dict__"),
    ]:
        with pytest.raises(TypeError, match="WRAPPER_"):
            safe_update_wrapper(model_function(), wrapped, assigned, updated)
    with pytest.raises(TypeError, match="WRAPPER_UPDATES"):
        safe_wraps(wrapped, updated=["__globals__"])
    with pytest.raises(TypeError, match="defined in the sandbox"):
        safe_update_wrapper(wrapped, wrapper)  # a trusted function, shared by every run


def test_cached_property_stores_only_under_public_names():
    class Box:
        pass

    prop = SandboxCachedProperty(lambda self: 42)
    prop.attrname = "value"
    box = Box()
    assert prop.__get__(box) == 42 and box.__dict__ == {"value": 42}
    for name in ("__reduce_ex__", "_x", "func_globals", None):
        prop.attrname = name
        with pytest.raises(TypeError, match="cannot"):
            prop.__get__(Box())


def test_shared_caches_keep_only_plain_keys():
    class Flags(int):
        pass

    class Format(str):
        pass

    re.compile("x y", re.VERBOSE)
    re.compile("x y z", Flags(0))
    _strptime._regex_cache.clear()
    datetime.strptime("01", "%d")
    datetime.strptime("01", Format("%m"))
    alias = typing.Literal[Format("a")]
    assert typing.Literal[Format("a")] is alias  # cached
    clear_shared_caches()
    assert (str, "x y", int(re.VERBOSE)) in re._cache  # plain entries stay warm
    assert all(type(key[2]) is int for key in re._cache)
    assert list(_strptime._regex_cache) == ["%d"]
    assert typing.Literal[Format("a")] is not alias


def test_guarded_pow():
    assert guarded_pow(2, 10) == 1024 and guarded_pow(2, 10, 1000) == 24
    assert guarded_pow(2.0, 0.5) == 2.0**0.5
    with pytest.raises(OverflowError):
        guarded_pow(3, 10**9)


def test_write_guard():
    assert guarded_write({}) is not None
    for shared in (1, "s", types, np.add):
        with pytest.raises(TypeError):
            guarded_write(shared)


def test_output_buffer_caps():
    buffer = OutputBuffer(5)
    buffer.write("abc")
    with pytest.raises(OutputLimitExceeded):
        buffer.write("defg")
    assert buffer.getvalue() == "abcde" and buffer.exceeded
    with pytest.raises(OutputLimitExceeded):
        buffer.write("")
