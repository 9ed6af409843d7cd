"""Compile-time half of the policy layer: RestrictedPython with the changes ordinary model code
needs.

On top of RestrictedPython 9's ``RestrictingNodeTransformer`` (no names or attributes starting
with ``_``, no frame/generator internals, attribute and item access routed through guards):

* ``x[k] += v`` and ``self.n += 1`` are allowed, expanded into guarded reads and writes;
* ``x: int = 0`` (annotated assignment) is allowed;
* ``__name__`` reads as ``"__main__"``, so ``if __name__ == "__main__":`` works;
* classes may define common dunder methods (``__repr__``, ``__len__``, ``__add__``, ...);
* ``a ** b`` calls the guarded ``pow`` so huge integer powers fail fast;
* a final expression statement is captured as the run's value.

Temporaries and the captured value use names containing ``$``: valid in an AST, impossible in
source text, so model code can neither read nor shadow them.
"""

from __future__ import annotations

import ast
from collections import OrderedDict
from dataclasses import dataclass
from types import CodeType

from RestrictedPython import compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

from .guards import USER_FILENAME
from .limits import MAX_ERROR_CHARS

#: Global that receives the value of the program's final expression statement.
LAST_VALUE_NAME = "$last_value"

# Dunder methods model classes may define in addition to RestrictedPython's own list
# (__init__, __contains__, comparisons). Deliberately absent: attribute hooks, __del__ (would
# run during a later run), __reduce__ & co., __array*__ (numpy raw-memory protocols),
# __init_subclass__, __set_name__, __class_getitem__.
_EXTRA_DUNDER_METHODS = frozenset({
    "__repr__", "__str__", "__format__", "__len__", "__iter__", "__next__", "__reversed__",
    "__getitem__", "__setitem__", "__delitem__", "__hash__", "__bool__", "__call__",
    "__enter__", "__exit__", "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__",
    "__isub__", "__mul__", "__rmul__", "__imul__", "__truediv__", "__rtruediv__",
    "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__", "__pow__", "__rpow__",
    "__matmul__", "__neg__", "__pos__", "__abs__", "__int__", "__float__", "__index__",
    "__round__", "__and__", "__or__", "__xor__",
})  # fmt: skip


#: Dunder attributes model code may read and write: ``super().__init__(...)`` and function
#: names in decorators are everyday code, and none of them leads further into the object
#: graph (``__class__``, ``__dict__``, ``__globals__`` & co. stay forbidden).
ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__", "__name__", "__qualname__", "__doc__"})
_DUNDER_PLACEHOLDER = "sandbox_allowed_dunder"


class SandboxTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy plus the relaxations listed in the module docstring."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._temp_counter = 0

    def check_name(
        self, node: ast.AST, name: str | None, allow_magic_methods: bool = False
    ) -> None:
        if allow_magic_methods and name in _EXTRA_DUNDER_METHODS and node.col_offset != 0:
            return  # a method inside a class body (RestrictedPython's own heuristic)
        super().check_name(node, name, allow_magic_methods)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == "__name__" and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.Constant("__main__"), node)
        return super().visit_Name(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr not in ALLOWED_DUNDER_ATTRIBUTES:
            return super().visit_Attribute(node)
        # RestrictedPython rejects every "_" attribute; rewrite under a neutral name and put
        # the real one back into the guarded node it produces.
        real_name, node.attr = node.attr, _DUNDER_PLACEHOLDER
        new = super().visit_Attribute(node)
        if isinstance(new, ast.Call):  # load: _getattr_(obj, "placeholder")
            new.args[1] = ast.copy_location(ast.Constant(real_name), new.args[1])
        else:  # store/del: _write_(obj).placeholder
            new.attr = real_name
        return new

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        if isinstance(node.op, ast.Pow):
            call = ast.Call(
                func=ast.Name("_pow_", ast.Load()), args=[node.left, node.right], keywords=[]
            )
            return ast.fix_missing_locations(ast.copy_location(call, node))
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        # Targets, annotation and value are all visited (and so guarded) like any other code.
        return self.node_contents_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        if isinstance(node.target, ast.Name):
            return super().visit_AugAssign(node)
        return self._expand_augassign(node)

    def _temp(self) -> str:
        self._temp_counter += 1
        return f"$aug{self._temp_counter}"

    def _expand_augassign(self, node: ast.AugAssign) -> list[ast.stmt]:
        """``obj.a += v`` -> ``t = obj; t.a = _inplacevar_('+=', t.a, v); del t`` (likewise
        for ``obj[k]``), evaluating obj, key, old value and v in Python's own order; the
        generated ``t.a`` / ``t[k]`` nodes then go through the normal guarded rewriting."""
        target = node.target
        obj_name = self._temp()
        prelude: list[ast.stmt] = [_assign(obj_name, self.visit(target.value))]
        temps = [obj_name]
        if isinstance(target, ast.Attribute):

            def access(ctx: ast.expr_context) -> ast.expr:
                new = ast.Attribute(value=_load(obj_name), attr=target.attr, ctx=ctx)
                return ast.fix_missing_locations(ast.copy_location(new, target))
        else:
            assert isinstance(target, ast.Subscript)
            key_name = self._temp()
            prelude.append(_assign(key_name, self.visit(_slice_to_expr(target.slice))))
            temps.append(key_name)

            def access(ctx: ast.expr_context) -> ast.expr:
                new = ast.Subscript(value=_load(obj_name), slice=_load(key_name), ctx=ctx)
                return ast.fix_missing_locations(ast.copy_location(new, target))

        operator_text = IOPERATOR_TO_STR[type(node.op)]
        new_value = ast.Call(
            func=_load("_inplacevar_"),
            args=[
                ast.Constant(operator_text),
                self.visit(access(ast.Load())),
                self.visit(node.value),
            ],
            keywords=[],
        )
        store = ast.Assign(targets=[self.visit(access(ast.Store()))], value=new_value)
        cleanup = ast.Delete(targets=[ast.Name(name, ast.Del()) for name in temps])
        statements = [*prelude, store, cleanup]
        for statement in statements:
            ast.copy_location(statement, node)
            ast.fix_missing_locations(statement)
        return statements


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(id=name, ctx=ast.Store())], value=value)


def _slice_to_expr(node: ast.expr) -> ast.expr:
    """``a[1:2] += x`` needs the key as a value: turn slice syntax into ``slice(...)`` calls."""
    if isinstance(node, ast.Slice):
        parts = [
            part if part is not None else ast.Constant(None)
            for part in (node.lower, node.upper, node.step)
        ]
        return ast.copy_location(ast.Call(func=_load("slice"), args=parts, keywords=[]), node)
    if isinstance(node, ast.Tuple):
        return ast.copy_location(
            ast.Tuple(elts=[_slice_to_expr(e) for e in node.elts], ctx=ast.Load()), node
        )
    return node


@dataclass(frozen=True, slots=True)
class Program:
    """Compiled model code, or the reason it was refused."""

    code: CodeType | None
    error: str | None


def capture_last_expression(tree: ast.Module) -> None:
    """Rewrite a final ``expr`` statement into ``$last_value = expr`` (in place)."""
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        assign = ast.Assign(targets=[ast.Name(LAST_VALUE_NAME, ast.Store())], value=last.value)
        tree.body[-1] = ast.copy_location(assign, last)
        ast.fix_missing_locations(tree.body[-1])


def compile_program(
    source: str, *, restricted: bool = True, raise_memory_error: bool = False
) -> Program:
    """Parse, check and compile model code. ``restricted=False`` is the test-only raw mode.

    ``raise_memory_error``: let MemoryError out instead of reporting the program as too complex
    (the pool's compiler does: running out of memory there says nothing about the source)."""
    try:
        tree = ast.parse(source, USER_FILENAME, "exec")
    except SyntaxError as exc:
        return Program(None, _syntax_error_text(exc))
    except MemoryError:
        if raise_memory_error:
            raise
        return Program(None, "SyntaxError: source could not be parsed (MemoryError)")
    except (RecursionError, ValueError) as exc:
        return Program(None, f"SyntaxError: source could not be parsed ({type(exc).__name__})")
    capture_last_expression(tree)
    try:
        if not restricted:
            return Program(compile(tree, USER_FILENAME, "exec"), None)
        result = compile_restricted_exec(tree, USER_FILENAME, policy=SandboxTransformer)
    except SyntaxError as exc:
        return Program(None, _syntax_error_text(exc))
    except MemoryError:
        if raise_memory_error:
            raise
        return Program(None, "SyntaxError: program too complex (MemoryError)")
    except RecursionError:
        return Program(None, "SyntaxError: program too complex (RecursionError)")
    except Exception as exc:  # fail closed on anything the transformer did not expect
        return Program(None, f"PolicyError: code not accepted ({type(exc).__name__}: {exc})")
    if result.errors or result.code is None:
        text = "; ".join(result.errors) or "compilation failed"
        return Program(None, f"PolicyError: {text}"[:MAX_ERROR_CHARS])
    return Program(result.code, None)


def _syntax_error_text(exc: SyntaxError) -> str:
    where = f" (line {exc.lineno})" if exc.lineno else ""
    return f"{type(exc).__name__}: {exc.msg}{where}"[:MAX_ERROR_CHARS]


class CompileCache:
    """Bounded LRU of compiled programs keyed by source text.

    Policy compilation is deterministic, so a cached code object behaves exactly like a fresh
    one; code objects are immutable, so sharing them between runs leaks nothing.
    """

    def __init__(self, capacity: int, *, restricted: bool = True) -> None:
        self._capacity = capacity
        self._restricted = restricted
        self._entries: OrderedDict[str, Program] = OrderedDict()

    def get(self, source: str) -> Program:
        """The compiled program for ``source``, compiling on a miss."""
        program = self._entries.get(source)
        if program is not None:
            self._entries.move_to_end(source)
            return program
        program = compile_program(source, restricted=self._restricted)
        if self._capacity:
            self._entries[source] = program
            if len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return program

    def __len__(self) -> int:
        return len(self._entries)
