"""AutoAttack (Croce & Hein, ICML 2020) through torchattacks: APGD-CE, APGD-T and the standard ensemble.

Since Croce & Hein, robust accuracy is reported under AutoAttack (RobustBench's standard): PGD with a fixed step
often overestimates it. We do not reimplement it: these attacks come from torchattacks (a maintained
implementation of the authors' code, imported on first use), with the standard version's settings set explicitly,
because torchattacks' defaults (10 iterations) are not the paper's (100):

* ``apgd_ce``: APGD on the cross-entropy loss, ``steps`` iterations (default :data:`STEPS`), ``restarts``;
* ``apgd_t``: targeted APGD on the DLR loss against the :data:`N_TARGETS` most likely wrong classes;
* ``autoattack``: the standard ensemble, each attack on the images the previous ones left correct: APGD-CE,
  APGD-T, FAB-T (:data:`STEPS` iterations, :data:`N_TARGETS` targets) and Square (:data:`SQUARE_QUERIES`
  queries).

A spec is ``{type, norm (linf | l2), eps, steps?, restarts?}`` in the project's units (L∞ ε in 1/255 steps).
The attacks are untargeted from the caller's view: ``y`` is the true label. The model must be in eval mode (the
caller's :func:`normrobust.attacks.attack_mode`); torchattacks sees it through a wrapper that returns fp32
logits and leaves its mode alone.
"""

from __future__ import annotations

import contextlib
import io

import torch
from torch import Tensor, nn

from .attack_specs import AUTOATTACK_STEPS, parse_autoattack

STEPS = AUTOATTACK_STEPS  # APGD / FAB iterations (the spec's default; normrobust.attack_specs)
N_TARGETS = 9  # target classes of APGD-T and FAB-T in the standard version (at most K − 1)
SQUARE_QUERIES = 5000  # Square's query budget in the standard version
_TORCHATTACKS_NORM = {"linf": "Linf", "l2": "L2"}


class _Logits(nn.Module):
    """The model as torchattacks sees it: fp32 logits, the wrapped model's mode untouched (torchattacks calls
    ``.eval()`` / ``.training`` on this wrapper only)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.inner = [model]  # a list: not registered as a submodule, so torchattacks cannot change its mode

    def forward(self, x: Tensor) -> Tensor:
        return self.inner[0](x).float()


def _attack(kind: str, model: nn.Module, p: dict, n_classes: int, seed: int):
    import torchattacks  # a runtime dependency, imported only where AutoAttack is asked for

    if kind not in ("apgd_ce", "apgd_t", "fab_t", "square"):
        raise ValueError(f"unknown AutoAttack component {kind!r}")
    norm, eps, steps, restarts = _TORCHATTACKS_NORM[p["norm"]], p["eps"], p["steps"], p["restarts"]
    targets = max(1, min(N_TARGETS, n_classes - 1))
    if kind == "apgd_ce":
        return torchattacks.APGD(model, norm=norm, eps=eps, steps=steps, n_restarts=restarts, seed=seed, loss="ce")
    if kind == "apgd_t":
        a = torchattacks.APGDT(model, norm=norm, eps=eps, steps=steps, n_restarts=restarts, seed=seed,
                               n_classes=n_classes)
        a.n_target_classes = targets
        return a
    if kind == "fab_t":
        a = torchattacks.FAB(model, norm=norm, eps=eps, steps=steps, n_restarts=restarts, seed=seed,
                             multi_targeted=True, n_classes=n_classes)
        a.n_target_classes = targets
        return a
    return torchattacks.Square(model, norm=norm, eps=eps, n_queries=SQUARE_QUERIES, n_restarts=restarts, seed=seed)


def run(model: nn.Module, x: Tensor, y: Tensor, spec: dict, *, seed: int = 0) -> Tensor:
    """Adversarial images of the AutoAttack ``spec`` for images ``x`` (float, [0,1]) with true labels ``y``."""
    import torchattacks

    p = parse_autoattack(spec)
    wrapped = _Logits(model)
    with torch.no_grad():
        n_classes = int(wrapped(x[:1]).shape[1])
    kinds = ("apgd_ce", "apgd_t", "fab_t", "square") if p["type"] == "autoattack" else (p["type"],)
    with contextlib.redirect_stdout(io.StringIO()):  # torchattacks prints that it cannot find the device
        parts = [_attack(k, wrapped, p, n_classes, seed) for k in kinds]
        atk = torchattacks.MultiAttack(parts) if len(parts) > 1 else parts[0]
    for a in [atk, *parts]:
        a.set_device(x.device)  # the wrapper has no parameters to read the device from
    return atk(x, y).detach()
