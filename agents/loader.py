"""Loading the policy class a SPEC names by place: ``MODULE:CLASS`` or ``FILE.py:CLASS``.

``MODULE`` is imported as ``import MODULE`` would, with the current directory searched last, so
``--policy my_policies:Mine`` works from the folder holding ``my_policies.py`` without shadowing
installed packages. ``FILE.py`` is executed once per process as a private module (its folder is
searched last for its own imports, as for a script). Every failure is one
:class:`~latent_env.agents.base.PolicySpecError` line naming the SPEC and the place: no such
module or file, an import that raised (with its file:line), no such class, or a class that is
not a policy.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import traceback
from pathlib import Path
from types import ModuleType

from latent_env.agents.base import PolicySpecError

MODULE_REF = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
FILE_REF = re.compile(r"^(?P<path>.+\.py):(?P<name>[A-Za-z_]\w*)$")
PROTOCOL_HINT = ("a policy class has act_batch(observations, tasks=None) -> list[str] and "
                 "reset(seed=None); see agents/base.py")
REQUIRED_METHODS = ("act_batch", "reset")


def is_class_ref(body: str) -> bool:
    """Whether a SPEC (without options) names a class by place."""
    return bool(FILE_REF.match(body) or MODULE_REF.match(body))


def load_class_ref(ref: str, label: str | None = None) -> type:
    """The policy class ``ref`` (``MODULE:CLASS`` or ``FILE.py:CLASS``) names.

    ``label`` starts every error message (default: ``ref``). Raises :class:`PolicySpecError`.
    """
    label = label or ref
    file = FILE_REF.match(ref)
    if file:
        where, name = file["path"], file["name"]
        module = _import_file(label, Path(where))
    else:
        where, _, name = ref.rpartition(":")
        module = _import_module(label, where)
    cls = getattr(module, name, None)
    if cls is None:
        raise PolicySpecError(f"{label}: {where} has no class {name!r}{_policy_classes(module)}")
    check_policy_class(label, cls)
    return cls


def check_policy_class(label: str, cls: object) -> None:
    """Refuse anything but a class with the :class:`~latent_env.agents.base.Policy` methods."""
    if not inspect.isclass(cls):
        raise PolicySpecError(f"{label}: {getattr(cls, '__name__', cls)!s} is a "
                              f"{type(cls).__name__}, not a class ({PROTOCOL_HINT})")
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        names = " or ".join(f"{m}()" for m in missing)
        raise PolicySpecError(f"{label}: {cls.__name__} is not a policy: it has no {names} "
                              f"({PROTOCOL_HINT})")


def _import_module(label: str, name: str) -> ModuleType:
    _search_last(os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise PolicySpecError(
                f"{label}: no module named {name!r} (installed, on PYTHONPATH or in the current "
                "directory; a file is FILE.py:CLASS)") from None
        raise PolicySpecError(f"{label}: importing {name} failed: {_located(exc)}") from exc
    except Exception as exc:  # the module's own error: say where, not a traceback
        raise PolicySpecError(f"{label}: importing {name} failed: {_located(exc)}") from exc


def _import_file(label: str, path: Path) -> ModuleType:
    if not path.is_file():
        raise PolicySpecError(f"{label}: no such file {path}")
    resolved = path.resolve()
    # A private name per file: a file called random.py must not replace the stdlib's module.
    name = "_latent_env_policy_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    if name in sys.modules:  # bench builds each policy twice (check, then run): one execution
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise PolicySpecError(f"{label}: {path} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickle look the module up by name
    _search_last(str(resolved.parent))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise PolicySpecError(f"{label}: importing {path} failed: {_located(exc)}") from exc
    return module


def _search_last(folder: str) -> None:
    if folder not in sys.path and os.path.realpath(folder) not in map(os.path.realpath, sys.path):
        sys.path.append(folder)


def _located(exc: BaseException) -> str:
    """``FILE:LINE: Type: message`` of where an import failed."""
    if isinstance(exc, SyntaxError):
        return f"{exc.filename}:{exc.lineno}: {type(exc).__name__}: {exc.msg}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    return f"{where}{type(exc).__name__}: {exc}"


def _policy_classes(module: ModuleType) -> str:
    """`` (policy classes there: A, B)`` for a misspelt class name, or nothing."""
    found = sorted(
        name for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__
        and all(callable(getattr(value, m, None)) for m in REQUIRED_METHODS)
    )
    return f" (policy classes there: {', '.join(found)})" if found else ""
