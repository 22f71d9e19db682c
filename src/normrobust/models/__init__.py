"""Model registry: ``build_model(arch_cfg, norm, meta)``.

Every model starts with its input normalisation (``InputNorm``), so it takes images in
[0,1] and every attack works in pixel space.
"""

from __future__ import annotations

import torch
from torch import nn

from .cnn import SmallCNN
from .norms import NORMS, make_norm
from .resnet import ResNet

ARCH_KINDS = ("cnn", "resnet")


class InputNorm(nn.Module):
    """(x - mean) / std per channel, as the model's first layer."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def build_model(arch: dict, norm: str, meta: dict) -> nn.Module:
    """``arch``: the config entry of an architecture (``kind`` + its settings);
    ``meta``: the dataset's meta (``num_classes``, ``shape``, ``mean``, ``std``)."""
    if norm not in NORMS:
        raise ValueError(f"norm: unknown '{norm}' (allowed: {', '.join(NORMS)})")
    kind = arch.get("kind")
    common = dict(norm=norm, num_classes=meta["num_classes"], in_channels=meta["shape"][0])
    if kind == "cnn":
        net = SmallCNN(widths=tuple(arch.get("widths", (16, 32, 64))),
                       convs_per_stage=arch.get("convs_per_stage", 1), **common)
    elif kind == "resnet":
        net = ResNet(blocks=tuple(arch.get("blocks", (1, 1, 1))), widths=tuple(arch.get("widths", (16, 32, 64))),
                     **common)
    else:
        raise ValueError(f"arch kind: unknown '{kind}' (allowed: {', '.join(ARCH_KINDS)})")
    return nn.Sequential(InputNorm(meta["mean"], meta["std"]), net)


__all__ = ["build_model", "make_norm", "NORMS", "ARCH_KINDS", "InputNorm"]
