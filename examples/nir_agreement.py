"""Measure how exactly networks survive a trip through NIR: ours → ours, ours → peers, peers → ours.

Same weights, same random input spikes (float32, the default), spikes compared element by element; for LI
readouts the largest membrane difference. Prints a Markdown table (the README's "Moving networks in and out (NIR)"
section quotes it)::

    python examples/nir_agreement.py            # about a minute on a 2-core CPU

Needs ``nir``, ``nirtorch``, ``norse``, ``snntorch`` and ``spikingjelly`` (2.0, ``activation_based``).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

import snn
from snn.interop import NIRExportWarning, from_nir, to_nir
from snn.models import DelayNet, RecurrentSNN, SpikingMLP

T, B, C, H, K = 200, 32, 70, 128, 20


def spikes(*shape: int, p: float = 0.1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g) < p).float()


def spiking_outputs(model: nn.Module, run) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    kinds = (snn.LIF, snn.IF)
    hooks = [m.register_forward_hook(lambda _m, _i, o: seen.append(o[0] if isinstance(o, tuple) else o))
             for m in model.modules() if type(m) in kinds]
    try:
        out = run()
    finally:
        for h in hooks:
            h.remove()
    return seen, out


def compare(a: list[torch.Tensor], b: list[torch.Tensor], steps: int | None = None) -> tuple[int, float, int]:
    """(neuron-steps compared, firing rate of the reference, mismatched neuron-steps)."""
    total = mism = fired = 0
    for x, y in zip(a, b):
        x, y = x[:steps], y[:steps]
        total += x.numel()
        fired += int(x.sum())
        mism += int((x != y).sum())
    return total, fired / max(total, 1), mism


def step_by_step(module, x: torch.Tensor) -> torch.Tensor:
    state, outs = None, []
    for t in range(x.shape[0]):
        y, state = module(x[t], state)
        outs.append(y)
    return torch.stack(outs)


def scaled(model: nn.Module, factor: float) -> nn.Module:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                m.weight.mul_(factor)
    return model.eval()


def trained_like_bn(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, nn.BatchNorm1d):
                bn.running_mean.copy_(torch.rand(bn.num_features, generator=g) * 0.6 - 0.3)
                bn.running_var.copy_(torch.rand(bn.num_features, generator=g) * 1.7 + 0.3)
                bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
                bn.bias.copy_(torch.rand(bn.num_features, generator=g) * 0.6 - 0.2)


def active(make, x: torch.Tensor, rate=None, target: float = 0.05) -> nn.Module:
    """``make()`` with its Linear weights scaled up (×1.5 per try) until ``rate(model)`` (default: the mean of its
    output on ``x``) reaches ``target``, so that the comparisons cover spikes, not silence."""
    factor = 1.0
    for _ in range(30):
        torch.manual_seed(1)
        m = scaled(make(), factor)
        if float(rate(m) if rate is not None else m(x).mean()) >= target:
            return m
        factor *= 1.5
    raise RuntimeError("could not make the network fire")


def lif_mlp(decay_input: bool) -> nn.Sequential:
    return nn.Sequential(nn.Linear(C, H), snn.LIF(tau=3.0, decay_input=decay_input), nn.Linear(H, K),
                         snn.LIF(tau=3.0, decay_input=decay_input))


def rows():
    import norse.torch as norse
    import snntorch as sn
    from snntorch import utils as sn_utils
    from snntorch.export_nir import export_to_nir
    from snntorch.import_nir import import_from_nir

    x = spikes(T, B, C)
    # ---- ours → ours
    for name, dtype in (("DelayNet (main job's shape), float32", torch.float32), ("DelayNet, float64", torch.float64)):
        torch.manual_seed(7)
        m = DelayNet(C, K, hidden=H, layers=2, max_delay=25, tau=2.0).to(dtype)
        trained_like_bn(m, 0)
        with torch.no_grad():
            for s in m.synapses:
                s.weight.mul_(2.0)
                s.positions.add_(torch.randn_like(s.positions) * 3).clamp_(-12, 12)
        m.eval()
        net = from_nir(to_nir(m, 1e-2), 1e-2, dtype=dtype)
        xd = x.to(dtype)
        with m.evaluation():
            ref, ref_out = spiking_outputs(m, lambda: m(xd))
        R = m.right_pad
        got, out = spiking_outputs(net, lambda: net(torch.cat([xd, xd.new_zeros(R, B, C)])))
        yield ("snn → snn", name, *compare(ref, got, T + R), float((out - ref_out[:T + R]).abs().max()))
    torch.manual_seed(8)
    m = SpikingMLP(C, K, hidden=H, layers=2, tau=2.0)
    trained_like_bn(m, 1)
    m = scaled(m, 2.0)
    net = from_nir(to_nir(m, 1e-2), 1e-2)
    ref, ref_out = spiking_outputs(m, lambda: m(x))
    got, out = spiking_outputs(net, lambda: net(x))
    yield ("snn → snn", "snn_mlp (BatchNorm folded), float32", *compare(ref, got), float((out - ref_out).abs().max()))
    torch.manual_seed(9)
    m = scaled(RecurrentSNN(C, K, hidden=H, layers=1, tau=2.0), 3.0)
    net = from_nir(to_nir(m, 1e-2), 1e-2)
    ref = m.recurrent_layers[0](x)  # the layer steps its neuron directly: compare the layer's spikes
    got = net.layers["recurrent_layers_0"](net.layers["recurrent_layers_0_input"](x))
    out = float((net(x) - m(x)).abs().max())
    yield ("snn → snn", "rsnn (recurrent subgraph), float32", *compare([ref], [got]), out)

    # ---- ours → peers (spiking output layer: the peers import no LI)
    m = active(lambda: lif_mlp(True), x)
    ours = m(x)
    peer = step_by_step(norse.from_nir(to_nir(m, 1e-3), dt=1e-3), x)
    yield ("snn → Norse", "LIF MLP, decay_input (R = 1)", *compare([ours], [peer]), None)
    for di, label in ((False, "LIF MLP, no decay_input (R = τ/dt)"), (True, "LIF MLP, decay_input (threshold rescaled)")):
        m = active(lambda: lif_mlp(di), x)
        ours = m(x)
        peer = step_by_step(import_from_nir(to_nir(m, 1e-4)), x)
        yield ("snn → snnTorch", label, *compare([ours], [peer]), None)
    def recurrent():
        r = RecurrentSNN(C, K, hidden=H, layers=1, tau=2.0)
        return nn.Sequential(r.recurrent_layers[0], r.output, snn.LIF(tau=2.0, decay_input=False))
    m = active(recurrent, x)
    ours = m(x)
    peer = step_by_step(import_from_nir(to_nir(m, 1e-4)), x)
    yield ("snn → snnTorch", "recurrent LIF layer → RLeaky", *compare([ours], [peer]), None)

    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_export
    from spikingjelly.activation_based.nir_exchange import import_from_nir as sj_import

    def run_sj(net: nn.Module) -> torch.Tensor:
        functional.reset_net(net)
        y = net(x)
        return y[0] if isinstance(y, tuple) else y

    def ours_if_lif():
        return nn.Sequential(nn.Linear(C, H), snn.LIF(tau=3.0, decay_input=False), nn.Linear(H, H), snn.IF(),
                             nn.Linear(H, K), snn.LIF(tau=2.5))
    m = active(ours_if_lif, x)
    ours = m(x)
    peer = run_sj(sj_import(to_nir(m, 1e-3), dt=1e-3, step_mode="m"))
    yield ("snn → SpikingJelly", "LIF (no decay_input), IF, LIF", *compare([ours], [peer]), None)

    # ---- peers → ours
    def sj_net():
        net = nn.Sequential(layer.Linear(C, H), neuron.LIFNode(tau=3.0, decay_input=False), layer.Linear(H, H),
                            neuron.IFNode(), layer.Linear(H, K), neuron.ParametricLIFNode(init_tau=2.5))
        functional.set_step_mode(net, "m")
        return net
    sj = active(sj_net, x, rate=lambda net: run_sj(net).mean())
    ref = run_sj(sj)
    net = from_nir(sj_export(sj, x, dt=1e-3), 1e-3)
    yield ("SpikingJelly → snn", "LIFNode, IFNode, ParametricLIFNode", *compare([ref], [net(x)]), None)
    def norse_net():
        return norse.SequentialState(
            nn.Linear(C, H), norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(1 / 3.0)), dt=1.0),
            nn.Linear(H, H), norse.IAFCell(norse.IAFParameters(v_th=torch.tensor(1.5)), dt=1.0),
            nn.Linear(H, K), norse.LIBoxCell(norse.LIBoxParameters(tau_mem_inv=torch.tensor(0.25)), dt=1.0))
    nm = active(norse_net, x, rate=lambda m: step_by_step(norse.SequentialState(m[0], m[1]), x).mean())
    ref = step_by_step(nm, x)
    net = from_nir(norse.to_nir(nm, torch.randn(1, C), dt=1.0), 1.0)
    hidden, out = spiking_outputs(net, lambda: net(x))
    yield ("Norse → snn", "LIFBox, IAF, LIBox readout (dt = 1)", None, float(torch.cat([h.flatten() for h in hidden]).mean()),
           None, float((out - ref).abs().max()))
    kw = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    peers = {
        "Leaky": lambda: sn.Leaky(beta=torch.full((H,), 0.8), threshold=torch.ones(H), **kw),
        "Synaptic (CubaLIF)": lambda: sn.Synaptic(alpha=torch.full((H,), 0.6), beta=torch.full((H,), 0.8),
                                                  threshold=torch.ones(H), **kw),
        "RLeaky (recurrent)": lambda: sn.RLeaky(beta=torch.full((H,), 0.8), threshold=torch.ones(H),
                                                linear_features=H, all_to_all=True, **kw),
    }
    def run_snntorch(sm: nn.Module) -> torch.Tensor:
        sn_utils.reset(sm)
        return torch.stack([sm(x[t])[0] for t in range(T)])

    for label, make in peers.items():
        sm = active(lambda: nn.Sequential(nn.Linear(C, H), make(), nn.Linear(H, K),
                                          sn.Leaky(beta=torch.full((K,), 0.7), threshold=torch.ones(K), output=True,
                                                   **kw)), x, rate=lambda m: run_snntorch(m).mean())
        ref = run_snntorch(sm)
        net = from_nir(export_to_nir(sm, torch.randn(1, C), ignore_dims=[0]), 1e-4)
        yield ("snnTorch → snn", label, *compare([ref], [net(x)]), None)


def main() -> None:
    warnings.simplefilter("ignore")
    print(f"T = {T} steps, batch {B}, {C} inputs, {H} hidden, {K} outputs, input spike probability 0.1\n")
    print("| direction | network | neuron-steps compared | firing rate | spikes that differ | max abs. LI membrane diff. |")
    print("|---|---|---|---|---|---|")
    for direction, name, total, rate, mism, *dv in rows():
        dv = dv[0] if dv else None

        def fmt(v, spec="{:,}"):
            return "—" if v is None else spec.format(v)
        print(f"| {direction} | {name} | {fmt(total)} | {fmt(rate, '{:.3f}')} | {fmt(mism)} | {fmt(dv, '{:.1e}')} |",
              flush=True)


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRExportWarning)
        main()
