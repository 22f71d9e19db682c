"""CIFAR-style ResNet (3x3 stem, no max-pool) with a pluggable norm.

``ResNet(blocks=(2, 2, 2, 2), widths=(64, 128, 256, 512))`` is ResNet-18 (11,173,962 parameters
with BN and 10 classes); the default config uses a small one, ``blocks=(1, 1, 1), widths=(16, 32, 64)``.
Without a norm the network trains from plain (Kaiming) init, as in Benz et al.

``norm="fixup"`` builds the same topology without any norm layer, with FixUp's init
(Zhang, Dauphin, Ma 2019, "Fixup Initialization: Residual Learning Without Normalization"):
scalar biases before each conv and activation of a residual branch, a scalar multiplier at the
end of each branch, the last conv of each branch zero-initialised, the other branch convs
He-initialised and scaled by L^(-1/(2m-2)) (L residual branches, m = 2 convs per branch), a
scalar bias after the stem conv and before the classifier, and the classifier zero-initialised.
Every FixUp block is therefore ``act(shortcut(x))`` at init: the identity on the (non-negative)
output of a ReLU where the shortcut is the identity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .norms import make_norm


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, norm: str, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
        self.n1 = make_norm(norm, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=bias)
        self.n2 = make_norm(norm, cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=bias), make_norm(norm, cout))
        self.act = act()

    def forward(self, x):
        out = self.act(self.n1(self.conv1(x)))
        out = self.n2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ScalarBias(nn.Module):
    """x + b with one learnable scalar b (FixUp), initialised to 0."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x + self.bias


class FixupBlock(nn.Module):
    """A basic block without norm layers, FixUp style (m = 2 layers per residual branch)."""

    layers_per_branch = 2

    def __init__(self, cin: int, cout: int, stride: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.bias1a = nn.Parameter(torch.zeros(1))
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bias1b = nn.Parameter(torch.zeros(1))
        self.bias2a = nn.Parameter(torch.zeros(1))
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.scale = nn.Parameter(torch.ones(1))
        self.bias2b = nn.Parameter(torch.zeros(1))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False))
        self.act = act()

    def forward(self, x):
        x = x + self.bias1a
        out = self.act(self.conv1(x) + self.bias1b)
        out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
        return self.act(out + self.shortcut(x))


def _he_normal_(w: torch.Tensor, gain: float = 1.0) -> None:
    """He init over fan-out (as FixUp's reference code), times ``gain``."""
    fan_out = w.shape[0] * math.prod(w.shape[2:])
    with torch.no_grad():
        w.normal_(0.0, math.sqrt(2.0 / fan_out) * gain)


class ResNet(nn.Module):
    def __init__(self, norm: str, num_classes: int = 10, in_channels: int = 3, blocks=(1, 1, 1),
                 widths=(16, 32, 64), act: type[nn.Module] = nn.ReLU):
        super().__init__()
        if len(blocks) != len(widths):
            raise ValueError(f"resnet: blocks {list(blocks)} and widths {list(widths)} must have the same length")
        self.fixup = norm == "fixup"
        if self.fixup:
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), ScalarBias(),
                                      act())
        else:
            bias = norm == "none"
            self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=bias),
                                      make_norm(norm, widths[0]), act())
        layers = []
        cin = widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(FixupBlock(cin, w, stride, act) if self.fixup else BasicBlock(cin, w, stride, norm, act))
                cin = w
        self.layers = nn.Sequential(*layers)
        if self.fixup:
            self.fc_bias = ScalarBias()
        self.fc = nn.Linear(cin, num_classes)
        if self.fixup:
            self._fixup_init()

    def _fixup_init(self) -> None:
        n_branches = len(self.layers)  # L
        m = FixupBlock.layers_per_branch
        scale = n_branches ** (-1.0 / (2 * m - 2))
        for block in self.layers:
            _he_normal_(block.conv1.weight, scale)
            nn.init.zeros_(block.conv2.weight)
            for mod in block.shortcut:
                _he_normal_(mod.weight)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        out = F.adaptive_avg_pool2d(self.layers(self.stem(x)), 1).flatten(1)
        if self.fixup:
            out = self.fc_bias(out)
        return self.fc(out)
