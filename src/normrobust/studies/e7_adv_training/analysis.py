"""E7's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, cell, pair
from ...analysis.labels import (
    attack_eps_label,
    join_words,
    norm_label,
    regime_label,
    sort_norms,
    sort_regimes,
    tex_escape,
)
from ...analysis.latex import main_table
from ...analysis.metric import CLEAN, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.reproduction import Published
from ...analysis.selection import nseeds_text, seed_stats
from ...analysis.study_view import StudyView
from ...analysis.verdicts import tol_text
from ...regimes import is_fgsm_training, objective, role
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
#: "raises or keeps": a drop below 1 point counts as kept; a larger drop would exceed AdvProp's published gain
#: (+0.7 points, [A] Table 2), so it could not be the same effect
TOL_KEEP = 0.01
#: "BN no longer hurts" under adversarial-only training: BN lowers robust accuracy by at most 2 points, a one-sided
#: claim ([B]'s Fig. 3 has BN 2.5 points above none, values in E2's PUBLISHED; 2 points is about the reading
#: precision of their figure)
TOL_ADV = 0.02


def clean_gain(p: Published, c: dict, cfg: dict[str, Any], metrics: pd.DataFrame,
               transfer: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """Ours for [A]'s AdvProp gain (``Published.ours``): the candidate regime's clean accuracy minus a standard
    regime's, seed by seed on the same data, architecture and norm, in points."""
    m = metrics[(metrics["dataset"] == c["dataset"]) & (metrics["arch"] == c["arch"]) & (metrics["norm"] == p.norm)]
    clean = m[m["metric"] == "clean_acc"].set_index(["regime", "seed"])["value"]
    have = set(clean.index.get_level_values(0))
    for b in [r for r, g in (cfg.get("regimes") or {}).items() if role(g) == "standard" and r in have]:
        if c["regime"] in have:
            return (clean.xs(c["regime"], level="regime") - clean.xs(b, level="regime")).dropna() * 100, ""
    return pd.Series(dtype=float), "no standard regime to compare with"


PUBLISHED = [Published(KEY, "[A] Table 2", "EfficientNet-B7, ImageNet", "AdvProp − standard: clean top-1 (points)", 0.7,
                       norm="bn", role="advprop", metric="clean_diff", dataset_kind="imagenet",
                       arch_kinds=("efficientnet",), analogue_kinds=("resnet", "vgg", "cnn"), ours=clean_gain)]
ADVPROP_QUOTE = f"+{PUBLISHED[0].short()} top-1 vs standard (EfficientNet-B7 ImageNet 84.5 → 85.2)"


def regimes_by_kind(view: StudyView) -> dict[str, list[str]]:
    """The study's non-standard regimes by what they do: mixed, advprop, adversarial, fgsm (weighted or an fgsm
    attack), ligs_reg."""
    out: dict[str, list[str]] = {}
    for r in view.regimes:
        if r == view.std:
            continue
        cfg = view.regime_config(r)
        out.setdefault("fgsm" if is_fgsm_training(cfg) else objective(cfg), []).append(r)
    return out


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    std = view.std
    if std is None:
        return out
    kinds = regimes_by_kind(view)

    def rs(kind: str, r: str) -> str:
        return f"-{r}" if len(kinds.get(kind, [])) > 1 else ""

    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)

            def c(norm: str, regime: str) -> dict[str, Any]:
                return cell(ds, arch, norm, regime)

            if "bn" in view.norms:
                for m in kinds.get("mixed", []):
                    out.append(pair(f"{TAG}-bn-mixed-clean{rs('mixed', m)}{sfx}", KEY, f"Mixing clean and "
                                    f"adversarial data through one shared BN ({m}) lowers clean accuracy vs standard "
                                    f"training{tsfx}",
                                    CLEAN, c("bn", m), c("bn", std), "decrease"))
                for a in kinds.get("advprop", []):
                    for m in kinds.get("mixed", []):
                        out.append(pair(f"{TAG}-bn-advprop-clean{rs('advprop', a)}{rs('mixed', m)}{sfx}", KEY,
                                        f"AdvProp's auxiliary BN ({a}) repairs it: higher clean accuracy than mixing "
                                        f"through one BN ({m}){tsfx}", CLEAN, c("bn", a), c("bn", m), "increase",
                                        paper=ADVPROP_QUOTE))
                    out.append(pair(f"{TAG}-bn-advprop-std{rs('advprop', a)}{sfx}", KEY, f"AdvProp ({a}) raises clean "
                                    f"accuracy or keeps it (drop ≤ {tol_text('clean_acc', TOL_KEEP)}) vs standard "
                                    f"training{tsfx}", CLEAN, c("bn", a), c("bn", std), "increase_or_keep", TOL_KEEP,
                                    paper=ADVPROP_QUOTE))
                if "none" in view.norms:
                    for a in kinds.get("adversarial", []):
                        out.append(pair(f"{TAG}-bn-adv-robust{rs('adversarial', a)}{sfx}", KEY, f"Under "
                                        f"adversarial-only training ({regime_label(a)}) BN no longer hurts: it lowers "
                                        f"{view.head.text} by at most {tol_text(view.head.key, TOL_ADV)} (or raises "
                                        f"it){tsfx}", view.head, c("bn", a), c("none", a), "increase_or_keep",
                                        TOL_ADV))
            for norm in sort_norms(view.norms):
                for f in kinds.get("fgsm", []):
                    out.append(pair(f"{TAG}-{norm}-fgsm-robust{rs('fgsm', f)}{sfx}", KEY, f"FGSM adversarial training "
                                    f"({f}) raises {view.head.text} over standard training, {norm_label(norm)}{tsfx}",
                                    view.head, c(norm, f), c(norm, std), "increase"))
    return out


def fail_reason(row: pd.Series) -> str:
    return ("AdvProp's published gain is 0.7 points on ImageNet; on small data and short schedules the auxiliary BN's "
            "effect can be of the size of the seed noise, and the mixed regime's cost depends on the attack strength")


# ------------------------------------------------------------------------------------------ figures

def fig_adv_training(tables: dict[str, pd.DataFrame], view: StudyView):
    """Per training regime (the study's order), bars per norm: clean accuracy and headline robust accuracy; a row
    per arch."""
    m = view.rows(tables["metrics"])
    m = m[m["value"].notna()]
    if m.empty:
        return plotting.no_data_figure(view.key, "results", "metrics.csv")
    regimes = [r for r in view.regimes if r in set(m["regime"])] or sort_regimes(m["regime"])
    archs = [a for a in view.archs if a in set(m["arch"])]
    norms = sort_norms(m["norm"])
    head = attack_eps_label(view.head.attack, view.head.eps)
    fig, axes = plotting.subplots(len(archs), 2, figsize=(plotting.FULL_WIDTH, 2.2 * len(archs) + 0.3))
    for i, arch in enumerate(archs):
        panels = [(CLEAN, "clean accuracy (%)"), (view.head, f"robust accuracy (%)\n{head}")]
        for j, (metric, label) in enumerate(panels):
            ax = axes[i, j]
            ax.set_title(label.replace(" (%)", "").replace("\n", ", ") + (f" · {arch}" if len(archs) > 1 else ""))
            ax.set_ylabel(label.split("\n")[0])
            st = seed_stats(metric.rows(m[m["arch"] == arch]), ["regime", "norm"])
            if st.empty:
                plotting.note(ax, f"{plotting.NO_DATA}:\nno {metric.text}")
                continue
            plotting.bars(ax, st, "regime", regimes, [{"match": {"norm": n}, "colour": plotting.norm_colour(n)}
                                                      for n in norms], scale=100.0, gid=f"{metric.name}|{arch}")
            ax.set_xticks(range(len(regimes)), [regime_label(r).replace(" (", "\n(") for r in regimes],
                          rotation=20 if len(regimes) > 3 else 0, ha="right" if len(regimes) > 3 else "center")
            plotting.pct_ylim(ax)
            ax.set_xlabel("training regime")
    plotting.legend_top(fig, plotting.norm_patches(norms), f"{plotting.BAR_NOTE} ({nseeds_text(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


FIGURES = {
    "adv_training": Figure(fig_adv_training, ("metrics",),
                           "**E7: normalisation under adversarial training.** Clean and headline robust accuracy per "
                           "training regime (standard, PGD, mixed clean + adversarial, AdvProp, FGSM), bars per norm. "
                           "Bar: mean over seeds; whisker: min–max."),
}


# ------------------------------------------------------------------------------------------ report

def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    table = main_table(frames["metrics"], view.head, view.models, columns=[Metric("clean_acc", label="Clean (%)"),
                                                                           view.head])
    return {"tables": {"main": write_table(f"main_{KEY}", table)},
            "regimes": join_words([tex_escape(regime_label(r)) for r in sort_regimes(view.regimes)])}

