"""The instruction a policy reads: what latent data is for, the tools it may call, the text.

Templates are format strings over ``{context}``, ``{tools}`` and ``{tags}``; ``compact`` (the
default) says it in a few tokens, ``founding`` is the founding document's example prompt. Every
layer that shows a policy a text (the environment, ``latent-env complete``, training data)
renders it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from latent_env.tools.base import Tool

# The founding document's "Example Prompt", adapted: what latent data is for, and the tools.
FOUNDING_PROMPT = """You are a language model reading a text whose next words you must predict. \
Predicting is hard when the text needs calculation or careful reasoning. Before the text goes \
on, you may write latent data that will be placed in front of it to help you:
{tools}
- <reason>step-by-step reasoning</reason>
The results are shown to you as <output>…</output>. Do not continue the text yourself. \
Write <done/> when you are finished.

<text>{context}</text>
"""
# The same instruction in a few tokens: on a CPU, prompt length is training time.
COMPACT_PROMPT = """Write latent data that helps predict how the text goes on: {tags} \
(tool outputs are shown to you), or <reason>…</reason>. Do not continue the text.
<text>{context}</text>
"""
PROMPTS = {"compact": COMPACT_PROMPT, "founding": FOUNDING_PROMPT}
DEFAULT_PROMPT = "compact"
#: A template (a name in PROMPTS or a format string) or ``prompt(task, tools) -> str``.
PromptLike = str | Callable[[Any, Mapping[str, Tool]], str]


def describe_tools(tools: Mapping[str, Tool]) -> str:
    return "\n".join(f"- <{tag}>…</{tag}>: {tool.description}" for tag, tool in tools.items())


def render_prompt(template: str, context: str, tools: Mapping[str, Tool]) -> str:
    """Fill a prompt template (a name in :data:`PROMPTS` or a format string): ``{context}``,
    ``{tools}`` (each tool's tag and description) and ``{tags}`` (the tags alone)."""
    template = PROMPTS.get(template, template)
    tags = ", ".join(f"<{tag}>…</{tag}>" for tag in tools)
    return template.format(context=context, tools=describe_tools(tools), tags=tags)


def prompt_for(prompt: PromptLike, task: Any, tools: Mapping[str, Tool]) -> str:
    """What the policy reads for ``task``: a callable prompt is called with the task and the
    tools; a template is filled with the task's context."""
    if callable(prompt):
        return prompt(task, tools)
    return render_prompt(prompt, task.context, tools)
