"""The pieces of a policy SPEC: ``NAME[:TARGET][?key=value&key=value]``.

:func:`split_options` cuts the trailing options off; :func:`typed_options` checks them against a
schema (what a ``from_spec`` class method uses); :func:`constructor_options` checks them against
a class's constructor instead (what every other policy class gets).
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from latent_env.agents.base import PolicySpecError

OPTION = re.compile(r"^[a-z_][a-z0-9_]*=[A-Za-z0-9_.+-]*$")  # values: numbers, words
TOOLS_PARAMETER = "tools"  # a constructor parameter of this name gets the environment's tools
_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """``"hf:default?temperature=0.7"`` → ``("hf:default", {"temperature": "0.7"})``.

    Only a trailing ``?key=value&…`` counts as options, so a URL's own ``?`` elsewhere is kept.
    """
    head, sep, tail = spec.rpartition("?")
    if not sep or not tail or not all(OPTION.match(part) for part in tail.split("&")):
        return spec, {}
    options = dict(part.split("=", 1) for part in tail.split("&"))
    return head, options


def typed_options(family: str, options: Mapping[str, Any], schema: Mapping[str, type]) -> dict:
    """Check option names against ``schema`` and convert their values to its types.

    Raises :class:`PolicySpecError` naming ``family`` for an unknown option or a bad value.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in schema:
            raise _unknown_option(family, key, schema)
        out[key] = _convert(family, key, value, schema[key])
    return out


def no_target(family: str, target: str) -> None:
    """A policy that takes no ``:TARGET`` refuses one."""
    if target:
        raise PolicySpecError(f"{family} takes no argument, got {family}:{target}")


def constructor_options(family: str, cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``cls(...)`` from SPEC options, typed by the constructor's
    annotations (``int``, ``float``, ``bool``, ``str``, optionally ``| None``; other annotations
    get the string). The ``tools`` parameter is never an option: the caller fills it.

    Raises :class:`PolicySpecError` for an option the constructor does not take, a value of the
    wrong type, or a required parameter no option gives.
    """
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin or C class: nothing to inspect
        parameters = {}
    named = {
        name: p for name, p in parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != TOOLS_PARAMETER
    }
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    schema = {name: _scalar(p.annotation) for name, p in named.items()}
    unknown = {k: v for k, v in options.items() if k not in schema}
    if unknown and not takes_any:  # a constructor with **kwargs takes any option, as a string
        raise _unknown_option(family, next(iter(unknown)), schema)
    out = typed_options(family, {k: v for k, v in options.items() if k in schema}, schema)
    out.update(unknown)
    missing = [name for name, p in named.items() if p.default is p.empty and name not in out]
    if missing:
        needed = "&".join(f"{name}=…" for name in missing)
        raise PolicySpecError(f"{family}: needs the option(s) {', '.join(missing)} "
                              f"({family}?{needed})")
    return out


def _scalar(annotation: Any) -> type:
    """The scalar type an annotation names (``str`` when it names none or several)."""
    if isinstance(annotation, str):  # postponed annotations: read the text, do not eval it
        names = [part.strip() for part in annotation.split("|") if part.strip() != "None"]
        return _SCALARS.get(names[0], str) if len(names) == 1 else str
    if get_origin(annotation) is Union or isinstance(annotation, types.UnionType):
        kinds = [a for a in get_args(annotation) if a is not type(None)]
        return kinds[0] if len(kinds) == 1 and kinds[0] in _SCALARS.values() else str
    return annotation if annotation in _SCALARS.values() else str


def _unknown_option(family: str, key: str, schema: Mapping[str, type]) -> PolicySpecError:
    known = ", ".join(schema) or "none"
    return PolicySpecError(f"{family}: unknown option {key!r} (options: {known})")


def _convert(family: str, key: str, value: Any, kind: type) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE | _FALSE:
            return str(value).lower() in _TRUE
    else:
        try:
            return kind(value)
        except (TypeError, ValueError):
            pass
    raise PolicySpecError(f"{family}: option {key}={value!r} is not a valid {kind.__name__}")
