"""A tiny statement language in which neuron dynamics are written once and emitted for every backend.

A program is a sequence of assignments in Python syntax::

    h = v + (x - (v - v_reset)) * decay
    s = spike(h - v_threshold)
    v = h * (1.0 - s) + v_reset * s
    g_decay += gh * (h - v)          # accumulation (backward programs only)

Expressions use ``+ - * /``, unary minus, numeric literals, names, and these functions:

==================  ==========================================================
``exp(u)``          natural exponential
``abs(u)``          absolute value
``relu(u)``         ``max(u, 0)``
``spike(u)``        Heaviside step ``Θ(u)`` with ``Θ(0) = 1``; in the torch reference its
                    derivative is the neuron's surrogate
``sg(u)``           surrogate derivative ``σ'(u)``; must be the whole right-hand side
``detach(u)``       ``u`` with its gradient stopped (torch reference only; identity elsewhere)
==================  ==========================================================

The same parsed program is printed as Python for the torch reference and numba, and as C for CUDA (and for its
host shim). Keeping one source of truth is what lets the fused kernels be checked against the autograd
reference: a wrong derivative cannot hide in one backend only.
"""
from __future__ import annotations

import ast
import keyword
from dataclasses import dataclass
from typing import Callable, Iterable

FUNCTIONS = ("exp", "abs", "relu", "spike", "sg", "detach")

# Names the generated kernels define themselves (loop indices, sizes, modules, C types and built-ins, the numba
# and CUDA helpers), and the language's functions: a variable of that name would shadow or clash with them.
_C_KEYWORDS = (
    "auto bool break case catch char class const constexpr continue default delete do double else enum explicit "
    "extern false float for friend goto half if inline int long namespace new nullptr operator private protected "
    "public register restrict return short signed sizeof static struct switch template this throw true try typedef "
    "typename union unsigned using virtual void volatile while"
).split()
RESERVED = frozenset(
    keyword.kwlist + _C_KEYWORDS + list(FUNCTIONS)
    + "i t c lo hi nl T L CH np nb math torch exp32 min max range acc_t scalar_t size_t expf fabs fabsf "
      "blockIdx threadIdx blockDim gridDim".split()
)
# Prefixes of the kernels' own arrays, views, buffers and helpers (a_x, r_s, q_sv_h, c_st_v, p_h, snn_l, sg_alpha,
# _sg0_x, _k0): no declared name may start with one.
RESERVED_PREFIXES = ("a_", "c_", "p_", "q_", "r_", "snn_", "sg_", "_")


def check_name(name: str, where: str) -> None:
    """Raise :class:`IRError` if ``name`` is reserved by the generated kernels (see :data:`RESERVED`)."""
    if name in RESERVED:
        raise IRError(f"{where}: {name!r} is a reserved name (the generated kernels define it); rename it")
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            raise IRError(f"{where}: {name!r} starts with {prefix!r}, a prefix reserved for the generated kernels' "
                          "own names; rename it")


class IRError(ValueError):
    """A dynamics program uses syntax or names outside the statement language."""


@dataclass(frozen=True)
class Statement:
    """``target = expr`` (``accumulate=False``) or ``target += expr`` (``accumulate=True``)."""

    target: str
    expr: ast.expr
    accumulate: bool = False


def parse(source: str) -> list[Statement]:
    """Parse a program; reject anything outside the language with an error naming the offending line."""
    try:
        module = ast.parse(_dedent(source))
    except SyntaxError as err:
        raise IRError(f"dynamics program does not parse: {err}") from err
    statements: list[Statement] = []
    for node in module.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            statements.append(Statement(node.targets[0].id, _check_expr(node.value)))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add) and isinstance(node.target, ast.Name):
            statements.append(Statement(node.target.id, _check_expr(node.value), accumulate=True))
        else:
            raise IRError(f"unsupported statement: {ast.unparse(node)!r} (only `name = expr` and `name += expr`)")
    return statements


def _dedent(source: str) -> str:
    lines = [line.strip() for line in source.strip().splitlines()]
    return "\n".join(line for line in lines if line and not line.startswith("#"))


def _check_expr(node: ast.expr) -> ast.expr:
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            if not isinstance(sub.func, ast.Name) or sub.func.id not in FUNCTIONS or len(sub.args) != 1 or sub.keywords:
                raise IRError(f"unsupported call {ast.unparse(sub)!r}; allowed: {', '.join(FUNCTIONS)} (one argument)")
        elif isinstance(sub, ast.BinOp) and not isinstance(sub.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            raise IRError(f"unsupported operator in {ast.unparse(sub)!r}; allowed: + - * /")
        elif isinstance(sub, ast.UnaryOp) and not isinstance(sub.op, (ast.USub, ast.UAdd)):
            raise IRError(f"unsupported unary operator in {ast.unparse(sub)!r}")
        elif isinstance(sub, ast.Constant) and not isinstance(sub.value, (int, float)):
            raise IRError(f"unsupported literal {sub.value!r}")
        elif not isinstance(
            sub, (ast.Call, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.operator, ast.unaryop)
        ):
            raise IRError(f"unsupported syntax {ast.unparse(sub)!r}")
    return node


def names_read(statements: Iterable[Statement]) -> set[str]:
    """Names a program reads before (or without) assigning them: its inputs."""
    assigned: set[str] = set()
    inputs: set[str] = set()
    for st in statements:
        functions = {id(sub.func) for sub in ast.walk(st.expr) if isinstance(sub, ast.Call)}
        for sub in ast.walk(st.expr):
            if isinstance(sub, ast.Name) and sub.id not in assigned and id(sub) not in functions:
                inputs.add(sub.id)
        if st.accumulate and st.target not in assigned:
            inputs.add(st.target)
        assigned.add(st.target)
    return inputs


def names_used(statements: Iterable[Statement]) -> set[str]:
    """Every variable a program assigns or reads (function names excluded)."""
    used: set[str] = set()
    for st in statements:
        functions = {id(sub.func) for sub in ast.walk(st.expr) if isinstance(sub, ast.Call)}
        used.add(st.target)
        used |= {sub.id for sub in ast.walk(st.expr) if isinstance(sub, ast.Name) and id(sub) not in functions}
    return used


def rename(statements: list[Statement], mapping: dict[str, str]) -> list[Statement]:
    """Rename variables (targets and reads) throughout a program."""

    class _Renamer(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.Call:
            node.args = [self.visit(arg) for arg in node.args]  # never rename the function itself
            return node

        def visit_Name(self, node: ast.Name) -> ast.Name:
            return ast.copy_location(ast.Name(mapping.get(node.id, node.id), ast.Load()), node)

    out = []
    for st in statements:
        expr = _Renamer().visit(_copy(st.expr))
        out.append(Statement(mapping.get(st.target, st.target), expr, st.accumulate))
    return out


def _copy(node: ast.expr) -> ast.expr:
    return ast.parse(ast.unparse(node), mode="eval").body


def inline_surrogate(statements: list[Statement], surrogate: list[Statement], result: str = "sg") -> list[Statement]:
    """Replace every ``y = sg(u)`` by the surrogate's own program evaluated at ``x = u``.

    The surrogate program reads ``x`` (and its own parameters) and assigns ``result``; its temporaries are
    prefixed so that two inlined copies never collide.
    """
    out: list[Statement] = []
    for index, st in enumerate(statements):
        call = st.expr
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "sg":
            prefix = f"_sg{index}_"
            temps = {s.target for s in surrogate}
            mapping = {name: prefix + name for name in temps | {"x"}}
            out.append(Statement(prefix + "x", call.args[0]))
            body = rename(surrogate, mapping)
            out.extend(body)
            out.append(Statement(st.target, ast.Name(prefix + result, ast.Load()), st.accumulate))
        else:
            for sub in ast.walk(st.expr):
                if isinstance(sub, ast.Call) and sub.func.id == "sg":  # type: ignore[union-attr]
                    raise IRError(f"sg(...) must be the whole right-hand side: {ast.unparse(st.expr)!r}")
            out.append(st)
    return out


# --------------------------------------------------------------------------------------------------- printing


class _Printer:
    """Prints an expression tree; subclasses choose how literals and functions look."""

    def expr(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Constant):
            return self.literal(float(node.value))
        if isinstance(node, ast.UnaryOp):
            inner = self.expr(node.operand)
            return f"(-{inner})" if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}[type(node.op)]
            return f"({self.expr(node.left)} {op} {self.expr(node.right)})"
        if isinstance(node, ast.Call):
            return self.call(node.func.id, self.expr(node.args[0]))  # type: ignore[union-attr]
        raise IRError(f"cannot print {ast.dump(node)}")

    def name(self, name: str) -> str:
        return name

    def literal(self, value: float) -> str:
        return repr(value)

    def call(self, func: str, arg: str) -> str:
        raise NotImplementedError


class PythonPrinter(_Printer):
    """Python source for numba (float literals bound to typed constants) or torch (plain floats)."""

    def __init__(self, functions: dict[str, Callable[[str], str]], literal: Callable[[float], str] = repr):
        self.functions = functions
        self._literal = literal

    def literal(self, value: float) -> str:
        return self._literal(value)

    def call(self, func: str, arg: str) -> str:
        if func not in self.functions:
            raise IRError(f"{func}(...) is not available in this backend")
        return self.functions[func](arg)

    def program(self, statements: list[Statement], indent: str = "") -> str:
        lines = []
        for st in statements:
            op = "+=" if st.accumulate else "="
            lines.append(f"{indent}{st.target} {op} {self.expr(st.expr)}")
        return "\n".join(lines)


class CPrinter(_Printer):
    """C/CUDA source: arithmetic in ``acc_t``; functions through ``SNN_EXP``-style macros defined per type."""

    FUNCTIONS = {
        "exp": "SNN_EXP({})",
        "abs": "SNN_ABS({})",
        "relu": "SNN_RELU({})",
        "spike": "SNN_HEAVISIDE({})",
        "detach": "({})",
    }

    def literal(self, value: float) -> str:
        return f"((acc_t){value!r})"

    def call(self, func: str, arg: str) -> str:
        if func not in self.FUNCTIONS:
            raise IRError(f"{func}(...) is not available in C")
        return self.FUNCTIONS[func].format(arg)

    def program(self, statements: list[Statement], indent: str = "", declared: set[str] | None = None) -> str:
        """Declares each new local as ``acc_t`` on first assignment; ``declared`` lists names already in scope."""
        known = set(declared or ())
        lines = []
        for st in statements:
            op = "+=" if st.accumulate else "="
            decl = "" if st.target in known else "acc_t "
            known.add(st.target)
            lines.append(f"{indent}{decl}{st.target} {op} {self.expr(st.expr)};")
        return "\n".join(lines)
