"""Checks of the measurements themselves, shared by every study: PGD against AutoAttack, and what the derived
datasets carry.

* :func:`autoattack_frame`: every cell evaluated under AutoAttack (``evaluation.autoattack``) beside the PGD
  evaluation attack of the same norm and ε: per cell the mean over seeds of both robust accuracies and of their
  difference; a cell is flagged where PGD overestimates robust accuracy by more than
  :data:`PGD_OVERESTIMATE` (Croce & Hein 2020 report PGD overestimates of several points on published defences:
  more than 2 points means the PGD numbers of that cell should not be trusted as they stand).
* :func:`derived_frame`: the derived datasets' records (``derived.csv``): source cell, attack target rate and, on
  the generated data, the fraction of images carrying the label's RF / the new label's NRF (ideal readers).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..attack_specs import AUTOATTACK_TYPES
from .labels import attack_eps_label, fmt_num, norm_label, tex_escape
from .latex import empty_table, simple_table
from .selection import MODEL_KEYS

#: PGD − AutoAttack robust accuracy above which a cell is flagged (2 points, as a fraction)
PGD_OVERESTIMATE = 0.02

AUTOATTACK_LABEL = {"apgd_ce": "APGD-CE", "apgd_t": "APGD-T", "autoattack": "AutoAttack"}


def _norm_of(attack: dict) -> str:
    return str(attack.get("norm", "linf"))


def autoattack_frame(metrics: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Per (cell, ε): PGD and AutoAttack robust accuracy (means over the seeds both have), their difference, the
    seeds and ``flag`` (PGD − AutoAttack > :data:`PGD_OVERESTIMATE`). Empty without AutoAttack rows."""
    cols = [*MODEL_KEYS, "eps", "aa_type", "pgd_attack", "pgd", "aa", "diff", "n_seeds", "flag"]
    aa_cfg = (config.get("evaluation") or {}).get("autoattack") or {}
    attacks = (config.get("evaluation") or {}).get("attacks") or {}
    aa = metrics[(metrics["metric"] == "robust_acc") & metrics["attack"].isin(AUTOATTACK_TYPES)]
    pgd_names = [n for n, a in attacks.items() if a.get("type") == "pgd" and _norm_of(a) == _norm_of(aa_cfg)]
    if aa.empty or not pgd_names:
        return pd.DataFrame(columns=cols)
    pgd = metrics[(metrics["metric"] == "robust_acc") & metrics["attack"].isin(pgd_names)]
    keys = [*MODEL_KEYS, "seed", "eps"]
    a = aa.groupby([*keys, "attack"], as_index=False)["value"].mean().rename(columns={"value": "aa",
                                                                                        "attack": "aa_type"})
    p = pgd.groupby([*keys, "attack"], as_index=False)["value"].mean().rename(columns={"value": "pgd",
                                                                                       "attack": "pgd_attack"})
    a["eps_key"], p["eps_key"] = a["eps"].astype(float).round(6), p["eps"].astype(float).round(6)
    both = a.merge(p.drop(columns=["eps"]), on=[*MODEL_KEYS, "seed", "eps_key"])
    if both.empty:
        return pd.DataFrame(columns=cols)
    both["diff"] = both["pgd"] - both["aa"]
    out = both.groupby([*MODEL_KEYS, "eps", "aa_type", "pgd_attack"], as_index=False).agg(
        pgd=("pgd", "mean"), aa=("aa", "mean"), diff=("diff", "mean"), n_seeds=("seed", "nunique"))
    out["flag"] = out["diff"] > PGD_OVERESTIMATE
    return out[cols]


def autoattack_table(frame: pd.DataFrame) -> str:
    """LaTeX: per cell and ε the PGD and AutoAttack robust accuracy (%), PGD − AutoAttack (points) and a flag."""
    if frame.empty:
        return empty_table("no cell was evaluated under AutoAttack (evaluation.autoattack is not set)")
    header = ["Cell", "PGD attack", "AutoAttack", "PGD (\\%)", "AA (\\%)", "PGD $-$ AA (pts)", "", "$n$"]
    rows = [[tex_escape(f"{r['dataset']}/{r['arch']}/{norm_label(r['norm'])}/{r['regime']}"),
             tex_escape(attack_eps_label(r["pgd_attack"], r["eps"])),
             tex_escape(AUTOATTACK_LABEL.get(r["aa_type"], r["aa_type"])),
             f"{100 * r['pgd']:.1f}", f"{100 * r['aa']:.1f}", f"{100 * r['diff']:+.1f}".replace("-", "$-$"),
             r"\textbf{PGD overestimates}" if r["flag"] else "", str(int(r["n_seeds"]))]
            for _, r in frame.iterrows()]
    return simple_table(header, rows, "lllrrrlr")


def autoattack_summary(frame: pd.DataFrame) -> dict:
    """Numbers for the report's sentence: cells, flagged cells, the largest overestimate (points)."""
    if frame.empty:
        return {"n": 0}
    return {"n": int(len(frame)), "n_flagged": int(frame["flag"].sum()),
            "max_diff": fmt_num(round(100 * float(frame["diff"].max()), 1)),
            "threshold": fmt_num(100 * PGD_OVERESTIMATE)}


def derived_table(derived: pd.DataFrame | None) -> str:
    """LaTeX: per derived dataset its method, source cell, target rate and the ground truth it carries."""
    if derived is None or derived.empty:
        return empty_table("no derived dataset in this run")

    def pct(v) -> str:
        return f"{100 * float(v):.1f}" if v is not None and np.isfinite(float(v)) else "--"

    header = ["Dataset", "Method", "Source cell", "Target reached (\\%)", "Label's RF (\\%)",
              "Label's NRF (\\%)", "Intended feature"]
    rows = [[tex_escape(r["name"]), tex_escape(r["method"]), tex_escape(r["source"]), pct(r["target_rate"]),
             pct(r["rf_label_rate"]), pct(r["nrf_rate"]),
             (str(r["intended"]).upper() + f" on {pct(r['intended_rate'])}\\,\\%")
             if str(r["intended"]) not in ("", "nan") else "--"]
            for _, r in derived.iterrows()]
    return simple_table(header, rows, "lllrrrl")
