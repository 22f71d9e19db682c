"""CIFAR-style ResNet (3x3 stem, no max-pool) with a pluggable norm.

``ResNet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512))`` is ResNet-18; the default
config uses a small one, ``blocks=(1, 1, 1), widths=(16, 32, 64)``. Without a norm the
network trains from plain (Kaiming) init, as in Benz et al.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from .norms import make_norm


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.n1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.n2 = make_norm(norm, cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=bias), make_norm(norm, cout))

    def forward(self, x):
        out = F.relu(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, norm: str, num_classes: int = 10, in_channels: int = 3, blocks=(1, 1, 1),
                 widths=(16, 32, 64)):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError(f"resnet: blocks {list(blocks)} and widths {list(widths)} must have the same length")
        bias = norm == "none"
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=bias),
                                  make_norm(norm, widths[0]), nn.ReLU())
        layers = []
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1, norm))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))
