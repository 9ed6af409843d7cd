"""Tool discovery through the ``latent_env.tools`` entry-point group.

Built-in tools register through the same group as third-party plugins (see pyproject.toml), so a
plugin is a first-class citizen: ``pip install`` a distribution that declares

    [project.entry-points."latent_env.tools"]
    mytool = "my_package.module:MyTool"

and every environment can use ``<mytool>…</mytool>`` blocks once it is named (the tag is the
class's ``tag``): ``LatentEnv(tools=[*DEFAULT_TOOLS, "mytool"])``, ``--tools
python,calc,predict,mytool``. Unnamed, every entry point uses :data:`DEFAULT_TOOLS`, so what a
prompt offers never depends on what else happens to be installed.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from latent_env.tools.base import Tool

ENTRY_POINT_GROUP = "latent_env.tools"
RESERVED_TAGS = frozenset({"reason", "thinking", "done", "output", "text", "latent"})
#: The tools used when none are named: by ``LatentEnv``/``gym.make``, ``latent-env bench`` and
#: ``complete``, ``score --run``, ``train_rl.py`` and the tree policy.
DEFAULT_TOOLS: tuple[str, ...] = ("python", "calc", "predict")


class ToolRegistryError(RuntimeError):
    """A tool that cannot be loaded or that clashes with another; the message says which."""


def available_tools() -> dict[str, importlib.metadata.EntryPoint]:
    """Entry points of every installed tool, by entry-point name.

    Two distributions registering the same name is an error naming both: keeping one of them
    silently would run a tool the user did not write. The same distribution seen twice on
    ``sys.path`` (an editable and a regular install) counts once.
    """
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        other = found.get(ep.name)
        if other is None:
            found[ep.name] = ep
        elif _distribution(other) != _distribution(ep):
            raise ToolRegistryError(
                f"tool name '{ep.name}' is registered by two distributions, "
                f"'{_distribution(other)}' ({other.value}) and '{_distribution(ep)}' ({ep.value}); "
                "uninstall one or rename its entry point")
    return found


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else "an unknown distribution"


def load_tools(names: Iterable[str] | None = None) -> dict[str, Tool]:
    """Instantiate tools by entry-point name (:data:`DEFAULT_TOOLS` if ``names`` is None; pass
    ``available_tools()`` for every installed one).

    Returns ``{tag: tool}``. Unknown names, reserved or duplicate tags raise
    :class:`ToolRegistryError` naming the culprit.
    """
    found = available_tools()
    wanted = list(DEFAULT_TOOLS if names is None else names)
    tools: dict[str, Tool] = {}
    owners: dict[str, str] = {}  # tag -> the entry-point name that brought it
    for name in wanted:
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise ToolRegistryError(f"no tool named '{name}' is installed (installed: {known})")
        try:
            cls = found[name].load()
            tool = cls()
        except Exception as exc:
            raise ToolRegistryError(f"tool '{name}' ({found[name].value}) failed to load: {exc}") from exc
        _check_tool(name, tool)
        if tool.tag in tools:
            other = owners[tool.tag]
            raise ToolRegistryError(
                f"tools '{name}' (from '{_distribution(found[name])}') and '{other}' (from "
                f"'{_distribution(found[other])}') both use <{tool.tag}>; choose one with "
                "tools=[...]")
        tools[tool.tag] = tool
        owners[tool.tag] = name
    return tools


def _check_tool(name: str, tool: object) -> None:
    if not isinstance(tool, Tool):
        raise ToolRegistryError(f"tool '{name}' is not a latent_env.tools.Tool subclass")
    if not tool.tag or not tool.tag.replace("_", "").isalnum() or tool.tag.lower() != tool.tag:
        raise ToolRegistryError(f"tool '{name}' has an invalid tag {tool.tag!r} (use [a-z0-9_]+)")
    if tool.tag in RESERVED_TAGS:
        raise ToolRegistryError(f"tool '{name}' uses the reserved tag <{tool.tag}>")
