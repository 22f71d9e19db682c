"""Activation names of the arch config's ``activation`` key → module classes."""

from __future__ import annotations

from torch import nn

ACTIVATION_LAYERS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,  # slope 0.01 (PyTorch's default)
    "selu": nn.SELU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
}
ACTIVATIONS = tuple(ACTIVATION_LAYERS)


def activation_class(name: str) -> type[nn.Module]:
    try:
        return ACTIVATION_LAYERS[name]
    except KeyError:
        raise ValueError(f"activation: unknown '{name}' (allowed: {', '.join(ACTIVATIONS)})") from None
