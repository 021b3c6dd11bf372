import torch
from torch import nn

import snn


class ConvSNN(nn.Module):
    """Small convolutional SNN on [T, B, C, H, W] (direct encoding: real input into the first conv)."""

    def __init__(self, c1_kwargs=None, c2_kwargs=None, hw=8):
        super().__init__()
        c1_kwargs = c1_kwargs or {"kernel_size": 3, "padding": 1}
        c2_kwargs = c2_kwargs or {"kernel_size": 3, "stride": 2, "padding": 1, "groups": 2}
        self.c1 = nn.Conv2d(2, 4, **c1_kwargs)
        self.bn1 = nn.BatchNorm2d(4)
        self.l1 = snn.LIF(tau=1.5, v_threshold=0.4)
        self.c2 = nn.Conv2d(4, 6, **c2_kwargs)
        self.l2 = snn.LIF(tau=2.0, v_threshold=0.2)
        with torch.no_grad():
            probe = self.c2(self.c1(torch.zeros(1, 2, hw, hw)))
        self.fc = nn.Linear(probe[0].numel(), 5)
        self.out = snn.LI()

    def forward(self, x):
        T, B = x.shape[:2]
        y = self.bn1(self.c1(x.flatten(0, 1)))
        s1 = self.l1(y.reshape(T, B, *y.shape[1:]))
        y = self.c2(s1.flatten(0, 1))
        s2 = self.l2(y.reshape(T, B, *y.shape[1:]))
        return self.out(self.fc(s2.flatten(2)))


def mlp(sizes=(12, 20, 7, 3), thresholds=(0.5, 0.3)):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(thresholds):
            layers.append(snn.LIF(v_threshold=thresholds[i]))
    return nn.Sequential(*layers)
