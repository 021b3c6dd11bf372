"""Shared helpers: run a neuron on two backends and compare everything that can differ."""
import torch


def run_with_grads(neuron, x, weights=None, state=None):
    """Forward with the membrane recorded, a loss touching spikes, membrane and final state; returns values
    and gradients (input, parameters, initial state)."""
    x = x.detach().clone().requires_grad_(True)
    init = None
    if state is not None:
        init = {k: v.detach().clone().requires_grad_(True) for k, v in state.items()}
    out = neuron.run(x, init, record=True)
    generator = torch.Generator().manual_seed(123)
    w_s = torch.randn(out.spikes.shape, generator=generator, dtype=x.dtype)
    loss = (out.spikes * w_s).sum()
    for name, seq in out.recorded.items():
        w_v = torch.randn(seq.shape, generator=generator, dtype=x.dtype)
        loss = loss + (seq * w_v).sum() * 0.1
    for name, final in out.state.items():
        loss = loss + final.sum() * 0.3
    loss.backward()
    params = {n: p.grad.detach().clone() for n, p in neuron.named_parameters() if p.grad is not None}
    init_grads = {k: v.grad.detach().clone() for k, v in init.items()} if init else {}
    return out, x.grad.detach().clone(), params, init_grads


def assert_close(actual, expected, rtol, atol, what):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def assert_backends_agree(make_neuron, x, state=None, rtol=1e-5, atol=1e-6):
    """``make_neuron(backend)`` builds identical neurons; numba must match the torch reference exactly in
    spikes and closely in membranes and gradients."""
    torch.manual_seed(0)
    ref = make_neuron("torch")
    fused = make_neuron("numba")
    fused.load_state_dict(ref.state_dict())
    out_r, gx_r, gp_r, gs_r = run_with_grads(ref, x, state=state)
    out_f, gx_f, gp_f, gs_f = run_with_grads(fused, x, state=state)
    assert out_r.spikes.sum() > 0, "test input never makes the neuron fire: the comparison would be vacuous"
    assert torch.equal(out_r.spikes, out_f.spikes), "spikes differ between numba and the torch reference"
    for name in out_r.recorded:
        assert_close(out_f.recorded[name], out_r.recorded[name], rtol, atol, f"recorded {name}")
        assert_close(out_f.state[name], out_r.state[name], rtol, atol, f"final {name}")
    assert_close(gx_f, gx_r, rtol, atol, "grad x")
    assert gp_r.keys() == gp_f.keys()
    for name in gp_r:
        assert_close(gp_f[name], gp_r[name], rtol, atol * max(1.0, gp_r[name].abs().max().item()), f"grad {name}")
    for name in gs_r:
        assert_close(gs_f[name], gs_r[name], rtol, atol, f"grad initial {name}")
