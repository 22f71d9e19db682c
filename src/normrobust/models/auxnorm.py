"""The auxiliary norm of AdvProp (Xie et al. 2020).

``DualNorm`` holds two copies of a norm layer, ``main`` and ``aux``, with separate affine
parameters and separate running statistics, and routes each forward through one of them.
The routing is a plain attribute (not saved in the state dict) and defaults to ``main``, so
evaluation uses the main norm only. ``use_aux(model)`` routes every DualNorm of a model to its
auxiliary copy for the duration of a ``with`` block (adversarial batches and their attack), and
restores the previous routing afterwards, also on exceptions; nesting is fine.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Iterator

from torch import nn

from .norms import is_norm_layer


class DualNorm(nn.Module):
    def __init__(self, main: nn.Module, aux: nn.Module | None = None):
        """``aux`` defaults to a deep copy of ``main`` (same initial parameters and statistics)."""
        super().__init__()
        self.main = main
        self.aux = copy.deepcopy(main) if aux is None else aux
        self.route_aux = False

    def forward(self, x):
        return self.aux(x) if self.route_aux else self.main(x)

    def extra_repr(self) -> str:
        return f"route={'aux' if self.route_aux else 'main'}"


def add_aux_norms(model: nn.Module) -> int:
    """Replace every norm layer of ``model`` in place by a DualNorm (main = the layer itself,
    aux = its copy); returns how many were replaced. InputNorm is not a norm layer."""
    targets = [(name, m) for name, m in model.named_modules() if is_norm_layer(m)]
    for name, m in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        if isinstance(parent, DualNorm):
            continue
        setattr(parent, attr, DualNorm(m))
    return sum(isinstance(m, DualNorm) for m in model.modules())


def dual_norms(model: nn.Module) -> list[DualNorm]:
    return [m for m in model.modules() if isinstance(m, DualNorm)]


def has_aux(model: nn.Module) -> bool:
    """Whether the model has auxiliary norms (was built with ``aux_norm=True``)."""
    return any(isinstance(m, DualNorm) for m in model.modules())


@contextmanager
def use_aux(model: nn.Module, strict: bool = True) -> Iterator[nn.Module]:
    """Route every DualNorm of ``model`` to its auxiliary copy inside the block.

    With ``strict`` (default) a model without auxiliary norms is an error, so an AdvProp run on
    a model built without ``aux_norm=True`` cannot silently share one norm.
    """
    duals = dual_norms(model)
    if strict and not duals:
        raise ValueError("use_aux: the model has no auxiliary norm layers (build it with aux_norm=True)")
    before = [d.route_aux for d in duals]
    try:
        for d in duals:
            d.route_aux = True
        yield model
    finally:
        for d, r in zip(duals, before):
            d.route_aux = r
