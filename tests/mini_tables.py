"""Hand-built tables of a small config (random values, 3 seeds), written as the aggregate step would, for the study
tests: they read a figure's drawn numbers back and compare them with these tables. (Tests over every study use the
fixture tables made by code from config.yaml: tests/fixture_tables.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from normrobust.plan import study_cells

MINI_CONFIG = {
    "seeds": [0, 1, 2],
    "datasets": {
        "gen": {"kind": "generated"},
        "d_r": {"kind": "derived", "method": "robust", "base": "gen"},
        "d_nr": {"kind": "derived", "method": "nonrobust", "base": "gen"},
        "d_rnd": {"kind": "derived", "method": "rand", "base": "gen"},
        "d_dt": {"kind": "derived", "method": "det", "base": "gen"},
        "d_cf": {"kind": "derived", "method": "conflict", "base": "d_r"},
    },
    "archs": {"cnn": {"kind": "cnn", "widths": [8, 16]},
              "cnn_w": {"kind": "cnn", "widths": [8, 16], "width": 2},
              "cnn_d": {"kind": "cnn", "widths": [8, 16], "depth": 2},
              "cnn_s": {"kind": "cnn", "widths": [8, 16], "activation": "selu"},
              "soft": {"kind": "linear"}, "mx": {"kind": "maxout", "hidden": [8], "pieces": 2}},
    "regimes": {"standard": {"attack": None},
                "pgd_linf": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3}},
                "pgd_small": {"attack": {"type": "pgd", "norm": "linf", "eps": 1, "step": 1, "steps": 1}},
                "mixed": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3},
                          "objective": "mixed"},
                "advprop": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3},
                            "objective": "advprop"},
                "fgsm": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8}, "objective": "weighted",
                         "clean_weight": 0.5},
                "wd_hi": {"attack": None, "training": {"weight_decay": 0.005}},
                "lr_hi": {"attack": None, "training": {"lr": 0.2}},
                "adam": {"attack": None, "training": {"optimizer": "adam"}},
                "lg1": {"attack": None, "objective": "ligs_reg", "ligs_weight": 0.5},
                "lg2": {"attack": None, "objective": "ligs_reg", "ligs_weight": 5}},
    "training": {"epochs": 3, "batch_size": 8, "lr": 0.1, "optimizer": "sgd", "weight_decay": 5e-4,
                 "history": {"n_test": 10, "attack": {"type": "pgd", "norm": "linf", "eps": 4, "steps": 2,
                                                      "rel_step": 0.25},
                             "extra_attacks": {"pgd_l2": {"type": "pgd", "norm": "l2", "eps": 0.25,
                                                          "steps": 2, "rel_step": 0.4}}}},
    "evaluation": {"attacks": {"pgd_linf": {"type": "pgd", "norm": "linf", "eps": [1, 4]},
                               "fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [2, 8]}},
                   "headline": {"attack": "pgd_linf", "eps": 4}},
    "studies": {
        "e1_norms": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]},
        "e2_trajectories": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                            "regimes": ["standard", "pgd_linf"]},
        "e3_disentangled": {"dataset": ["d_r", "d_nr", "d_rnd", "d_dt"], "archs": ["cnn"],
                            "norms": ["none", "bn"], "regimes": ["standard"]},
        "e4_conflict": {"dataset": "d_cf", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]},
        "e5_synthetic": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn", "ln"],
                         "regimes": ["standard", "pgd_linf"]},
        "e6_factors": {"dataset": "gen", "design": "one_at_a_time", "archs": ["cnn", "cnn_w", "cnn_d", "cnn_s"],
                       "norms": ["bn"], "regimes": ["standard", "wd_hi", "lr_hi", "adam"]},
        "e7_adv_training": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                            "regimes": ["standard", "pgd_linf", "mixed", "advprop", "fgsm"]},
        "e8_ligs_reg": {"dataset": "gen", "archs": ["cnn"], "norms": ["bn"], "regimes": ["standard", "lg1", "lg2"]},
        "e9_transfer": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                        "regimes": ["standard", "pgd_small"], "transfer": {"targets": ["standard"],
                                                                           "source_epochs": [1]}},
        "e10_fgsm": {"dataset": "gen", "archs": ["soft", "mx"], "norms": ["none"], "regimes": ["standard", "fgsm"],
                     "transfer": {"targets": ["standard", "fgsm"]}},
    },
}
MINI_METRICS = [("clean_acc", "none", 0), ("shifted_acc", "none", 0), ("ligs", "none", 0),
                ("nrf_reliance", "none", 0), ("robust_acc", "pgd_linf", 1), ("robust_acc", "pgd_linf", 4),
                ("robust_acc", "fgsm_linf", 2), ("robust_acc", "fgsm_linf", 8),
                ("adv_wrong_confidence", "fgsm_linf", 2), ("adv_wrong_confidence", "fgsm_linf", 8)]
KEYS = ["dataset", "arch", "norm", "regime"]


def write_tables(d: Path, config: dict, metrics: pd.DataFrame, history: pd.DataFrame, transfer: pd.DataFrame) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(d / "metrics.csv", index=False)
    history.to_csv(d / "history.csv", index=False)
    transfer.to_csv(d / "transfer.csv", index=False)
    (d / "run_info.json").write_text(json.dumps({"config": config}))
    return d


def mini_tables(d: Path) -> Path:
    """Every study of MINI_CONFIG with random values (3 seeds)."""
    rng = np.random.default_rng(7)
    cfg = MINI_CONFIG
    cells = {tuple(c.model) for st in cfg["studies"].values() for c in study_cells(cfg, st)}
    cells.add(("gen", "cnn", "none", "standard"))  # the no-norm base cell of E6
    rows = [dict(zip(KEYS, c), seed=s, metric=m, attack=a, eps=e, value=round(float(rng.uniform(0.05, 0.95)), 4))
            for c in sorted(cells) for s in cfg["seeds"] for m, a, e in MINI_METRICS]
    hist = [dict(dataset="gen", arch=c.arch, norm=c.norm, regime=c.regime, seed=c.seed, epoch=e,
                 lr=0.1, train_loss=1.0, clean_acc=rng.uniform(), robust_acc=rng.uniform(), ligs=rng.uniform(),
                 seconds=1.0, robust_acc_pgd_l2=round(float(rng.uniform()), 4))
            for c in study_cells(cfg, cfg["studies"]["e2_trajectories"]) for e in (1, 2, 3)]
    trans = []

    def add(study, src, tgt, seed, epoch, final):
        trans.append(dict(study=study, dataset="gen", seed=seed, source_arch=src[0], source_norm=src[1],
                          source_regime=src[2], source_epoch=epoch, source_final=final, target_arch=tgt[0],
                          target_norm=tgt[1], target_regime=tgt[2],
                          success_rate=round(float(rng.uniform(0.1, 0.9)), 4), n=100,
                          error_rate=round(float(rng.uniform(0.1, 0.9)), 4), n_total=120))

    for seed in cfg["seeds"]:
        e9 = [("cnn", n, r) for n in ("none", "bn") for r in ("standard", "pgd_small")]
        for src in e9:
            for tgt in [c for c in e9 if c[2] == "standard" and c != src]:
                add("e9_transfer", src, tgt, seed, 3, True)
                if src[2] == "standard":
                    add("e9_transfer", src, tgt, seed, 1, False)
        e10 = [(a, "none", r) for a in ("soft", "mx") for r in ("standard", "fgsm")]
        for src in e10:
            for tgt in e10:
                if src != tgt:
                    add("e10_fgsm", src, tgt, seed, 3, True)
    return write_tables(d, cfg, pd.DataFrame(rows), pd.DataFrame(hist), pd.DataFrame(trans))
