r"""Input-to-synapse routing of the (Branch-)ELM neuron: which input feeds each synapse.

An ELM with ``n_branch`` branches of ``synapses_per_branch`` synapses has ``n_syn = n_branch · synapses_per_branch``
synapses; synapse ``j`` belongs to branch ``j // synapses_per_branch`` (contiguous groups, as in the reference
code). A routing is two vectors over the synapses:

* ``index[j]``: the input channel synapse ``j`` reads (``0 ≤ index[j] < n_in``);
* ``mask[j]``: 1 if the synapse is connected, 0 for a padding slot (its input is always 0).

Schemes:

``"identity"``  plain ELM: synapse ``j`` reads input ``j`` (needs ``n_syn == n_in``; with one synapse per branch
                each input is its own branch).
``"random"``    each synapse reads a random input, drawn once at construction (Branch-ELM on unstructured data).
                The reference code draws all ``n_syn`` indices independently with replacement, which leaves some
                inputs unrouted whenever ``n_syn`` is not much larger than ``n_in``; here the first ``n_in`` draws are
                a permutation of the inputs (so every input is routed) and the rest are drawn with replacement, all in
                random order. ``allow_unrouted=True`` gives the reference's independent draws.
``"window"``    overlapping windows (Branch-ELM on NeuronIO, without its excitatory/inhibitory interleaving):
                branch ``b`` reads inputs ``b·stride … b·stride + synapses_per_branch - 1`` with
                ``stride = ceil(n_in / n_branch)``; slots past the last input are padding.

The indices are kept in the module's state dict, so a saved model reloads with the same wiring.
"""
from __future__ import annotations

import math

import torch

ROUTINGS = ("identity", "random", "window")


class RoutingError(ValueError):
    """A routing that leaves a branch without a connected synapse or an input without a synapse."""


def make_routing(scheme: str, n_in: int, n_branch: int, synapses_per_branch: int, allow_unrouted: bool = False,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(index, mask)`` over the ``n_branch · synapses_per_branch`` synapses (int64 and float32, ``[n_syn]``)."""
    if scheme not in ROUTINGS:
        raise ValueError(f"routing: expected one of {ROUTINGS}, got {scheme!r}")
    n_syn = n_branch * synapses_per_branch
    if scheme == "identity":
        if n_syn != n_in:
            raise RoutingError(
                f"routing='identity': branches × synapses_per_branch must equal in_features ({n_in}), got "
                f"{n_branch} × {synapses_per_branch} = {n_syn}; use routing='random' or 'window' for Branch-ELM")
        index = torch.arange(n_in)
        mask = torch.ones(n_syn)
    elif scheme == "random":
        if allow_unrouted:
            index = torch.randint(n_in, (n_syn,), generator=generator)
        else:
            if n_syn < n_in:
                raise RoutingError(
                    f"routing='random': {n_syn} synapses (branches {n_branch} × synapses_per_branch "
                    f"{synapses_per_branch}) cannot reach all {n_in} inputs; add synapses or pass allow_unrouted=True")
            first = torch.randperm(n_in, generator=generator)
            rest = torch.randint(n_in, (n_syn - n_in,), generator=generator)
            index = torch.cat([first, rest])[torch.randperm(n_syn, generator=generator)]
        mask = torch.ones(n_syn)
    else:
        stride = math.ceil(n_in / n_branch)
        slots = torch.arange(n_branch)[:, None] * stride + torch.arange(synapses_per_branch)[None, :]
        valid = slots < n_in
        index = slots.clamp(max=n_in - 1).flatten()
        mask = valid.flatten().float()
    check_routing(index, mask, n_in, n_branch, synapses_per_branch, allow_unrouted)
    return index.long(), mask.float()


def check_routing(index: torch.Tensor, mask: torch.Tensor, n_in: int, n_branch: int, synapses_per_branch: int,
                  allow_unrouted: bool = False) -> None:
    """Raise :class:`RoutingError` for an empty branch or (unless ``allow_unrouted``) an input no synapse reads."""
    n_syn = n_branch * synapses_per_branch
    if index.shape != (n_syn,) or mask.shape != (n_syn,):
        raise RoutingError(f"routing: index and mask must have shape ({n_syn},), got {tuple(index.shape)} and "
                           f"{tuple(mask.shape)}")
    if n_syn and (index.min() < 0 or index.max() >= n_in):
        raise RoutingError(f"routing: indices must lie in [0, {n_in}), got [{int(index.min())}, {int(index.max())}]")
    connected = (mask != 0).view(n_branch, synapses_per_branch).any(dim=1)
    if not connected.all():
        empty = torch.nonzero(~connected).flatten().tolist()
        raise RoutingError(f"routing: branches {empty[:10]} have no connected synapse (n_in={n_in}, "
                           f"branches={n_branch}, synapses_per_branch={synapses_per_branch}); use fewer branches")
    if not allow_unrouted:
        reached = torch.zeros(n_in, dtype=torch.bool)
        reached[index[mask != 0]] = True
        if not reached.all():
            missing = torch.nonzero(~reached).flatten().tolist()
            raise RoutingError(
                f"routing: inputs {missing[:10]}{' ...' if len(missing) > 10 else ''} ({len(missing)} of {n_in}) "
                f"reach no synapse (branches={n_branch}, synapses_per_branch={synapses_per_branch}); add synapses "
                "per branch or pass allow_unrouted=True")
