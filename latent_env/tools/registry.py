"""Tool discovery through the ``latent_env.tools`` entry-point group.

Built-in tools register through the same group as third-party plugins (see pyproject.toml), so a
plugin is a first-class citizen: ``pip install`` a distribution that declares

    [project.entry-points."latent_env.tools"]
    mytool = "my_package.module:MyTool"

and every environment can use ``<mytool>…</mytool>`` blocks (the tag is the class's ``tag``).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable

from latent_env.tools.base import Tool

ENTRY_POINT_GROUP = "latent_env.tools"
RESERVED_TAGS = frozenset({"reason", "thinking", "done", "output", "text", "latent"})


class ToolRegistryError(RuntimeError):
    """A tool that cannot be loaded or that clashes with another; the message says which."""


def available_tools() -> dict[str, importlib.metadata.EntryPoint]:
    """Entry points of every installed tool, by entry-point name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_tools(names: Iterable[str] | None = None) -> dict[str, Tool]:
    """Instantiate tools by entry-point name (all installed ones if ``names`` is None).

    Returns ``{tag: tool}``. Unknown names, reserved or duplicate tags raise
    :class:`ToolRegistryError` naming the culprit.
    """
    found = available_tools()
    wanted = list(found) if names is None else list(names)
    tools: dict[str, Tool] = {}
    for name in wanted:
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise ToolRegistryError(f"no tool named '{name}' is installed (installed: {known})")
        try:
            cls = found[name].load()
            tool = cls()
        except Exception as exc:
            raise ToolRegistryError(f"tool '{name}' ({found[name].value}) failed to load: {exc}") from exc
        _check_tool(name, tool, tools)
        tools[tool.tag] = tool
    return tools


def _check_tool(name: str, tool: object, tools: dict[str, Tool]) -> None:
    if not isinstance(tool, Tool):
        raise ToolRegistryError(f"tool '{name}' is not a latent_env.tools.Tool subclass")
    if not tool.tag or not tool.tag.replace("_", "").isalnum() or tool.tag.lower() != tool.tag:
        raise ToolRegistryError(f"tool '{name}' has an invalid tag {tool.tag!r} (use [a-z0-9_]+)")
    if tool.tag in RESERVED_TAGS:
        raise ToolRegistryError(f"tool '{name}' uses the reserved tag <{tool.tag}>")
    if tool.tag in tools:
        raise ToolRegistryError(f"tools '{name}' and {tools[tool.tag]!r} both use <{tool.tag}>")
