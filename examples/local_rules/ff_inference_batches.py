"""The batches spiking forward-forward's inference runs, for ``snn energy RUN --data FILE.pt``.

    python examples/local_rules/ff_inference_batches.py RUN OUT.pt
    snn energy RUN --data OUT.pt --out RUN/ff_inference

Forward-forward classifies a sample by running it once per label ``k`` with ``k`` embedded in the label slots and
taking the label of largest goodness (:mod:`snn.rules.forward_forward`). ``snn energy RUN`` counts one forward of the
plain test sample (label slots silent, readout included). This writes the run's test batches with every label
embedded — sample ``b`` × label ``k`` — keeping each sample's length, so the report's per-sample figures are the
mean cost of one (sample, label) pass; forward-forward's inference cost per sample is ``K ×`` the hidden layers'
rows (the ``output`` readout is not used by forward-forward's inference).
"""
from __future__ import annotations

import argparse
import sys

import torch

from snn.rules.forward_forward import embed_label
from snn.training import load_run


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("out")
    args = ap.parse_args(argv)
    model, cfg, data = load_run(args.run)
    k = model.n_classes
    if cfg.training.rule.name != "forward_forward":
        raise SystemExit(f"{args.run}: training.rule is {cfg.training.rule.name!r}, not forward_forward")
    batches = []
    for x, _labels, lengths in data.test_loader():
        b = x.shape[1]
        xs = x.repeat_interleave(k, dim=1)
        labels = torch.arange(k).repeat(b)
        batches.append((embed_label(xs, labels, k, cfg.training.rule.label_amplitude), labels,
                        lengths.repeat_interleave(k)))
    torch.save(batches, args.out)
    print(f"wrote {args.out}: {sum(x.shape[1] for x, _, _ in batches)} (sample, label) passes, {k} labels")


if __name__ == "__main__":
    main(sys.argv[1:])
