"""Pluggable normalisation layers: one name → one layer factory.

none  identity
bn    BatchNorm2d
ln    LayerNorm over (C, H, W), written as GroupNorm with 1 group
in    InstanceNorm2d with affine parameters (running statistics off: it normalises per image)
gn    GroupNorm with 32 groups, or fewer where channels are few (see ``gn_groups``)
"""

from __future__ import annotations

from torch import nn

NORMS = ("none", "bn", "ln", "in", "gn")


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
    raise ValueError(f"norm: unknown '{name}' (allowed: {', '.join(NORMS)})")


def is_norm_layer(m: nn.Module) -> bool:
    return isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d))
