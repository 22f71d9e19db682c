"""E2's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, Trajectory, cell, cell_text, find_claim, level, norm_vs_none
from ...analysis.labels import (
    attack_label,
    attack_text,
    fmt_num,
    fmt_signed,
    join_words,
    metric_label,
    norm_label,
    regime_label,
    sort_norms,
    sort_regimes,
    tex_escape,
)
from ...analysis.latex import main_table, stats_table
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.reproduction import Published, find
from ...analysis.selection import MODEL_KEYS, seed_stats, select
from ...analysis.study_view import StudyView
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics", "history")
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
#: "BN no longer hurts" under adversarial training: BN may lower robust accuracy by at most 2 points. [B]'s claim is
#: one-sided (their numbers, BN 79.5 vs none 77, favour BN by 2.5 points); 2 points is the smallest drop [B] would
#: have reported as a loss at their reading precision of about ±2 points
TOL_ADV = 0.02
#: "keeps LIGS near 1" under adversarial training: above 0.9. [B]'s adversarially trained models end at 0.98, their
#: standard ones at 0.59 (BN) and 0.79 (none), Fig. 3: 0.9 lies between the two groups, above every standard model
ADV_LIGS_LEVEL = 0.9
#: "BN no longer lowers LIGS" under adversarial training ([B] Fig. 3: 0.98 vs 0.98): |ΔLIGS| within 0.03, the
#: precision at which LIGS can be read off their figure, and well inside the 0.20 BN gap of standard training
TOL_ADV_LIGS = 0.03
#: [B] Fig. 3's robust accuracy: PGD-L2 at this ε
B_L2_EPS = 0.25

_B = "[B] Fig. 3 (fig)"
_SETTING = "ResNet-18, CIFAR-10, 150 epochs"
_L2 = dict(attack=("pgd", "l2"), eps=0.25)


def targeted_l2(regime: dict[str, Any]) -> bool:
    """[B] trained its adversarial models with targeted PGD-L2: among adversarial regimes, that one stands beside
    their numbers (``Published.prefer``)."""
    attack = regime.get("attack") or {}
    return attack.get("norm") == "l2" and bool(attack.get("targeted"))


def _fig3(role: str, norm: str, clean: float, robust: float, ligs: float) -> list[Published]:
    who = f"{'standard' if role == 'standard' else 'adversarial'}, {'BN' if norm == 'bn' else 'no norm'}"
    kw = dict(norm=norm, role=role, arch_blocks=(2, 2, 2, 2), prefer=targeted_l2 if role == "adversarial" else None)
    return [Published(KEY, _B, _SETTING, f"{who}: clean accuracy (%)", clean, metric="clean_acc", **kw),
            Published(KEY, _B, _SETTING, f"{who}: PGD-L2 0.25 accuracy (%)", robust, metric="robust_acc", **_L2, **kw),
            Published(KEY, _B, _SETTING, f"{who}: LIGS", ligs, metric="ligs", **kw)]


PUBLISHED = [*_fig3("standard", "none", 92.5, 40, 0.79), *_fig3("standard", "bn", 95.3, 10, 0.59),
             *_fig3("adversarial", "none", 88.8, 77, 0.98), *_fig3("adversarial", "bn", 90.5, 79.5, 0.98)]


def quote(role: str, metric: str) -> str:
    """[B]'s BN and no-norm values of one quantity, as a claim quotes them: 'BN 10 vs none 40, PGD-L2 0.25 (fig)'."""
    bn, none = (find(PUBLISHED, role=role, norm=n, metric=metric) for n in ("bn", "none"))
    what = ", PGD-L2 0.25" if metric == "robust_acc" else ""
    return f"BN {bn.short()} vs none {none.short()}{what} (fig)"


def robust_metric(view: StudyView) -> Metric:
    """The robust accuracy E2's claims compare: PGD-L2 at ε = 0.25 ([B] Fig. 3) when an evaluation attack measures
    it, else the headline."""
    for name, spec in ((view.config.get("evaluation") or {}).get("attacks") or {}).items():
        if spec.get("type") == "pgd" and spec.get("norm") == "l2" and any(
                abs(float(e) - B_L2_EPS) < 1e-9 for e in spec.get("eps") or []):
            return Metric("robust_acc", name, B_L2_EPS)
    return view.head


def b_regime(view: StudyView, regime: str) -> bool:
    """The regime is [B]'s adversarial training: targeted PGD-L2 at ε = 0.5 (the quote's setting); another regime's
    claims quote [B] as an analogue and say so."""
    attack = view.regime_config(regime).get("attack") or {}
    return attack.get("norm") == "l2" and bool(attack.get("targeted")) and abs(float(attack.get("eps", 0)) - 0.5) < 1e-9


def adv_quote(view: StudyView, regime: str, metric: str) -> str:
    """[B]'s adversarial-training numbers, marked an analogue when ``regime`` is not [B]'s training."""
    q = quote("adversarial", metric)
    return q if b_regime(view, regime) else f"{q}; [B] trains with targeted PGD-L2 ε=0.5, this regime differs: analogue"


def claims(view: StudyView) -> list[Claim]:
    rob = robust_metric(view)
    out = norm_vs_none(view, TAG, "std-robust", "{norm} lowers {metric} under {regime} training", rob,
                       "decrease", norms=["bn"], paper={"bn": quote("standard", "robust_acc")})
    out += norm_vs_none(view, TAG, "std-ligs", "{norm} lowers LIGS under {regime} training", LIGS, "decrease",
                        norms=["bn"], paper={"bn": quote("standard", "ligs")})
    adv = [r for r in sort_regimes(view.regimes) if r != view.std]
    for r in adv:
        out += norm_vs_none(view, TAG, "adv-robust", "{norm} no longer hurts under {regime} training: it lowers "
                            "{metric} by at most {tol} (or raises it)", rob, "increase_or_keep", TOL_ADV, regimes=[r],
                            norms=["bn"], paper={"bn": adv_quote(view, r, "robust_acc")}, regime_in_id=len(adv) > 1)
        out += norm_vs_none(view, TAG, "adv-ligs", "{norm} no longer lowers LIGS under {regime} training: |Δ| within "
                            "{tol}", LIGS, "small", TOL_ADV_LIGS, regimes=[r], norms=["bn"],
                            paper={"bn": adv_quote(view, r, "ligs")}, regime_in_id=len(adv) > 1)
    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)
            for regime in adv:
                rsfx = f"-{regime}" if len(adv) > 1 else ""
                for norm in [n for n in ("none", "bn") if n in view.norms]:
                    ligs = find(PUBLISHED, role="adversarial", norm=norm, metric="ligs")
                    nl = "no-norm" if norm == "none" else norm_label(norm)
                    out.append(level(f"{TAG}-{norm}-adv-ligs-high{rsfx}{sfx}", KEY, f"The {nl} model keeps LIGS near "
                                     f"1 under {regime_label(regime)} training: above {fmt_num(ADV_LIGS_LEVEL)}{tsfx}",
                                     LIGS, cell(ds, arch, norm, regime), ADV_LIGS_LEVEL,
                                     paper=f"LIGS {ligs.short()} (fig)"))
    if view.std is None:
        return out
    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)
            for norm in [n for n in ("none", "bn") if n in view.norms]:
                c = cell(ds, arch, norm, view.std)
                ligs = find(PUBLISHED, role="standard", norm=norm, metric="ligs")
                out.append(Trajectory(
                    id=f"{TAG}-{norm}-rf-first{sfx}", study=KEY, metric="ligs", direction="decrease",
                    text=f"LIGS falls during {regime_label(view.std)} training of the "
                         f"{'no-norm' if norm == 'none' else norm_label(norm)} model (robust features are learnt "
                         f"first){tsfx}",
                    delta=f"LIGS(last epoch) − LIGS(epoch 0, the initialised model) of {cell_text(c)} per seed "
                          f"(history)",
                    paper=f"LIGS ~1.0 → {ligs.short()} (fig)", of=LIGS, cell=c))
    return out


def fail_reason(row: pd.Series) -> str | None:
    if "rf-first" in str(row["id"]):
        return ("the first measured epoch already follows a whole pass of SGD: with small data the phase in which "
                "robust features dominate can end inside epoch 1, so LIGS need not fall afterwards")
    return None


# ------------------------------------------------------------------------------------------ figures

def history_attacks(config: dict[str, Any], history: pd.DataFrame) -> list[tuple[str, str]]:
    """(history column, attack in words) of the per-epoch robust accuracies: ``robust_acc`` (the history attack),
    then one ``robust_acc_<name>`` per extra attack present (config order, then by name)."""
    hist = (config.get("training") or {}).get("history") or {}
    extra = hist.get("extra_attacks") or {}
    present = [c[len("robust_acc_"):] for c in history.columns if str(c).startswith("robust_acc_")]
    names = [n for n in extra if n in present] + sorted(n for n in present if n not in extra)
    return [("robust_acc", attack_text(hist.get("attack")))] + [
        (f"robust_acc_{n}", attack_text(extra.get(n)) or attack_label(n)) for n in names]


def fig_trajectories(tables: dict[str, pd.DataFrame], view: StudyView):
    """Per regime (rows) and arch: clean accuracy, robust accuracy (one panel per history attack) and LIGS per
    epoch (columns), as [B] Fig. 3."""
    h = view.rows(tables["history"])
    if h.empty:
        return plotting.no_data_figure(view.key, "training history", "history.csv")
    regimes = sort_regimes(set(view.regimes) | set(h["regime"]))
    archs = sorted(set(view.archs) | set(h["arch"]))
    norms = sort_norms(h["norm"])
    rows = [(a, r) for a in archs for r in regimes]
    cols = ([("clean_acc", "clean accuracy (%)")]
            + [(c, "robust accuracy (%)" + (f", {a}" if a else "")) for c, a in history_attacks(view.config, h)]
            + [("ligs", "LIGS")])
    fig, axes = plotting.subplots(len(rows), len(cols), figsize=(plotting.FULL_WIDTH, 1.75 * len(rows) + 0.3))
    lr_drawn = False
    for i, (arch, regime) in enumerate(rows):
        ch = h[(h["arch"] == arch) & (h["regime"] == regime)]
        for j, (metric, label) in enumerate(cols):
            ax = axes[i, j]
            row_name = regime_label(regime) + (f" · {arch}" if len(archs) > 1 else "")
            if i == 0:
                ax.set_title(label.replace(" (%), ", " (%)\n") if len(cols) > 3 else label)
            ax.set_ylabel(f"{row_name}\n{label.split(' (')[0].split(',')[0]}" if j == 0 else
                          ("LIGS" if metric == "ligs" else "%"))
            if i == len(rows) - 1:
                ax.set_xlabel("epoch")
            plotting.integer_xticks(ax)
            d = ch[ch[metric].notna()]
            if d.empty:
                plotting.note(ax, f"no {metric_label(metric)}\nfor {regime_label(regime)}")
                continue
            lr = d.groupby("epoch")["lr"].mean().sort_index()  # lr decays as dotted vertical lines
            for e1, l0, l1 in zip(lr.index[1:], lr.values[:-1], lr.values[1:]):
                if np.isfinite(l0) and np.isfinite(l1) and l1 < l0 and not np.isclose(l1, l0):
                    ax.axvline(e1, color="0.6", lw=0.6, ls=":", zorder=0)
                    lr_drawn = True
            st = seed_stats(d, ["norm", "epoch"], metric)
            k = 1.0 if metric == "ligs" else 100.0
            for norm in norms:
                s = st[st["norm"] == norm].sort_values("epoch")
                if len(s):
                    plotting.band(ax, s["epoch"], s["mean"], s["min"], s["max"], plotting.norm_colour(norm),
                                  scale=k, alpha=0.18, label=norm_label(norm), gid=f"{metric}|{arch}|{regime}|{norm}")
            if metric == "ligs":
                lo = float(st["min"].min())
                ax.set_ylim(lo if lo < 0 else max(0.0, lo - 0.05), 1.01)
    handles = plotting.norm_handles(norms, marker=False)
    if lr_drawn:
        handles.append(plotting.line_handle(color="0.6", ls=":", lw=0.8, label="lr decay"))
    n = h["seed"].nunique()
    plotting.legend_top(fig, handles, f"{plotting.SPREAD_NOTE} ({n} seed{'s' if n != 1 else ''})")
    fig.align_ylabels(axes[:, 0])
    fig.tight_layout(h_pad=0.6, w_pad=0.8)
    return fig


FIGURES = {
    "trajectories": Figure(fig_trajectories, ("history",),
                           "**E2: training trajectories.** Clean accuracy, robust accuracy (one panel per per-epoch "
                           "attack, e.g. PGD-L∞ and PGD-L2 0.25) and LIGS after every epoch for BN and no-norm models, "
                           "one row per training regime. Line: mean over seeds; band: min–max; dotted vertical lines "
                           "mark learning-rate decays ([B] Fig. 3)."),
}


# ------------------------------------------------------------------------------------------ report

def last_epoch(history: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The last epoch of every (cell, seed) as a metrics-like long frame (metric = the history column)."""
    keys = list(MODEL_KEYS) + ["seed"]
    last = history.sort_values("epoch", kind="stable").groupby(keys, as_index=False).tail(1)
    long = last.melt(id_vars=keys + ["epoch"], value_vars=[c for c in columns if c in last.columns],
                     var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.assign(attack="none", eps=0.0)


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    tables = {"main": write_table(f"main_{KEY}", main_table(frames["metrics"], view.head, view.models))}
    out: dict[str, Any] = {"tables": tables, "n_epochs": 0, "history_cols": ""}
    h = select(frames["history"], view.models) if frames.get("history") is not None else None
    if h is not None and len(h):
        cols = ([Metric("clean_acc", label="Clean (%)")]
                + [Metric(c, label=f"{a or c} (%)") for c, a in history_attacks(view.config, h)]
                + [Metric("ligs", label="LIGS")])
        long = last_epoch(h, [m.name for m in cols])
        specs = [m for m in cols if m.name in set(long["metric"])]
        tables["history"] = write_table(f"history_{KEY}", stats_table(
            long, [Metric(m.name, label=m.label) for m in specs], empty="no per-epoch history"))
        out["n_epochs"] = int(h["epoch"].max())
        out["history_cols"] = join_words([tex_escape(m.label.replace(" (%)", "")) for m in specs])
    return out


def abstract(view: StudyView, claims_df: pd.DataFrame, ctx: dict[str, Any]) -> list[str]:
    """The BN gap in robust accuracy under adversarial training."""
    rows = claims_df[claims_df["id"].str.startswith(f"{TAG}-bn-adv-robust")]
    r = find_claim(rows, list(rows["id"]))
    if r is None:
        return []
    return [f"Under adversarial training the BN gap in robust accuracy was {fmt_signed(float(r['mean_diff']), True)} "
            f"points."]
