"""A spiking agent learns, by reward-modulated STDP alone, which of two actions each of two cues asks for.

    python examples/local_rules/rstdp_bandit.py --episodes 300 --out rstdp_bandit.png

Closed loop, per episode (a batch of 16 parallel trials): a cue (one of two Poisson input patterns over 20
channels, T = 20 steps) drives two LIF action neurons through a Linear synapse; the action is the neuron that
spiked more (ties and an ε share of trials: a random action); the reward is +1 for the action the cue asks for and
−1 otherwise. :class:`snn.rules.RSTDP` scales each trial's STDP eligibility by its reward minus the running mean
reward (a baseline), only on the chosen action's synapses (the other neuron did not act), and an SGD step applies
it. The learning curve (mean reward per episode) is saved as a plot.
"""
from __future__ import annotations

import argparse

import torch
from torch import nn

import snn
from snn.rules import RSTDP


def make_cues(batch: int, T: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Cue ids ``[B]`` and spikes ``[T, B, 20]``: cue c fires channels ``10c … 10c+9`` at rate 0.5, the rest 0.05."""
    cue = torch.randint(0, 2, (batch,), generator=gen)
    rate = torch.full((batch, 20), 0.05)
    for c in (0, 1):
        rate[cue == c, 10 * c:10 * c + 10] = 0.5
    return cue, (torch.rand(T, batch, 20, generator=gen) < rate).float()


def train(episodes: int = 300, batch: int = 16, T: int = 20, eps: float = 0.1, lr: float = 0.01,
          seed: int = 0) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    agent = nn.Sequential(nn.Linear(20, 2, bias=False), snn.LIF(tau=4.0, v_threshold=1.0))
    nn.init.constant_(agent[0].weight, 0.2)
    rule = RSTDP(layers="0", tau_pre=4.0, tau_post=4.0, a_plus=1.0, a_minus=1.0, batch_reduction="mean",
                 w_min=0.0, w_max=1.0)
    rule.attach(agent)
    opt = torch.optim.SGD([agent[0].weight], lr=lr)
    target = torch.tensor([1, 0])  # cue 0 asks for action 1, cue 1 for action 0
    baseline, curve = 0.0, []
    for _ in range(episodes):
        cue, x = make_cues(batch, T, gen)
        with rule.record(), torch.no_grad():
            spikes = agent(x)
        counts = spikes.sum(0) + 1e-3 * torch.rand(batch, 2, generator=gen)  # random tie break
        action = counts.argmax(1)
        explore = torch.rand(batch, generator=gen) < eps
        action = torch.where(explore, torch.randint(0, 2, (batch,), generator=gen), action)
        reward = torch.where(action == target[cue], 1.0, -1.0)
        # credit only the neuron that acted: a reward per trial and postsynaptic neuron
        credit = (reward - baseline)[:, None] * nn.functional.one_hot(action, 2).float()
        opt.zero_grad(set_to_none=True)
        rule.write_grads(reward=credit)
        opt.step()
        rule.apply_bounds()
        baseline = 0.9 * baseline + 0.1 * float(reward.mean())
        curve.append(float(reward.mean()))
    rule.detach()
    return curve


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="rstdp_bandit.png")
    args = ap.parse_args()
    curve = train(args.episodes, seed=args.seed)
    k = 20
    first, last = sum(curve[:k]) / k, sum(curve[-k:]) / k
    print(f"mean reward: first {k} episodes {first:+.3f}, last {k} episodes {last:+.3f}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), constrained_layout=True)
    smooth = [sum(curve[max(0, i - 9):i + 1]) / len(curve[max(0, i - 9):i + 1]) for i in range(len(curve))]
    ax.plot(curve, color="0.8", lw=0.8, label="per episode (16 trials)")
    ax.plot(smooth, color="C0", label="10-episode mean")
    ax.axhline(0.0, color="k", lw=0.5, ls=":")
    ax.set_xlabel("episode")
    ax.set_ylabel("mean reward")
    ax.set_ylim(-1.05, 1.05)
    ax.set_title("R-STDP two-cue bandit (chance = 0)")
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(args.out, dpi=120)
    print(f"learning curve: {args.out}")


if __name__ == "__main__":
    main()
