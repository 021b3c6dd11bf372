"""What every fused backend shares: output allocation, the tensors in the kernels' argument order
(:mod:`snn.kernels.abi`), and the dtype names the kernels are generated for.

A backend subclasses :class:`FusedRunner` and supplies :meth:`dtype_key` (which dtypes it runs) and :meth:`launch`
(how a kernel is called).
"""
from __future__ import annotations

from typing import Sequence

import torch

from snn.kernels import abi
from snn.kernels.dynamics import Dynamics

DTYPE_NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _ordered(kind: str, dynamics: Dynamics, record: bool, named: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    return [named[a.name] for a in abi.arrays(kind, dynamics, record)]


class FusedRunner:
    name = "fused"
    #: whether the kernels read lane arrays ``[L]`` (parameters, initial states, final-state gradients) through any
    #: stride; a runner that does gets a constant as a stride-0 view instead of ``L`` copies of it
    strided_lanes = False

    def lanes(self, t: torch.Tensor) -> torch.Tensor:
        """A lane array ``[L]`` as the kernels read it: as it is when :attr:`strided_lanes`, else contiguous."""
        return t if self.strided_lanes else t.contiguous()

    def dtype_key(self, t: torch.Tensor) -> str:
        """The dtype name the kernels are generated for; raises if this backend cannot run ``t``."""
        raise NotImplementedError

    def launch(self, kind: str, dynamics: Dynamics, dtype: str, record: bool, param_grads: bool,
               tensors: Sequence[torch.Tensor], scalars: Sequence[float], T: int, L: int) -> None:
        """Run the ``kind`` ("forward" or "backward") kernel on ``tensors`` (in the documented order)."""
        raise NotImplementedError

    def forward(
        self,
        dynamics: Dynamics,
        x: torch.Tensor,
        lane_params: Sequence[torch.Tensor],
        init_states: Sequence[torch.Tensor],
        scalars: Sequence[float],
        record: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Spikes ``[T, L]``, saved variables ``[T, L]`` each, final states ``[L]`` and (``record``) the state after
        every step ``[T, L]``; all in ``x``'s dtype."""
        dtype = self.dtype_key(x)
        T, L = x.shape
        spikes = torch.empty_like(x)
        saved = [torch.empty_like(x) for _ in dynamics.saved]
        rec = [torch.empty_like(x) for _ in dynamics.states] if record else []
        finals = [s.detach().clone(memory_format=torch.contiguous_format) for s in init_states]
        if L > 0 and T > 0:
            lane_params = [self.lanes(p) for p in lane_params]
            named = {"a_x": x, "a_s": spikes, **_prefixed("a_sv_", dynamics.saved, saved),
                     **_prefixed("a_rec_", dynamics.states, rec), **_prefixed("a_p_", dynamics.lane_params, lane_params),
                     **_prefixed("a_st_", dynamics.states, finals)}
            self.launch("forward", dynamics, dtype, record, True, _ordered("forward", dynamics, record, named), scalars, T, L)
        return spikes, saved, finals, rec

    def backward(
        self,
        dynamics: Dynamics,
        grad_spikes: torch.Tensor,
        grad_finals: Sequence[torch.Tensor],
        grad_rec: Sequence[torch.Tensor],
        spikes: torch.Tensor,
        saved: Sequence[torch.Tensor],
        lane_params: Sequence[torch.Tensor],
        init_states: Sequence[torch.Tensor],
        scalars: Sequence[float],
        record: bool,
        param_grads: bool = True,
    ) -> tuple[torch.Tensor, list[torch.Tensor | None], list[torch.Tensor]]:
        """Gradients w.r.t. the input ``[T, L]``, the lane parameters ``[L]`` (``None`` each when ``param_grads`` is
        false: the kernel then skips that work) and the initial states ``[L]``."""
        dtype = self.dtype_key(spikes)
        T, L = spikes.shape
        as_dtype = spikes.dtype
        gx = torch.empty_like(spikes)
        g_params = [torch.empty(p.shape, dtype=p.dtype, device=p.device) for p in lane_params]
        g_states = [torch.empty(s.shape, dtype=s.dtype, device=s.device) for s in init_states]
        lane_params = [self.lanes(p) for p in lane_params]
        init_states = [self.lanes(s) for s in init_states]
        d = dynamics
        named = {"a_gs": grad_spikes.to(as_dtype),
                 **_prefixed("a_gfinal_", d.states, [self.lanes(g.to(as_dtype)) for g in grad_finals]),
                 **_prefixed("a_grec_", d.states, [g.to(as_dtype) for g in grad_rec] if record else []),
                 "a_s": spikes, **_prefixed("a_sv_", d.saved, saved), **_prefixed("a_p_", d.lane_params, lane_params),
                 **_prefixed("a_init_", d.states, init_states), "a_gx": gx,
                 **_prefixed("a_g_", d.lane_params, g_params), **_prefixed("a_g_", d.states, g_states)}
        if L > 0:
            if T > 0:
                self.launch("backward", dynamics, dtype, record, param_grads, _ordered("backward", d, record, named),
                            scalars, T, L)
            else:  # nothing happened: the gradients pass straight through to the initial state
                for g_state, g_final in zip(g_states, grad_finals):
                    g_state.copy_(g_final)
                for g in g_params:
                    g.zero_()
        return gx, (g_params if param_grads else [None] * len(g_params)), g_states


def _prefixed(prefix: str, names: Sequence[str], tensors: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + n: t for n, t in zip(names, tensors)}
