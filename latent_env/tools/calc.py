"""``<calc>`` blocks: arithmetic expressions evaluated from their syntax tree, never executed.

One expression a line (``;`` also separates). Numbers, ``+ - * / // % **``, parentheses,
comparisons, and the functions in ``FUNCTIONS``; an optional ``name = expression`` line binds a
name for later lines. Every operation is bounded, so no expression can run long: exponents,
factorial arguments, ``round``'s digits and the size of every integer, literals included, are
capped (``round(1, -10**7)`` once held the trainer's GIL for seconds).
"""

from __future__ import annotations

import ast
import math
import operator
import time
from collections.abc import Callable

from latent_env.tools.base import Tool, ToolOutput, clip_output, exception_line

MAX_EXPRESSIONS = 50
MAX_EXPONENT = 1000
MAX_FACTORIAL = 500
MAX_MAGNITUDE = 10**300  # beyond this an integer's digits cost more than they tell
MAX_ROUND_DIGITS = 300  # round(x, n) with |n| beyond the largest magnitude says nothing more
MAX_TEXT_CHARS = 4000

BINARY: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type, Callable] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
COMPARE: dict[type, Callable] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


def _factorial(n: float) -> int:
    if n != int(n) or not 0 <= n <= MAX_FACTORIAL:
        raise ValueError(f"factorial needs an integer in 0..{MAX_FACTORIAL}")
    return math.factorial(int(n))


def _round(x: float, ndigits: int | None = None) -> float:
    # round(int, -n) computes 10**n first: bounded here, not by the caller's patience.
    if ndigits is not None and (
            isinstance(ndigits, bool) or not isinstance(ndigits, int)
            or abs(ndigits) > MAX_ROUND_DIGITS):
        raise CalcError(f"round's digits must be an integer in -{MAX_ROUND_DIGITS}.."
                        f"{MAX_ROUND_DIGITS}")
    return round(x) if ndigits is None else round(x, ndigits)


def _mean(*xs: float) -> float:
    if not xs:
        raise ValueError("mean of nothing")
    return sum(xs) / len(xs)


FUNCTIONS: dict[str, Callable] = {
    "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "abs": abs, "round": _round,
    "floor": math.floor, "ceil": math.ceil, "min": min, "max": max, "sum": lambda *x: sum(x),
    "mean": _mean, "avg": _mean, "factorial": _factorial, "gcd": math.gcd, "lcm": math.lcm,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau}


class CalcError(ValueError):
    """An expression outside the calculator's grammar or limits."""


class CalcTool(Tool):
    """Safe arithmetic: ``<calc>(15 + 16 + 17) / 3</calc>`` → ``16``."""

    name = "calc"
    tag = "calc"
    description = "Arithmetic expressions, one per line, e.g. (15 + 16 + 17) / 3."

    def run(self, text: str) -> ToolOutput:
        start = time.perf_counter()
        try:
            lines = evaluate_lines(text)
        except (CalcError, ArithmeticError, ValueError, TypeError, SyntaxError) as exc:
            return ToolOutput.failure("error", exception_line(exc), time.perf_counter() - start)
        return ToolOutput("ok", clip_output("\n".join(lines)), None, time.perf_counter() - start)


def evaluate_lines(text: str) -> list[str]:
    """Evaluate each expression line; returns the formatted results."""
    if len(text) > MAX_TEXT_CHARS:
        raise CalcError(f"calc block longer than {MAX_TEXT_CHARS} characters")
    names: dict[str, float] = dict(CONSTANTS)
    results: list[str] = []
    parts = [p.strip() for line in text.splitlines() for p in line.split(";") if p.strip()]
    if len(parts) > MAX_EXPRESSIONS:
        raise CalcError(f"more than {MAX_EXPRESSIONS} expressions")
    if not parts:
        raise CalcError("empty calc block")
    for part in parts:
        tree = ast.parse(part, mode="exec")
        if len(tree.body) != 1:
            raise CalcError(f"one expression per line: {part!r}")
        node = tree.body[0]
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(
            node.targets[0], ast.Name
        ):
            names[node.targets[0].id] = _eval(node.value, names)
            continue
        if not isinstance(node, ast.Expr):
            raise CalcError(f"not an expression: {part!r}")
        results.append(format_number(_eval(node.value, names)))
    return results or [format_number(v) for k, v in names.items() if k not in CONSTANTS][-1:]


def format_number(value: object) -> str:
    """Integers as integers; floats without float noise (16.0 → 16, 0.1+0.2 → 0.3)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value == round(value) and abs(value) < 1e15:
            return str(int(round(value)))
        return f"{value:.10g}"
    return str(value)


def _eval(node: ast.AST, names: dict[str, float]):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(node.value)
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        raise CalcError(f"unknown name '{node.id}'")
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        left, right = _eval(node.left, names), _eval(node.right, names)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise CalcError(f"exponent larger than {MAX_EXPONENT}")
        return _bounded(BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand, names))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARE:
        return COMPARE[type(node.ops[0])](_eval(node.left, names), _eval(node.comparators[0], names))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = FUNCTIONS.get(node.func.id)
        if func is None:
            raise CalcError(f"unknown function '{node.func.id}'")
        return _bounded(func(*[_eval(a, names) for a in node.args]))
    if isinstance(node, (ast.List, ast.Tuple)):
        raise CalcError("lists are not expressions here; pass numbers to a function")
    raise CalcError(f"unsupported syntax: {ast.dump(node)[:60]}")


def _bounded(value):
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_MAGNITUDE:
        raise CalcError("result too large")
    return value
