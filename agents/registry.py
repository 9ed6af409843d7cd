"""Policy SPEC strings → policies, through the ``latent_env.policies`` entry-point group.

=================================  ==========================================================
SPEC                               policy
=================================  ==========================================================
``none``                           empty latent, gain exactly 0 (the baseline)
``random``                         random well-formed blocks over the text's numbers
``oracle``                         the task's gold program (privileged; upper bound)
``hf:default`` / ``hf:PATH_OR_ID``  a transformers causal LM with its chat template
``openai:BASE_URL#MODEL``          an OpenAI-compatible chat-completions server
``tree:BASE_SPEC``                 tree-of-thought over latents sampled from ``BASE_SPEC``
``NAME``                           a policy another distribution registers under ``NAME``
``MODULE:CLASS``                   a policy class in an importable module
``FILE.py:CLASS``                  a policy class in a Python file
=================================  ==========================================================

Options follow a ``?`` as ``key=value`` pairs joined by ``&``, e.g.
``hf:default?temperature=0.7&max_new_tokens=96``, ``openai:http://127.0.0.1:8000/v1#qwen?timeout=5``
or ``tree:hf:default?k=4&depth=2&max_new_tokens=64`` (``k``, ``depth`` and ``temperature`` go to
the tree, the rest to its base). Keyword arguments to :func:`make_policy` override options.

Built-in policies register through the same group as third-party ones (pyproject.toml)::

    [project.entry-points."latent_env.policies"]
    mine = "my_package.module:MyPolicy"

A registered or referenced class is built by ``cls.from_spec(target, options, tools=...,
shared_models=...)`` when it defines that class method (``hf``, ``openai`` and ``tree`` do: they
take a ``:TARGET``); otherwise by ``cls(**options)``, the options typed by the constructor's
annotations, with the environment's tools passed as ``tools=`` when the constructor has that
parameter. The SPEC becomes the policy's ``name``.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from latent_env.agents.base import Policy, PolicySpecError
from latent_env.agents.loader import is_class_ref, load_class_ref
from latent_env.agents.spec import TOOLS_PARAMETER, constructor_options, no_target, split_options

ENTRY_POINT_GROUP = "latent_env.policies"
OWN_DISTRIBUTION = "latent-env"
#: The built-in policies, as pyproject.toml registers them. The registry also knows them itself,
#: so a checkout whose installed metadata predates one (an editable install not reinstalled)
#: still resolves every built-in SPEC.
BUILTIN_POLICIES: dict[str, str] = {
    "none": "latent_env.agents.simple:NonePolicy",
    "random": "latent_env.agents.simple:RandomPolicy",
    "oracle": "latent_env.agents.simple:OraclePolicy",
    "hf": "latent_env.agents.hf:HFPolicy",
    "openai": "latent_env.agents.openai:OpenAIPolicy",
    "tree": "latent_env.agents.tree:TreePolicy",
}
POLICY_FAMILIES = tuple(BUILTIN_POLICIES)
_USAGE = {"hf": "hf:PATH_OR_ID", "openai": "openai:BASE_URL#MODEL", "tree": "tree:BASE_SPEC"}

__all__ = ["BUILTIN_POLICIES", "ENTRY_POINT_GROUP", "POLICY_FAMILIES", "PolicyEntry",
           "available_policies", "make_policy", "split_options"]


@dataclass(frozen=True)
class PolicyEntry:
    """One registered policy: its SPEC name, ``module:Class`` and the distribution that owns it."""

    name: str
    value: str
    distribution: str

    def load(self) -> type:
        """The policy class (imported now); :class:`PolicySpecError` if it cannot be."""
        return load_class_ref(self.value, f"policy {self.name!r} ({self.value} from "
                                          f"{self.distribution!r})")


def available_policies() -> dict[str, PolicyEntry]:
    """Every registered policy by SPEC name: the built-ins, then the installed ones.

    Two distributions registering one name is an error naming both: keeping one of them
    silently would bench a policy the user did not mean. The same distribution seen twice on
    ``sys.path`` (an editable and a regular install) counts once.
    """
    found = {name: PolicyEntry(name, value, OWN_DISTRIBUTION)
             for name, value in BUILTIN_POLICIES.items()}
    seen: set[tuple[str, str]] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        entry = PolicyEntry(ep.name, ep.value, _distribution(ep))
        other = found.get(entry.name)
        if other is not None and other.distribution != entry.distribution:
            raise PolicySpecError(
                f"policy name {entry.name!r} is registered by two distributions, "
                f"{other.distribution!r} ({other.value}) and {entry.distribution!r} "
                f"({entry.value}); uninstall one or rename its entry point")
        if (entry.name, entry.distribution) not in seen:  # the first copy on sys.path wins
            found[entry.name] = entry
            seen.add((entry.name, entry.distribution))
    return found


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "an unknown distribution"


def make_policy(
    spec: str,
    tools: Mapping[str, Any] | Collection[str] | None = None,
    shared_models: Mapping[str, tuple[Any, Any]] | None = None,
    **overrides: Any,
) -> Policy:
    """Build the policy a SPEC names (see the module docstring).

    Args:
        spec: the SPEC string; it becomes the policy's ``name``.
        tools: the environment's tools (``{tag: Tool}``) or their tags; ``random`` writes only
            blocks for these, ``tree`` runs candidates with them.
        shared_models: already loaded ``{model_spec: (model, tokenizer)}`` an ``hf`` policy
            reuses instead of loading its own copy.
        overrides: option values, overriding the SPEC's ``?key=value`` options.

    Raises :class:`PolicySpecError` for an unknown name, a malformed SPEC, a bad option, or a
    class that cannot be loaded or is not a policy.
    """
    registered = available_policies()
    if not isinstance(spec, str) or not spec.strip():
        raise PolicySpecError("empty policy SPEC; choose from: " + _choices(registered))
    body, raw = split_options(spec.strip())
    family, _, target = body.partition(":")
    if family in registered:
        cls = registered[family].load()
    elif is_class_ref(body):
        cls, family, target = load_class_ref(body), body, ""
    else:
        raise PolicySpecError(f"unknown policy {spec!r}; SPEC is one of: {_choices(registered)}")
    options = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    policy = _build(cls, family, target, options, tools, shared_models or {})
    policy.name = spec.strip()
    return policy


def _build(
    cls: type,
    family: str,
    target: str,
    options: Mapping[str, Any],
    tools: Mapping[str, Any] | Collection[str] | None,
    shared_models: Mapping[str, tuple[Any, Any]],
) -> Policy:
    """``cls.from_spec(...)`` if the class defines it, else ``cls(**options)`` (module docstring).

    An exception other than :class:`PolicySpecError` from the class's own code becomes one,
    naming the class: a constructor's complaint is about the SPEC the user wrote.
    """
    try:
        from_spec = getattr(cls, "from_spec", None)
        if callable(from_spec):
            policy = from_spec(target, options, tools=tools, shared_models=shared_models)
        else:
            no_target(family, target)
            kwargs = constructor_options(family, cls, options)
            if _takes_tools(cls):
                kwargs[TOOLS_PARAMETER] = tools
            policy = cls(**kwargs)
    except PolicySpecError:
        raise
    except Exception as exc:
        raise PolicySpecError(f"{family}: building {cls.__name__} failed: "
                              f"{type(exc).__name__}: {exc}") from exc
    return policy


def _takes_tools(cls: type) -> bool:
    try:
        return TOOLS_PARAMETER in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def _choices(registered: Mapping[str, PolicyEntry]) -> str:
    plugins = sorted(name for name in registered if name not in BUILTIN_POLICIES)
    names = [_USAGE.get(name, name) for name in BUILTIN_POLICIES] + plugins
    return ", ".join([*names, "MODULE:CLASS", "FILE.py:CLASS"])
