"""Policy SPEC strings → policies.

=================================  ==========================================================
SPEC                               policy
=================================  ==========================================================
``none``                           empty latent, gain exactly 0 (the baseline)
``random``                         random well-formed blocks over the text's numbers
``oracle``                         the task's gold program (privileged; upper bound)
``hf:default`` / ``hf:PATH_OR_ID``  a transformers causal LM with its chat template
``openai:BASE_URL#MODEL``          an OpenAI-compatible chat-completions server
``tree:BASE_SPEC``                 tree-of-thought over latents sampled from ``BASE_SPEC``
=================================  ==========================================================

Options follow a ``?`` as ``key=value`` pairs joined by ``&``, e.g.
``hf:default?temperature=0.7&max_new_tokens=96``, ``openai:http://127.0.0.1:8000/v1#qwen?timeout=5``
or ``tree:hf:default?k=4&depth=2&max_new_tokens=64`` (``k``, ``depth`` and ``temperature`` go to
the tree, the rest to its base). Keyword arguments to :func:`make_policy` override options.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from agents.base import Policy, PolicySpecError
from agents.hf import HFPolicy
from agents.openai import OpenAIPolicy
from agents.simple import NonePolicy, OraclePolicy, RandomPolicy
from agents.tree import TreePolicy

OPTION = re.compile(r"^[a-z_][a-z0-9_]*=[A-Za-z0-9_.+-]*$")  # values: numbers, words
HF_OPTIONS = {"temperature": float, "max_new_tokens": int, "top_p": float, "batch_size": int,
              "seed": int}
OPENAI_OPTIONS = {"temperature": float, "max_tokens": int, "timeout": float, "retries": int,
                  "backoff": float, "concurrency": int}
TREE_OPTIONS = {"k": int, "depth": int, "temperature": float}
RANDOM_OPTIONS = {"seed": int}
POLICY_FAMILIES = ("none", "random", "oracle", "hf", "openai", "tree")


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """``"hf:default?temperature=0.7"`` → ``("hf:default", {"temperature": "0.7"})``.

    Only a trailing ``?key=value&…`` counts as options, so a URL's own ``?`` elsewhere is kept.
    """
    head, sep, tail = spec.rpartition("?")
    if not sep or not tail or not all(OPTION.match(part) for part in tail.split("&")):
        return spec, {}
    options = dict(part.split("=", 1) for part in tail.split("&"))
    return head, options


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

    Raises :class:`PolicySpecError` for an unknown family, a malformed SPEC or a bad option.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise PolicySpecError("empty policy SPEC; choose from: " + ", ".join(POLICY_FAMILIES))
    body, raw = split_options(spec.strip())
    family, _, target = body.partition(":")
    builder = _BUILDERS.get(family)
    if builder is None:
        raise PolicySpecError(
            f"unknown policy {spec!r}; SPEC is one of: none, random, oracle, hf:PATH_OR_ID, "
            "openai:BASE_URL#MODEL, tree:BASE_SPEC"
        )
    options = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    policy = builder(target, options, tools, shared_models or {})
    policy.name = spec.strip()
    return policy


def _typed(family: str, options: Mapping[str, Any], schema: Mapping[str, type]) -> dict:
    """Check option names against ``schema`` and convert string values to its types."""
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise PolicySpecError(f"{family}: unknown option {key!r} (options: {known})")
        kind = schema[key]
        try:
            out[key] = kind(value)
        except (TypeError, ValueError):
            raise PolicySpecError(
                f"{family}: option {key}={value!r} is not a valid {kind.__name__}"
            ) from None
    return out


def _no_target(family: str, target: str) -> None:
    if target:
        raise PolicySpecError(f"{family} takes no argument, got {family}:{target}")


def _build_none(target, options, tools, shared) -> Policy:
    _no_target("none", target)
    _typed("none", options, {})
    return NonePolicy()


def _build_random(target, options, tools, shared) -> Policy:
    _no_target("random", target)
    return RandomPolicy(tools=None if tools is None else list(tools),
                        **_typed("random", options, RANDOM_OPTIONS))


def _build_oracle(target, options, tools, shared) -> Policy:
    _no_target("oracle", target)
    _typed("oracle", options, {})
    return OraclePolicy()


def _build_hf(target, options, tools, shared) -> Policy:
    typed = _typed("hf", options, HF_OPTIONS)
    return HFPolicy(target, loaded=shared.get(target), **typed)


def _build_openai(target, options, tools, shared) -> Policy:
    base_url, sep, model = target.rpartition("#")
    if not sep:
        raise PolicySpecError(f"openai:{target}: expected openai:BASE_URL#MODEL")
    return OpenAIPolicy(base_url, model, **_typed("openai", options, OPENAI_OPTIONS))


def _build_tree(target, options, tools, shared) -> Policy:
    if not target:
        raise PolicySpecError("tree: needs a base policy, e.g. tree:hf:default?k=4&depth=2")
    tree_options = {k: v for k, v in options.items() if k in TREE_OPTIONS}
    base_options = {k: v for k, v in options.items() if k not in TREE_OPTIONS}
    base = make_policy(target, tools=tools, shared_models=shared, **base_options)
    tool_map = tools if isinstance(tools, Mapping) or tools is None else _load_tools(tools)
    return TreePolicy(base, tools=tool_map, **_typed("tree", tree_options, TREE_OPTIONS))


def _load_tools(names: Collection[str]) -> Mapping[str, Any]:
    from latent_env.tools.registry import load_tools

    return load_tools(list(names))


_BUILDERS: dict[str, Callable[..., Policy]] = {
    "none": _build_none,
    "random": _build_random,
    "oracle": _build_oracle,
    "hf": _build_hf,
    "openai": _build_openai,
    "tree": _build_tree,
}
