"""A tiny regex-based Python highlighter producing escaped HTML (no JavaScript, no libraries).

Code is split into tokens by one alternation of patterns; each recognised token becomes
``<span class="py-KIND">…</span>``, everything else is emitted as plain text. Every piece goes
through :func:`html.escape`, so untrusted code cannot inject markup whatever it contains. It is
a display aid, not a parser: unusual code just gets fewer colours.
"""

from __future__ import annotations

import builtins
import html
import keyword
import re

_STRING = r"""(?:(?<!\w)[rRbBuUfF]{1,2})?(?:'''[\s\S]*?(?:'''|$)|\"\"\"[\s\S]*?(?:\"\"\"|$)|'(?:\\.|[^'\\\n])*'?|"(?:\\.|[^"\\\n])*"?)"""
_KEYWORDS = "|".join(
    sorted((k for k in keyword.kwlist + keyword.softkwlist if len(k) > 1), key=len, reverse=True)
)
_BUILTINS = "|".join(
    sorted((n for n in dir(builtins) if not n.startswith("_")), key=len, reverse=True)
)
TOKEN = re.compile(
    rf"(?P<comment>#[^\n]*)"
    rf"|(?P<string>{_STRING})"
    rf"|(?P<defname>(?<=\bdef )[A-Za-z_]\w*|(?<=\bclass )[A-Za-z_]\w*)"
    rf"|(?P<keyword>\b(?:{_KEYWORDS})\b)"
    rf"|(?P<builtin>\b(?:{_BUILTINS})\b)"
    rf"|(?P<number>\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?j?)|\.\d+)"
    rf"|(?P<op>[-+*/%=<>!&|^~@]+|[()\[\]{{}}:,.;])"
)


def highlight_python(code: str) -> str:
    """``code`` as escaped HTML with ``py-*`` spans (comment, string, keyword, builtin, …)."""
    parts: list[str] = []
    pos = 0
    for match in TOKEN.finditer(code):
        if match.start() > pos:
            parts.append(html.escape(code[pos : match.start()]))
        kind = match.lastgroup or "op"
        parts.append(f'<span class="py-{kind}">{html.escape(match.group(0))}</span>')
        pos = match.end()
    parts.append(html.escape(code[pos:]))
    return "".join(parts)


HIGHLIGHT_CSS = """
.py-comment { color: #6a737d; font-style: italic; }
.py-string { color: #0a7f3f; }
.py-keyword { color: #a626a4; font-weight: 600; }
.py-builtin { color: #0b61a4; }
.py-defname { color: #b15c00; font-weight: 600; }
.py-number { color: #986801; }
.py-op { color: #444; }
"""
