"""CIFAR-style VGG (as in the common "pytorch-cifar" VGG): stacks of conv3x3-norm-act with a 2x2
max-pool after each of the 5 stages, then a single Linear(512·width, classes) on the 1x1 map.

Stages (channels x convs) of the standard configs:
  VGG-11: 64x1, 128x1, 256x2, 512x2, 512x2
  VGG-13: 64x2, 128x2, 256x2, 512x2, 512x2
  VGG-16: 64x2, 128x2, 256x3, 512x3, 512x3
  VGG-19: 64x2, 128x2, 256x4, 512x4, 512x4
As in the rest of the package, a conv keeps its bias only where no norm follows it (pytorch-cifar
keeps it always). On inputs larger than 32x32 the final map is average-pooled to 1x1.
"""

from __future__ import annotations

from torch import nn

from . import VGG_STAGES
from .cnn import conv_block


class VGG(nn.Module):
    def __init__(self, norm: str, num_classes: int = 10, in_channels: int = 3,
                 stages=VGG_STAGES[16], act: type[nn.Module] = nn.ReLU):
        """``stages``: (channels, convs) per stage, after the width/depth multipliers."""
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for w, n in stages:
            for _ in range(n):
                layers += conv_block(cin, w, norm, act)
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # the identity on the 1x1 map of a 32x32 input
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))
