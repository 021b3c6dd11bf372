"""The declaration every backend is generated from: a neuron's state, parameters and per-step programs.

A :class:`Dynamics` holds up to five programs in the statement language of :mod:`snn.kernels.ir` (``forward``,
``restore``, ``backward`` and ``surrogate`` always; ``fire`` optionally):

``forward``
    one time step. Reads the input ``x``, the state variables (values *before* the step), the lane parameters
    and the scalars; assigns the spike ``s``, the new state variables and every ``saved`` variable.
``restore``
    rebuilds the state *after* a step from that step's ``saved`` variables and its spike ``s``. The backward pass
    uses it to recover the state before step ``t`` from what step ``t - 1`` saved, so the forward stores only
    ``saved`` (one float per neuron-step for LIF) and never the state sequence itself.
``backward``
    the adjoint of one step. Reads the pre-step state, ``saved``, ``s``, ``gs`` (∂L/∂s[t]) and ``g_<state>``
    (∂L/∂state after the step); assigns ``gx`` and ``g_<state>`` (∂L/∂state before the step) and accumulates
    ``g_<param> += ...`` for every lane parameter.
``fire`` (optional)
    recomputes the spike ``s`` of a step from that step's ``saved`` variables, with the very operations the
    forward used, so it is bit-identical. A backend may then skip reading the spike sequence in the backward
    (one memory stream fewer); without it the spikes are read back.
``surrogate``
    ``sg = σ'(x)``, the derivative used in place of the Heaviside step's; it may read the scalars listed in
    ``surrogate_scalars``, which reach the kernels prefixed with ``sg_``. A torch-only surrogate has no program
    (``surrogate=None``) and gives ``surrogate_function`` (``x -> σ'(x)``) instead: the torch reference runs it,
    the fused backends cannot (their generators raise :class:`snn.kernels.ir.IRError` saying so).

The torch reference runs ``forward`` under autograd and is therefore an independent check of ``backward``.

Names. The generated kernels add names of their own, so a declaration may not use them: see
:data:`snn.kernels.ir.RESERVED` and :data:`snn.kernels.ir.RESERVED_PREFIXES` (``i``, ``t``, ``T``, ``L``, ``np``,
C keywords, names starting ``a_``, ``c_``, ``p_``, ``q_``, ``r_``, ``snn_``, ``sg_``, ``_``, ...). ``g_<name>``
is the gradient of a state or lane parameter and appears only in ``backward``. A clash is reported when the
declaration is built, naming the program and the name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from snn.kernels import ir


@dataclass(frozen=True)
class Dynamics:
    key: str
    states: tuple[str, ...]
    lane_params: tuple[str, ...]
    scalars: tuple[str, ...]
    saved: tuple[str, ...]
    forward: str
    restore: str
    backward: str
    surrogate: str | None
    surrogate_scalars: tuple[str, ...] = ()
    fire: str | None = None
    surrogate_function: Callable | None = None
    doc: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        self._validate()

    # -- lowered programs, shared by the backends -------------------------------------------------------------
    @property
    def sg_scalars(self) -> tuple[str, ...]:
        return tuple("sg_" + name for name in self.surrogate_scalars)

    @property
    def all_scalars(self) -> tuple[str, ...]:
        return self.scalars + self.sg_scalars

    @property
    def declared_surrogate(self) -> bool:
        """Whether the surrogate is a program (fused backends can compile it) rather than a torch function."""
        return self.surrogate is not None

    @cached_property
    def surrogate_program(self) -> list[ir.Statement]:
        if self.surrogate is None:
            raise ir.IRError(
                f"dynamics {self.key!r}: the surrogate is a torch function, which only the torch reference backend can "
                "run; give the surrogate a `program` (see snn.surrogate.Surrogate) to use the numba or CUDA kernels"
            )
        return ir.rename(ir.parse(self.surrogate), {name: "sg_" + name for name in self.surrogate_scalars})

    @cached_property
    def forward_program(self) -> list[ir.Statement]:
        return ir.parse(self.forward)

    @cached_property
    def restore_program(self) -> list[ir.Statement]:
        return ir.parse(self.restore)

    @cached_property
    def fire_program(self) -> list[ir.Statement] | None:
        return ir.parse(self.fire) if self.fire is not None else None

    @cached_property
    def backward_program(self) -> list[ir.Statement]:
        return ir.inline_surrogate(ir.parse(self.backward), self.surrogate_program)

    def grad_name(self, name: str) -> str:
        return "g_" + name

    # -- checks -------------------------------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.surrogate is None and self.surrogate_function is None:
            raise ir.IRError(f"dynamics {self.key!r}: give a surrogate program or a surrogate_function")
        if self.surrogate is None and self.surrogate_scalars:
            raise ir.IRError(f"dynamics {self.key!r}: a surrogate_function takes no surrogate_scalars")
        self._validate_names()
        known = set(self.states) | set(self.lane_params) | set(self.all_scalars)
        fwd = ir.parse(self.forward)
        _require_assigned(self.key, "forward", fwd, {"s", *self.states, *self.saved})
        _require_inputs(self.key, "forward", fwd, known | {"x"})
        rst = ir.parse(self.restore)
        _require_assigned(self.key, "restore", rst, set(self.states))
        _require_inputs(self.key, "restore", rst, set(self.saved) | {"s"} | set(self.lane_params) | set(self.all_scalars))
        if self.fire is not None:
            fire = ir.parse(self.fire)
            _require_assigned(self.key, "fire", fire, {"s"})
            _require_inputs(self.key, "fire", fire, set(self.saved) | set(self.lane_params) | set(self.all_scalars))
        if self.surrogate is not None:
            sg = ir.parse(self.surrogate)
            _require_assigned(self.key, "surrogate", sg, {"sg"})
            _require_inputs(self.key, "surrogate", sg, {"x", *self.surrogate_scalars})
            surrogate_program = self.surrogate_program
        else:  # the backward is still checked, with a stand-in derivative
            surrogate_program = ir.parse("sg = x")
        bwd = ir.inline_surrogate(ir.parse(self.backward), surrogate_program)
        grads = {self.grad_name(n) for n in self.states}
        _require_assigned(self.key, "backward", bwd, {"gx"} | grads | {self.grad_name(p) for p in self.lane_params})
        allowed = known | set(self.saved) | {"s", "gs"} | grads | {self.grad_name(p) for p in self.lane_params}
        _require_inputs(self.key, "backward", bwd, allowed)


    def _validate_names(self) -> None:
        grads = {self.grad_name(n) for n in (*self.states, *self.lane_params)}
        declared = {"states": self.states, "lane_params": self.lane_params, "scalars": self.scalars,
                    "saved": self.saved, "surrogate_scalars": self.surrogate_scalars}
        for which, names in declared.items():
            for name in names:
                ir.check_name(name, f"dynamics {self.key!r}: {which}")
                if name.startswith("g_"):
                    raise ir.IRError(f"dynamics {self.key!r}: {which} name {name!r} starts with 'g_', which is kept "
                                     "for gradients; rename it")
        programs = {"forward": self.forward, "restore": self.restore, "backward": self.backward,
                    "fire": self.fire, "surrogate": self.surrogate}
        for which, source in programs.items():
            if source is None:
                continue
            for name in sorted(ir.names_used(ir.parse(source))):
                allowed = {"sg"} if which == "surrogate" else set()
                if name not in allowed:
                    ir.check_name(name, f"dynamics {self.key!r}: the {which} program")
                if name.startswith("g_") and (which != "backward" or name not in grads):
                    raise ir.IRError(
                        f"dynamics {self.key!r}: the {which} program uses {name!r}; names 'g_<name>' are the gradients "
                        f"of states and lane parameters ({sorted(grads)}) and belong to the backward program only")


def _require_assigned(key: str, which: str, program: list[ir.Statement], names: set[str]) -> None:
    missing = names - {st.target for st in program}
    if missing:
        raise ir.IRError(f"dynamics {key!r}: the {which} program must assign {sorted(missing)}")


def _require_inputs(key: str, which: str, program: list[ir.Statement], allowed: set[str]) -> None:
    unknown = ir.names_read(program) - allowed
    if unknown:
        raise ir.IRError(f"dynamics {key!r}: the {which} program reads undefined names {sorted(unknown)}")
