"""Sandbox versions of the library functions the facades expose that would otherwise read or
write attributes whose names model code chooses, or change state shared by every run.

``dataclasses.replace``/``asdict``/``astuple`` read fields by (model-chosen) field name.
``functools.update_wrapper(w, f, assigned, updated)`` is ``setattr(w, name, getattr(f, name))``
for caller-chosen names: ``updated=('__globals__',)`` merged a real module's globals (real
builtins included) into the run's namespace. ``functools.cached_property`` stores under
``self.attrname``, which model code sets freely on an instance of its own subclass:
``'__reduce_ex__'`` in an instance dict, honoured by ``copy.deepcopy`` (``dataclasses.asdict``),
sets any attribute on any object. And library caches keyed by model objects (whose ``__hash__``
and ``__eq__`` model code wrote) answer a later run's lookups with this run's entries when a
worker serves more than one run; :func:`clear_shared_caches` drops them between runs.
"""

from __future__ import annotations

import _strptime  # datetime.strptime's format cache
import copy
import dataclasses
import functools
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from numpy._core import einsumfunc

from .guards import (
    guarded_getattr,
    is_opaque,
    is_public_attribute_name,
    is_user_class,
    may_write_attributes,
)

_ASSIGNABLE = frozenset(functools.WRAPPER_ASSIGNMENTS)
_UPDATABLE = frozenset(functools.WRAPPER_UPDATES)
_MISSING = object()


def only_for_model_objects(func: Callable[..., Any], what: str) -> Callable[..., Any]:
    """Wrap a library function that mutates its first argument so it accepts only objects
    model code made; otherwise a run could change a shared class for every later run."""

    @functools.wraps(func)
    def guarded(target: Any, *args: Any, **kwargs: Any) -> Any:
        if not (is_user_class(target) or may_write_attributes(target)):
            raise TypeError(f"{what} only accepts classes and functions defined in the sandbox")
        return func(target, *args, **kwargs)

    return guarded


def guarded_dataclass(cls: Any = None, /, **kwargs: Any) -> Any:
    """``dataclasses.dataclass`` for classes model code defined (it sets class attributes)."""

    def wrap(target: Any) -> Any:
        if not is_user_class(target):
            raise TypeError("dataclass() only accepts classes defined in the sandbox")
        return dataclasses.dataclass(target, **kwargs)

    return wrap if cls is None else wrap(cls)


# --- dataclasses helpers --------------------------------------------------------------------
# replace(), asdict() and astuple() read each field with getattr(obj, field.name): a model
# dataclass that subclasses a library class got that class's attributes unguarded (np.matrix's
# ``data``: a writable memoryview of object pointers; UserString's ``format``: str.format).


def safe_replace(obj: Any, /, **changes: Any) -> Any:
    """``dataclasses.replace`` with the unchanged fields read through the guard."""
    for field in dataclasses.fields(obj):
        if field.init and field.name not in changes:
            changes[field.name] = guarded_getattr(obj, field.name)
    return dataclasses.replace(obj, **changes)


def _converted(obj: Any, factory: Callable[[list[Any]], Any], pairs: bool) -> Any:
    """The recursion of ``dataclasses.asdict`` (``pairs``) and ``astuple``, guarded reads."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [
            (field.name, _converted(guarded_getattr(obj, field.name), factory, pairs))
            for field in dataclasses.fields(obj)
        ]
        return factory(items if pairs else [value for _, value in items])
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*[_converted(value, factory, pairs) for value in obj])
    if isinstance(obj, list | tuple):
        return type(obj)(_converted(value, factory, pairs) for value in obj)
    if isinstance(obj, dict):
        return type(obj)(
            (_converted(key, factory, pairs), _converted(value, factory, pairs))
            for key, value in obj.items()
        )
    return copy.deepcopy(obj)


def safe_asdict(obj: Any, *, dict_factory: Callable[[list[Any]], Any] = dict) -> Any:
    """``dataclasses.asdict`` with fields read through the guard."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on dataclass instances")
    return _converted(obj, dict_factory, pairs=True)


def safe_astuple(obj: Any, *, tuple_factory: Callable[[list[Any]], Any] = tuple) -> Any:
    """``dataclasses.astuple`` with fields read through the guard."""
    if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        raise TypeError("astuple() should be called on dataclass instances")
    return _converted(obj, tuple_factory, pairs=False)


# --- update_wrapper / wraps -------------------------------------------------------------------


def _wrapper_names(names: Any, allowed: frozenset[str], constant: str) -> tuple[str, ...]:
    """``names`` as a tuple, if it is a tuple or list of exact strs out of ``allowed`` (a copy:
    the caller's list cannot change between this check and the copying)."""
    if type(names) is tuple or type(names) is list:
        names = tuple(names)
        if all(type(name) is str and name in allowed for name in names):
            return names
    raise TypeError(f"update_wrapper() copies only names in functools.{constant} in the sandbox")


def _assigned_value(wrapped: Any, name: str) -> Any:
    """``getattr(wrapped, name)`` for one of WRAPPER_ASSIGNMENTS, when it is of the kind
    those attributes hold (a str or None; a dict for annotations), else _MISSING."""
    try:
        value = getattr(wrapped, name)
    except AttributeError:
        return _MISSING
    if name == "__annotations__":
        if not isinstance(value, dict):
            return _MISSING
        # dataclass() turns a class's annotation keys into generated source and attributes.
        return {k: v for k, v in value.items() if type(k) is str and k.isidentifier()}
    return value if value is None or type(value) is str else _MISSING


def _public_attributes(wrapped: Any) -> dict[str, Any]:
    """The entries of ``wrapped.__dict__`` model code could have read and set itself."""
    namespace = getattr(wrapped, "__dict__", None)
    if type(namespace) is not dict and type(namespace) is not types.MappingProxyType:
        return {}
    return {
        key: value
        for key, value in namespace.items()
        if is_public_attribute_name(key) and not is_opaque(value)
    }


def safe_update_wrapper(
    wrapper: Any,
    wrapped: Any,
    assigned: Any = functools.WRAPPER_ASSIGNMENTS,
    updated: Any = functools.WRAPPER_UPDATES,
) -> Any:
    """``functools.update_wrapper`` for model code: ``wrapper`` must be model-made, and only
    the standard names are copied (subsets of WRAPPER_ASSIGNMENTS / WRAPPER_UPDATES), with
    values of their usual kinds and, from ``__dict__``, only public names."""
    assigned = _wrapper_names(assigned, _ASSIGNABLE, "WRAPPER_ASSIGNMENTS")
    updated = _wrapper_names(updated, _UPDATABLE, "WRAPPER_UPDATES")
    if not may_write_attributes(wrapper):
        raise TypeError("update_wrapper only accepts classes and functions defined in the sandbox")
    for name in assigned:
        value = _assigned_value(wrapped, name)
        if value is not _MISSING:
            setattr(wrapper, name, value)
    for _ in updated:  # only "__dict__"; a class's mappingproxy has no update(), as in functools
        wrapper.__dict__.update(_public_attributes(wrapped))
    wrapper.__wrapped__ = wrapped  # after the __dict__ update, as functools does
    return wrapper


def safe_wraps(
    wrapped: Any,
    assigned: Any = functools.WRAPPER_ASSIGNMENTS,
    updated: Any = functools.WRAPPER_UPDATES,
) -> Callable[[Any], Any]:
    """``functools.wraps`` over :func:`safe_update_wrapper` (names checked up front)."""
    assigned = _wrapper_names(assigned, _ASSIGNABLE, "WRAPPER_ASSIGNMENTS")
    updated = _wrapper_names(updated, _UPDATABLE, "WRAPPER_UPDATES")

    def decorate(wrapper: Any) -> Any:
        return safe_update_wrapper(wrapper, wrapped, assigned, updated)

    return decorate


# --- cached_property --------------------------------------------------------------------------


class SandboxCachedProperty(functools.cached_property):  # type: ignore[type-arg]
    """``functools.cached_property`` that stores only under names model code could set itself.
    ``__get__`` is rewritten rather than extended so the name is read once: a subclass property
    named ``attrname`` could answer the check and the store differently."""

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        name = self.attrname
        if name is None:
            raise TypeError("cannot use a cached_property without calling __set_name__ on it")
        if not is_public_attribute_name(name):
            raise TypeError(f"cached_property cannot store a value under {name!r} in the sandbox")
        cache = instance.__dict__
        value = cache.get(name, _MISSING)
        if value is _MISSING:
            value = self.func(instance)
            cache[name] = value
        return value


SandboxCachedProperty.__name__ = SandboxCachedProperty.__qualname__ = "cached_property"
SandboxCachedProperty.__module__ = "functools"


# --- caches shared between runs ---------------------------------------------------------------


def _keep_plain_keys(cache: dict[Any, Any], is_plain: Callable[[Any], bool]) -> None:
    """Drop entries whose keys are not built from exact builtin values. Filtered by type only
    and rebuilt, so no model ``__hash__``/``__eq__`` runs; plain entries (the warm-up's) stay."""
    if all(is_plain(key) for key in cache):
        return
    kept = [(key, value) for key, value in cache.items() if is_plain(key)]
    cache.clear()
    cache.update(kept)


def _is_plain_re_key(key: Any) -> bool:
    # re._cache keys are (type(pattern), pattern, flags); flags may be a model int subclass.
    return (
        type(key) is tuple
        and len(key) == 3
        and (key[0] is str or key[0] is bytes)
        and type(key[1]) is key[0]
        and type(key[2]) is int
    )


def _lru_caches(module: types.ModuleType) -> list[Any]:
    return [v for v in vars(module).values() if isinstance(v, functools._lru_cache_wrapper)]


# LRU caches cannot be filtered by key; these refill cheaply (re's replacement templates,
# einsum's parsed equations; typing's generic aliases are cleared through typing._cleanups).
_CLEARED_LRU_CACHES = (*_lru_caches(re), *_lru_caches(einsumfunc))


def clear_shared_caches() -> None:
    """Forget what earlier runs left in library caches keyed by their objects."""
    for name in ("_cache", "_cache2"):  # re's pattern caches (_cache2 from Python 3.12)
        cache = getattr(re, name, None)
        if type(cache) is dict:
            _keep_plain_keys(cache, _is_plain_re_key)
    with _strptime._cache_lock:
        _keep_plain_keys(_strptime._regex_cache, lambda key: type(key) is str)
    for cache in _CLEARED_LRU_CACHES:
        cache.cache_clear()
    for clear in typing._cleanups:  # type: ignore[attr-defined]
        clear()
