"""The report's "Setup" section: data, models, training regimes, optimisation, evaluation attacks and seeds; and the
numbers of its "How claims are judged" section (:func:`rule_context`, from the rule's own constants).

:func:`setup_context` describes the run from ``run_info.json``'s config and the cells that ``metrics.csv`` holds
(only what the tables have rows for is listed). Every value is LaTeX, escaped here. A study's own settings (its
transfer attack, say) are printed by its own section, not here.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..regimes import clean_weight, ligs_weight, role
from .claims import MIN_RANK_CELLS, RANK_Z_VARIANCE
from .labels import (
    attack_eps_label,
    attack_label,
    attack_tex,
    fmt_num,
    is_linf,
    join_words,
    norm_label,
    regime_label,
    sort_attacks,
    sort_norms,
    sort_regimes,
    tex_escape,
    tex_number,
)
from .metric import headline
from .preconditions import LEARNED_MARGIN
from .verdicts import MIN_SEEDS, Z975, t975

#: the settings of a dataset the setup names, in this order
DATASET_KEYS = ("kind", "method", "base", "n_train", "n_test", "image_size", "num_classes", "rf_amplitude",
                "nrf_amplitude", "noise_std")
#: the training settings the setup names: (config key, words)
TRAINING_KEYS = (("epochs", "epochs"), ("batch_size", "batch size"), ("optimizer", "optimizer"),
                 ("lr", "learning rate"), ("momentum", "momentum"), ("weight_decay", "weight decay"))


def dataset_tex(name: str, d: dict[str, Any]) -> str:
    """'generated (kind generated, n\\_train 5000, ...)': a dataset and the settings it has of DATASET_KEYS."""
    keys = [k for k in DATASET_KEYS if k in d]
    desc = tex_escape(name)
    if keys:
        desc += " (" + ", ".join(f"{tex_escape(k)} {tex_number(d[k])}" for k in keys) + ")"
    return desc


def arch_tex(name: str, a: dict[str, Any]) -> str:
    """'resnet (resnet; blocks 2, 2, 2, 2)': an architecture with its kind, sizes and non-default settings."""
    extra = [tex_escape(a["kind"])] if "kind" in a else []
    for k in ("widths", "blocks", "hidden"):
        if k in a:
            extra.append(f"{k} " + ", ".join(tex_number(w) for w in a[k]))
    extra += [f"{k} $\\times {fmt_num(a[k])}$" for k in ("width", "depth") if k in a and a[k] != 1]
    if a.get("activation", "relu") != "relu":
        extra.append("activation " + tex_escape(a["activation"]))
    return tex_escape(name) + (f" ({'; '.join(extra)})" if extra else "")


def _objective_tex(r: dict[str, Any]) -> str:
    """The part of a regime's description its objective adds ('' for standard and adversarial training)."""
    obj = role(r)
    if obj == "ligs_reg":
        return f", clean loss $+\\,{fmt_num(ligs_weight(r))} \\cdot (1 - \\text{{LIGS}})$"
    if obj in ("standard", "adversarial"):
        return ""
    out = f", objective {tex_escape(obj)}"
    if obj == "weighted":
        out += f" (clean weight {tex_number(clean_weight(r))})"
    return out


def regime_tex(name: str, r: Any) -> str:
    """A training regime in words: its label and name, its training attack (or clean images), its objective and
    its training overrides."""
    desc = f"{tex_escape(regime_label(name))} (\\texttt{{{tex_escape(name)}}})"
    if not isinstance(r, dict):
        return desc
    if r.get("attack"):
        desc += ": training attack " + attack_tex(r["attack"])
        if r.get("attack_mode"):
            desc += f", generated in {tex_escape(r['attack_mode'])} mode"
    else:
        desc += ": clean images only"
    desc += _objective_tex(r)
    if r.get("training"):
        desc += "; training " + ", ".join(f"{tex_escape(k.replace('_', ' '))} {tex_number(v)}"
                                          for k, v in r["training"].items())
    return desc


def attacks_tex(metrics: pd.DataFrame, cfg: dict[str, Any]) -> list[str]:
    """One line per evaluation attack in the tables: its ε grid (the ε metrics.csv has) and its steps."""
    out = []
    rob = metrics[metrics["metric"] == "robust_acc"]
    for att in sort_attacks(set(rob["attack"])):
        eps = sorted(set(rob[rob["attack"] == att]["eps"].dropna()))
        spec = ((cfg.get("evaluation") or {}).get("attacks") or {}).get(att) or {}
        steps = f"; {tex_number(spec['steps'])} steps" if "steps" in spec else ""
        unit = " (in 1/255)" if is_linf(att) else ""
        grid = ", ".join(fmt_num(e, 4) for e in eps)
        out.append(f"{tex_escape(attack_label(att))}: $\\varepsilon \\in \\{{{grid}\\}}${unit}{steps}")
    return out


def training_tex(tr: dict[str, Any]) -> str:
    """The optimisation settings: epochs, batch size, optimizer, ..., and a multistep schedule's decays."""
    training = [f"{label} {tex_number(tr[k])}" for k, label in TRAINING_KEYS if k in tr]
    sch = tr.get("schedule") or {}
    if sch.get("kind") == "multistep" and sch.get("milestones"):
        epochs = join_words([tex_number(m) for m in sch["milestones"]])
        training.append(f"learning rate $\\times {fmt_num(sch.get('gamma', 0.1))}$ at epoch"
                        f"{'s' if len(sch['milestones']) > 1 else ''} {epochs}")
    return "; ".join(training)


def setup_context(info: dict[str, Any], metrics: pd.DataFrame) -> dict[str, Any]:
    """The template's ``setup``: what the run trained and how it evaluated, from its config and metrics.csv."""
    cfg = info.get("config") or {}
    head = headline(info)
    cells = metrics[["dataset", "arch", "norm", "regime", "seed"]].drop_duplicates()
    noise = sorted(set(metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()))
    ev, hist = cfg.get("evaluation") or {}, (cfg.get("training") or {}).get("history") or {}
    seeds = sorted(set(int(s) for s in cells["seed"]))
    return {
        "datasets": [dataset_tex(n, (cfg.get("datasets") or {}).get(n) or {}) for n in sorted(set(metrics["dataset"]))],
        "archs": [arch_tex(n, (cfg.get("archs") or {}).get(n) or {}) for n in sorted(set(metrics["arch"]))],
        "regimes": [regime_tex(n, (cfg.get("regimes") or {}).get(n)) for n in sort_regimes(set(metrics["regime"]))],
        "attacks": attacks_tex(metrics, cfg),
        "norms": join_words([tex_escape(norm_label(n)) for n in sort_norms(set(metrics["norm"]))]),
        "noise": ", ".join(tex_number(s) for s in noise), "training": training_tex(cfg.get("training") or {}),
        "seeds": ", ".join(str(s) for s in seeds), "n_seeds": len(seeds), "n_cells": len(cells),
        "n_models": len(cells.drop(columns=["seed"]).drop_duplicates()),
        "eval_n_test": tex_number(ev["n_test"]) if "n_test" in ev else "",
        "ligs_sigma": tex_number(ev["ligs_sigma"]) if "ligs_sigma" in ev else "",
        "headline": tex_escape(attack_eps_label(head.attack, head.eps)),
        "history_attack": attack_tex(hist.get("attack")),
        "history_n_test": tex_number(hist["n_test"]) if hist.get("n_test") else "",
    }


# ------------------------------------------------------------------------------------ the verdict rule

def rule_t_example(run_info: dict[str, Any]) -> str:
    """'this run's 3 seeds, t = 4.30': the t quantile the run's seeds give (LaTeX)."""
    n = len((run_info.get("config") or {}).get("seeds") or [])
    if n < MIN_SEEDS:
        return f"this run's {n} seed{'s' if n != 1 else ''}, no interval"
    return f"this run's {n} seeds, $t = {t975(n - 1):.2f}$"


def rule_context(info: dict[str, Any]) -> dict[str, Any]:
    """The verdict rule's numbers for the text, from the rule's own constants (verdicts, claims, preconditions)."""
    two_sided = math.erfc(Z975 / math.sqrt(2))  # the false-verdict rate at the edge, both sides together
    return {"min_seeds": MIN_SEEDS, "t_example": rule_t_example(info), "z": f"{Z975:.2f}",
            "confidence": fmt_num(100 * (1 - two_sided), 3), "level": fmt_num(100 * two_sided, 2),
            "side": fmt_num(50 * two_sided, 2), "rank_var": fmt_num(RANK_Z_VARIANCE), "rank_cells": MIN_RANK_CELLS,
            "learned_margin": fmt_num(100 * LEARNED_MARGIN)}


__all__ = ["rule_context", "setup_context"]
