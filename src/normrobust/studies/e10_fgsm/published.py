"""E10's published numbers ([G]: Goodfellow, Shlens, Szegedy 2015), typed once, and how to find ours beside them."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis.labels import fmt_num
from ...analysis.reproduction import Published
from ...analysis.selection import select
from ...regimes import role
from . import KEY

#: [G]'s ε = 0.25 on [0,1] images, in the config's 1/255 units
G_EPS = 63.75

_G = dict(dataset_kind="mnist", preset="fgsm-mnist", norm="none")
_FGSM = dict(attack=("fgsm", "linf"), eps=G_EPS)
_SOFT, _MAX = dict(arch_kinds=("linear",), analogue_kinds=("linear",)), dict(arch_kinds=("maxout",),
                                                                                 analogue_kinds=("maxout",))


def transfer_error(p: Published, c: dict, cfg: dict[str, Any], metrics: pd.DataFrame, transfer: pd.DataFrame | None):
    """Ours for [G]'s transfer error (%): on a target of role ``p.target_role``, from ``c``'s final model."""
    if transfer is None or not len(transfer):
        return pd.Series(dtype=float), "no transfer results"
    t = select(transfer, study=p.study, dataset=c["dataset"], source_arch=c["arch"], target_arch=c["arch"],
               source_norm=p.norm, target_norm=p.norm, source_regime=c["regime"], source_final=True)
    t = t[t["target_regime"].map({r: role(g) for r, g in (cfg.get("regimes") or {}).items()}) == p.target_role]
    return t.groupby("seed")["error_rate"].mean() * 100, "" if len(t) else "transfer pair not run"


PUBLISHED = [
    Published(KEY, "[G] Sec. 4", "shallow softmax, MNIST", "standard: FGSM ε=0.25 error (%)", 99.9,
              metric="robust_acc", error=True, **_FGSM, **_SOFT, **_G),
    Published(KEY, "[G] Sec. 4", "shallow softmax, MNIST", "standard: confidence on misclassified FGSM (%)", 79.3,
              metric="adv_wrong_confidence", **_FGSM, **_SOFT, **_G),
    Published(KEY, "[G] Sec. 5", "maxout, MNIST", "standard: FGSM ε=0.25 error (%)", 89.4, metric="robust_acc",
              error=True, **_FGSM, **_MAX, **_G),
    Published(KEY, "[G] Sec. 5", "maxout, MNIST", "standard: confidence on misclassified FGSM (%)", 97.6,
              metric="adv_wrong_confidence", **_FGSM, **_MAX, **_G),
    Published(KEY, "[G] Sec. 6", "maxout, MNIST", "FGSM-trained: FGSM ε=0.25 error (%)", 17.9, role="weighted",
              metric="robust_acc", error=True, **_FGSM, **_MAX, **_G),
    Published(KEY, "[G] Sec. 6", "maxout, MNIST", "standard: clean error (%)", 0.94, metric="clean_acc", error=True,
              **_MAX, **_G),
    Published(KEY, "[G] Sec. 6", "maxout, MNIST", "FGSM-trained: clean error (%)", 0.84, role="weighted",
              metric="clean_acc", error=True, **_MAX, **_G),
    Published(KEY, "[G] Sec. 6", "maxout, MNIST", "transfer standard → FGSM-trained: error (%)", 19.6,
              target_role="weighted", metric="transfer", ours=transfer_error, **_MAX, **_G),
    Published(KEY, "[G] Sec. 6", "maxout, MNIST", "transfer FGSM-trained → standard: error (%)", 40.9, role="weighted",
              target_role="standard", metric="transfer", ours=transfer_error, **_MAX, **_G),
]
_PUBLISHED_AS = {"clean_error": "clean_acc", "fgsm_error": "robust_acc", "wrong_confidence": "adv_wrong_confidence",
                 "transfer_error": "transfer"}


def g_value(kind: str, role_: str, quantity: str, target_role: str | None = None) -> float | None:
    """[G]'s number (percent) for an arch kind (linear, maxout), a regime role (standard; any adversarial training
    stands beside [G]'s weighted one) and a quantity (clean_error, fgsm_error, wrong_confidence, transfer_error)."""
    def g(r: str | None) -> str | None:
        return None if r is None else ("standard" if r == "standard" else "weighted")

    for p in PUBLISHED:
        if (p.metric, p.role, p.target_role) == (_PUBLISHED_AS[quantity], g(role_), g(target_role)) \
                and kind in p.arch_kinds:
            return p.value
    return None


def g_text(kind: str, role_: str, quantity: str, target_role: str | None = None) -> str:
    v = g_value(kind, role_, quantity, target_role)
    return "" if v is None else f"{fmt_num(v, 4)}%"
