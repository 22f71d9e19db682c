"""Activation names of the arch config's ``activation`` key → module classes (the names: the catalog's
:data:`normrobust.models.ACTIVATION_CLASSES`)."""

from __future__ import annotations

from torch import nn

from . import ACTIVATION_CLASSES, ACTIVATIONS


def activation_class(name: str) -> type[nn.Module]:
    if name not in ACTIVATION_CLASSES:
        raise ValueError(f"activation: unknown '{name}' (allowed: {', '.join(ACTIVATIONS)})")
    return getattr(nn, ACTIVATION_CLASSES[name])
