"""The linear ceiling of the rate code the Diehl & Cook network sees on spoken digits.

Logistic regression (scikit-learn, C chosen on the validation speakers) on each sample's window means over its real
frames (`DiehlCookNetwork.window_means`, W = 1, 2, 4, 8 windows of the 70 pooled channels), on the splits of
`examples/configs/spoken_digits_diehl_cook.yaml`:

    python examples/local_rules/rate_code_ceiling.py
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from snn.config import load_config
from snn.models.diehl_cook import DiehlCookNetwork
from snn.training.data import build_split


def window_features(dataset, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """``(X [N, W·F], y [N])``: each sample's window means over its real frames."""
    net = DiehlCookNetwork(dataset[0][0].shape[-1], 2, n_neurons=1, time_windows=windows)
    xs, ys = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        x = item[0]
        xs.append(net.window_means(x[:, None, :], torch.tensor([x.shape[0]]))[0].numpy())
        ys.append(int(item[1]))
    return np.stack(xs), np.array(ys)


def main() -> None:
    cfg = load_config("examples/configs/spoken_digits_diehl_cook.yaml")
    splits = {s: build_split(cfg.data, s) for s in ("train", "valid", "test")}
    for windows in (1, 2, 4, 8):
        (xtr, ytr), (xva, yva), (xte, yte) = (window_features(splits[s], windows) for s in ("train", "valid", "test"))
        scaler = StandardScaler().fit(xtr)
        fits = [(LogisticRegression(C=c, max_iter=3000).fit(scaler.transform(xtr), ytr), c) for c in (0.01, 0.1, 1.0)]
        model, c = max(fits, key=lambda mc: mc[0].score(scaler.transform(xva), yva))
        print(f"W={windows}: logistic regression on window means (C={c}, chosen on valid): "
              f"valid {model.score(scaler.transform(xva), yva):.3f} test {model.score(scaler.transform(xte), yte):.3f}")


if __name__ == "__main__":
    main()
