"""The torch reference backend: a plain loop over time of tensor operations, differentiated by autograd.

This backend defines the truth. It is generated from the ``forward`` program of a :class:`Dynamics` only;
the hand-written ``backward`` program is never used here, so every fused backend's gradient is checked against
an independent derivation.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from snn.kernels import ir
from snn.kernels.dynamics import Dynamics
from snn.kernels.memo import memoize

_TORCH_FUNCTIONS = {
    "exp": lambda a: f"torch.exp({a})",
    "abs": lambda a: f"torch.abs({a})",
    "relu": lambda a: f"torch.relu({a})",
    "detach": lambda a: f"({a}).detach()",
}


class HeavisideWithSurrogate(torch.autograd.Function):
    """``Θ(u)`` forward (``Θ(0) = 1``), ``σ'(u)`` backward."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, derivative: Callable[..., torch.Tensor], *sg_scalars: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.derivative = derivative
        ctx.sg_scalars = sg_scalars
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (u,) = ctx.saved_tensors
        return (grad * ctx.derivative(u, *ctx.sg_scalars), None) + (None,) * len(ctx.sg_scalars)


def surrogate_function(program: str, scalars: Sequence[str]) -> Callable[..., torch.Tensor]:
    """Compile a surrogate program into ``f(x, *scalars) -> σ'(x)`` over tensors."""
    return _compile_surrogate(program, tuple(scalars))


@memoize
def _compile_surrogate(program: str, scalars: tuple[str, ...]) -> Callable[..., torch.Tensor]:
    printer = ir.PythonPrinter(_TORCH_FUNCTIONS)
    body = printer.program(ir.parse(program), indent="    ")
    source = f"def derivative(x, {', '.join(scalars)}):\n{body}\n    return sg\n"
    namespace: dict = {"torch": torch}
    exec(compile(source, "<surrogate>", "exec"), namespace)
    return namespace["derivative"]


@memoize
def step_function(dynamics: Dynamics) -> Callable[..., tuple]:
    """``step(x, *states, *lane_params, *scalars) -> (s, states_after, saved)`` for one time step."""
    if dynamics.surrogate_function is not None:  # a torch-only surrogate: called as it is
        derivative = dynamics.surrogate_function
    else:
        derivative = _compile_surrogate(_unparse(dynamics.surrogate_program), dynamics.sg_scalars)
    sg_args = ", ".join(dynamics.sg_scalars)
    functions = dict(_TORCH_FUNCTIONS)
    functions["spike"] = lambda a: f"_spike({a}, _derivative{', ' if sg_args else ''}{sg_args})"
    printer = ir.PythonPrinter(functions)
    args = ", ".join(("x",) + dynamics.states + dynamics.lane_params + dynamics.all_scalars)
    body = printer.program(dynamics.forward_program, indent="    ")
    states = "".join(f"{n}, " for n in dynamics.states)
    saved = "".join(f"{n}, " for n in dynamics.saved)
    source = f"def step({args}):\n{body}\n    return s, ({states}), ({saved})\n"
    namespace: dict = {"torch": torch, "_spike": HeavisideWithSurrogate.apply, "_derivative": derivative}
    exec(compile(source, f"<{dynamics.key} reference step>", "exec"), namespace)
    step = namespace["step"]
    step.source = source
    return step


def _unparse(program: list[ir.Statement]) -> str:
    return "\n".join(f"{st.target} {'+=' if st.accumulate else '='} {ir.ast.unparse(st.expr)}" for st in program)


def run(
    dynamics: Dynamics,
    x: torch.Tensor,
    states: Sequence[torch.Tensor],
    lane_params: Sequence[torch.Tensor],
    scalars: Sequence[float],
    record: bool = False,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...] | None]:
    """Run all ``T`` steps of ``x`` (``[T, ...]``). Returns spikes ``[T, ...]``, final states, and the state
    sequences ``[T, ...]`` (state after each step) when ``record`` is true."""
    step = step_function(dynamics)
    spikes = []
    recorded: list[list[torch.Tensor]] = [[] for _ in dynamics.states]
    current = tuple(states)
    for x_t in x.unbind(0):  # unbind: one backward node (x[t] would zero-fill a [T, ...] gradient per step)
        s, current, _ = step(x_t, *current, *lane_params, *scalars)
        spikes.append(s)
        if record:
            for seq, value in zip(recorded, current):
                seq.append(value)
    out = torch.stack(spikes) if spikes else x.new_zeros(x.shape)
    seqs = tuple(torch.stack(seq) if seq else x.new_zeros(x.shape) for seq in recorded) if record else None
    return out, current, seqs
