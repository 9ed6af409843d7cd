"""Tools the policy calls by writing ``<TAG>…</TAG>`` blocks; plugins join by entry point.

Writing a tool::

    from latent_env.tools import Tool, ToolOutput

    class Reverse(Tool):
        name = "reverse"
        tag = "reverse"
        description = "Reverses the text in the block."

        def run(self, text: str) -> ToolOutput:
            return ToolOutput("ok", text.strip()[::-1])

and declare it in your distribution's pyproject.toml::

    [project.entry-points."latent_env.tools"]
    reverse = "my_package:Reverse"

A tool whose ``run`` could take long or crash (a solver, a C extension, a parser of
model-written text) subclasses :class:`IsolatedTool` instead: the same ``run``, executed in a
worker process with a per-block ``timeout_s``.
"""

from latent_env.tools.base import MAX_OUTPUT_CHARS, TOOL_STATUSES, Tool, ToolOutput, clip_output
from latent_env.tools.isolated import IsolatedTool
from latent_env.tools.registry import (
    ENTRY_POINT_GROUP,
    RESERVED_TAGS,
    ToolRegistryError,
    available_tools,
    load_tools,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "MAX_OUTPUT_CHARS",
    "IsolatedTool",
    "RESERVED_TAGS",
    "TOOL_STATUSES",
    "Tool",
    "ToolOutput",
    "ToolRegistryError",
    "available_tools",
    "clip_output",
    "load_tools",
]
