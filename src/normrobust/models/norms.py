"""Pluggable normalisation layers: one name → one layer factory.

none   identity
bn     BatchNorm2d (BatchNorm1d on flat features, see ``make_norm1d``)
ln     LayerNorm over (C, H, W), written as GroupNorm with 1 group
in     InstanceNorm2d with affine parameters (running statistics off: it normalises per image)
gn     GroupNorm with 32 groups, or fewer where channels are few (see ``gn_groups``)
fixup  no norm layer at all: a FixUp-style init of a residual net (Zhang et al. 2019), valid for
       kind ``resnet`` only; the ResNet builds its own FixUp blocks, so ``make_norm`` refuses it
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from . import LAYER_NORMS, NORMS  # noqa: F401 (the registry lives in the torch-free catalog)


def gn_groups(channels: int, max_groups: int = 32, min_per_group: int = 4) -> int:
    """Groups for GroupNorm: 32, or fewer so that each group holds >= 4 channels.

    The number returned always divides ``channels``; 16 channels → 4 groups, 64 → 16, 512 → 32.
    """
    g = max(1, min(max_groups, channels // min_per_group))
    while channels % g:
        g -= 1
    return g


def make_norm(name: str, channels: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "ln":
        return nn.GroupNorm(1, channels)
    if name == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "gn":
        return nn.GroupNorm(gn_groups(channels), channels)
    if name == "fixup":
        raise ValueError("norm 'fixup' has no norm layer: it is an init for residual nets (kind 'resnet') only")
    raise ValueError(f"norm: unknown '{name}' (allowed: {', '.join(NORMS)})")


def make_norm1d(name: str, features: int) -> nn.Module:
    """Norm on flat (N, F) features: only ``none`` and ``bn`` (BatchNorm1d) are defined."""
    if name == "none":
        return nn.Identity()
    if name == "bn":
        return nn.BatchNorm1d(features)
    raise ValueError(f"norm '{name}' is not defined on flat features (allowed: none, bn)")


def is_norm_layer(m: nn.Module) -> bool:
    """A real normalisation layer (BatchNorm 1d/2d, GroupNorm/LayerNorm, InstanceNorm); not InputNorm."""
    return isinstance(m, (_BatchNorm, nn.GroupNorm, _InstanceNorm, nn.LayerNorm))
