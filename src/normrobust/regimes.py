"""What a training regime means: its objective, the weight of its LIGS term, whether it splits the norms.

A regime is a config entry ``regimes.<name>`` (an ``attack`` or null, an ``objective`` and its settings).
Training, config validation, the claims and the report all read a regime's meaning here, and nowhere else.
This module imports nothing of the package (a leaf), and no torch.

Objectives:

* ``clean``: cross-entropy on clean images (the default without an attack);
* ``adversarial``: Madry, adversarial images only (the default with an attack);
* ``weighted``: Goodfellow, ``clean_weight``·J(x) + (1 − ``clean_weight``)·J(x_adv);
* ``mixed``: clean and adversarial images in one batch through one shared norm, the two losses summed (Lc + La,
  AdvProp's reduction: the two regimes differ only in the auxiliary norm, not in the loss scale);
* ``advprop``: clean batch through the main norm, adversarial batch through an auxiliary copy of every norm
  layer (a network without norm layers has nothing to split: the two losses through the same network);
* ``ligs_reg``: clean loss + ``ligs_weight``·(1 − cos(g(x), g(x+v))) by double backward.
"""

from __future__ import annotations

from typing import Any

OBJECTIVES = ("clean", "adversarial", "weighted", "mixed", "advprop", "ligs_reg")
OPTIMIZERS = ("sgd", "adam", "adagrad")  # train.make_optimizer
SCHEDULES = ("multistep", "cosine", "constant")  # train.make_scheduler
#: objectives that train on attacked images (they need an attack)
ADVERSARIAL_OBJECTIVES = ("adversarial", "weighted", "mixed", "advprop")
#: norms without a layer to split into a main and an auxiliary copy (AdvProp)
NORMS_WITHOUT_LAYERS = ("none", "fixup")
DEFAULT_LIGS_WEIGHT = 1.0
DEFAULT_CLEAN_WEIGHT = 0.5


def objective(regime: dict[str, Any] | None) -> str:
    """A regime's training loss; by default 'adversarial' when it has an attack, else 'clean'."""
    regime = regime or {}
    return regime.get("objective") or ("adversarial" if regime.get("attack") else "clean")


def ligs_weight(regime: dict[str, Any]) -> float:
    """The weight of a ligs_reg regime's LIGS term."""
    return float(regime.get("ligs_weight", DEFAULT_LIGS_WEIGHT))


def clean_weight(regime: dict[str, Any]) -> float:
    """α of the weighted objective: α·J(x) + (1 − α)·J(x_adv)."""
    return float(regime.get("clean_weight", DEFAULT_CLEAN_WEIGHT))


def uses_aux_norm(regime: dict[str, Any], norm: str) -> bool:
    """True when training splits every norm layer into a main and an auxiliary copy (AdvProp with a norm)."""
    return objective(regime) == "advprop" and norm not in NORMS_WITHOUT_LAYERS


def role(regime: dict[str, Any] | None) -> str:
    """What a regime does, for comparisons with the papers: 'standard' for clean training, else the objective."""
    obj = objective(regime)
    return "standard" if obj == "clean" else obj


def attack_type(regime: dict[str, Any] | None) -> str:
    """The type of a regime's training attack ('fgsm', 'pgd'), '' without one."""
    a = (regime or {}).get("attack")
    return str(a.get("type", "")) if isinstance(a, dict) else ""


def is_fgsm_training(regime: dict[str, Any] | None) -> bool:
    """FGSM adversarial training ([G]): the weighted objective, or any adversarial objective with an fgsm attack."""
    obj = objective(regime)
    return obj == "weighted" or (obj != "clean" and attack_type(regime) == "fgsm")


def training_overrides(regime: dict[str, Any] | None) -> dict[str, Any]:
    """The training settings a regime overrides (optimizer, lr, weight_decay, momentum)."""
    return dict((regime or {}).get("training") or {})
