"""E6's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, Dominance, cell, cell_text, pair
from ...analysis.labels import (
    fmt_mean_std,
    fmt_num,
    fmt_sci,
    fmt_signed,
    norm_label,
    regime_label,
    regime_short,
    tex_escape,
)
from ...analysis.latex import blank_repeats, empty_table, grouped
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned, similar
from ...analysis.selection import nseeds_text, seed_stats, select
from ...analysis.study_view import StudyView
from ...regimes import objective, training_overrides
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics", "history")
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
PUBLISHED: list = []
#: "moves LIGS little" (width, depth): |ΔLIGS| below 0.05, a quarter of the effect [B] attributes to BN (Fig. 3:
#: a LIGS drop of 0.20 from no norm to BN under standard training; the values are in E2's PUBLISHED)
TOL_LIGS_SMALL = 0.05
#: "early" in training: the end of epoch 1 ([B] Fig. 3 reads LIGS from the first epochs; the history's epoch 0 is the
#: initialisation, where every regime of a seed has the same network)
EARLY_EPOCH = 1
#: LIGS early is compared only between models at a comparable point of training: clean accuracy at EARLY_EPOCH within
#: 5 points (a model at 83 % and one at 95 % are at different points of their trajectory, and LIGS moves with it)
EARLY_TOL = 0.05
ACTIVATION_LABEL = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "selu": "SELU", "elu": "ELU", "gelu": "GELU",
                    "tanh": "tanh"}
OPTIMIZER_LABEL = {"sgd": "SGD", "adam": "Adam", "adagrad": "Adagrad"}


@dataclass(frozen=True)
class Variant:
    """One cell of the design: its arch and regime, what it changes from the base (factor → (value, base value);
    factors width, depth, activation, optimizer (with the lr etc. it comes with), wd, lr, momentum, or other) and a
    short label ('width ×2', 'SELU', 'wd 5e-3', 'Adam, lr 1e-3')."""

    arch: str
    regime: str
    factors: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    label: str = "base"

    @property
    def is_base(self) -> bool:
        return not self.factors


def _arch_factors(a: dict[str, Any], b: dict[str, Any], name: str) -> dict[str, tuple[Any, Any]]:
    if a.get("kind") != b.get("kind"):
        return {"other": (name, None)}
    out: dict[str, tuple[Any, Any]] = {}
    aw, bw = a.get("widths"), b.get("widths")
    if a.get("width", 1) != b.get("width", 1) or (aw and bw and len(aw) == len(bw) and aw != bw):
        out["width"] = (float(a.get("width", 1)) / float(b.get("width", 1)), 1.0)
    if (a.get("depth", 1) != b.get("depth", 1) or a.get("convs_per_stage", 1) != b.get("convs_per_stage", 1)
            or a.get("blocks") != b.get("blocks") or (aw and bw and len(aw) != len(bw))):
        out["depth"] = (float(a.get("depth", 1)) / float(b.get("depth", 1)), 1.0)
    if a.get("activation", "relu") != b.get("activation", "relu"):
        out["activation"] = (str(a.get("activation", "relu")), str(b.get("activation", "relu")))
    return out or {"other": (name, None)}


def _regime_factors(r: dict[str, Any], b: dict[str, Any], training: dict[str, Any],
                    name: str) -> dict[str, tuple[Any, Any]]:
    if objective(r) != objective(b) or r.get("attack") != b.get("attack"):
        return {"other": (name, None)}
    v, w = {**training, **training_overrides(r)}, {**training, **training_overrides(b)}
    out = {}
    if v.get("optimizer", "sgd") != w.get("optimizer", "sgd"):
        out["optimizer"] = (v.get("optimizer", "sgd"), w.get("optimizer", "sgd"))
    out.update({fac: (v.get(k), w.get(k)) for k, fac in (("weight_decay", "wd"), ("lr", "lr"), ("momentum", "momentum"))
                if v.get(k) is not None and (w.get(k) is None or not np.isclose(float(v[k]), float(w[k])))})
    return out or {"other": (name, None)}


def _label(factors: dict[str, tuple[Any, Any]]) -> str:
    words = {"width": lambda v: f"width ×{fmt_num(v)}", "depth": lambda v: f"depth ×{fmt_num(v)}",
             "activation": lambda v: ACTIVATION_LABEL.get(v, str(v)), "optimizer": lambda v: OPTIMIZER_LABEL.get(v, v),
             "wd": lambda v: f"wd {fmt_sci(v)}", "lr": lambda v: f"lr {fmt_sci(v)}",
             "momentum": lambda v: f"momentum {fmt_num(v)}", "other": str}
    return ", ".join(words[f](new) for f, (new, _) in factors.items())


def variants(view: StudyView) -> list[Variant]:
    """The base cell, then every one-at-a-time variant with what it changes."""
    if not view.archs or not view.regimes:
        return []
    a0, r0 = view.archs[0], view.regimes[0]
    training = view.config.get("training") or {}
    out = [Variant(a0, r0)]
    for a in view.archs[1:]:
        f = _arch_factors(view.arch_config(a), view.arch_config(a0), a)
        out.append(Variant(a, r0, f, _label(f)))
    for r in view.regimes[1:]:
        f = _regime_factors(view.regime_config(r), view.regime_config(r0), training, r)
        out.append(Variant(a0, r, f, _label(f)))
    return out


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    vs = variants(view)
    if not vs:
        return out
    a0, r0 = vs[0].arch, vs[0].regime
    for ds in view.datasets:
        dsfx, tsfx = (f"@{ds}", f" ({ds})") if len(view.datasets) > 1 else ("", "")
        for norm in view.norms:
            nl, base = norm_label(norm), cell(ds, a0, norm, r0)

            def c(v: Variant) -> dict[str, Any]:
                return cell(ds, v.arch, norm, v.regime)

            for fac in ("width", "depth"):
                own = [v for v in vs if set(v.factors) == {fac}]
                for v in own:
                    s = f"-{v.arch}" if len(own) > 1 else ""
                    out.append(pair(f"{TAG}-{norm}-{fac}-ligs{s}{dsfx}", KEY, f"{fac} moves LIGS little (|Δ| ≤ "
                                    f"{fmt_num(TOL_LIGS_SMALL)}): {v.arch} vs {a0}, {nl}{tsfx}", LIGS, c(v), base,
                                    "small", TOL_LIGS_SMALL))
            for v in vs:
                if set(v.factors) == {"activation"} and v.factors["activation"][0] != "relu":
                    act = v.factors["activation"][0]
                    name = act.upper() if act == "selu" else act
                    out.append(pair(f"{TAG}-{norm}-{act}-ligs{dsfx}", KEY, f"{name} ({v.arch}) has higher LIGS than "
                                    f"ReLU ({a0}), {nl}{tsfx}", LIGS, c(v), base, "increase"))
                    out.append(pair(f"{TAG}-{norm}-{act}-clean{dsfx}", KEY, f"{name} ({v.arch}) has lower clean "
                                    f"accuracy than ReLU ({a0}), {nl}{tsfx}", CLEAN, c(v), base, "decrease"))
                # an optimizer comes with its own lr: a variant that changes the optimizer is about the optimizer
                if "optimizer" in v.factors and v.factors["optimizer"][0] == "adam":
                    out.append(pair(f"{TAG}-{norm}-adam-ligs{dsfx}", KEY, f"Adam ({v.regime}) gives higher LIGS than "
                                    f"{str(v.factors['optimizer'][1]).upper()} ({r0}), {nl}{tsfx}", LIGS, c(v), base,
                                    "increase"))
                for fac, word in (("wd", "weight decay"), ("lr", "initial learning rate")):
                    if set(v.factors) != {fac}:
                        continue
                    new, old = v.factors[fac]
                    if old is not None and not float(new) > float(old):
                        continue  # the claim is about a higher value
                    early = pair(f"{TAG}-{norm}-{fac}-ligs-early{dsfx}", KEY, f"Higher {word} ({v.regime}) gives "
                                 f"higher LIGS early (epoch {EARLY_EPOCH}) than {r0}, {nl}{tsfx}", LIGS, c(v), base,
                                 "increase", epoch=EARLY_EPOCH)
                    early.requires.append(similar(KEY, c(v), base, CLEAN, EARLY_TOL, epoch=EARLY_EPOCH))
                    out.append(early)
                    out.append(pair(f"{TAG}-{norm}-{fac}-ligs-late{dsfx}", KEY, f"Higher {word} ({v.regime}) gives "
                                    f"lower final LIGS than {r0}, {nl}{tsfx}", LIGS, c(v), base, "decrease"))
            by_opt = {v.factors["optimizer"][0]: v for v in vs if set(v.factors) >= {"optimizer"}}
            if {"adam", "adagrad"} <= set(by_opt):
                va, vg = by_opt["adam"], by_opt["adagrad"]
                out.append(pair(f"{TAG}-{norm}-adam-vs-adagrad-ligs{dsfx}", KEY, f"Adam ({va.regime}) gives higher "
                                f"LIGS than Adagrad ({vg.regime}), {nl}{tsfx}", LIGS, c(va), c(vg), "increase"))
            others = [c(v) for v in vs[1:]]
            if norm != "none" and others:
                out.append(Dominance(
                    id=f"{TAG}-{norm}-vs-norm{dsfx}", study=KEY, metric="ligs", direction="decrease",
                    text=f"None of the factors moves LIGS as much as normalisation does: the largest |ΔLIGS| of a "
                         f"factor variant is below |LIGS({nl}) − LIGS(no norm)| of the base cell {a0}/{r0}{tsfx}",
                    delta=f"max over the {len(others)} variants of |LIGS(variant) − LIGS(base)| − |LIGS(base) − "
                          f"LIGS(base with no norm)| per seed ({cell_text(base)})",
                    of=LIGS, base=base, variants=others, ref=cell(ds, a0, "none", r0)))
    return out


def fail_reason(row: pd.Series) -> str:
    return ("[B]'s effects of width, depth, activation and optimiser on LIGS are small and read off training curves; "
            "at this scale they are of the size of the seed noise")


# ------------------------------------------------------------------------------------------ figures

def fig_factors(tables: dict[str, pd.DataFrame], view: StudyView):
    """LIGS and clean accuracy of the base cell (shaded) and each one-at-a-time variant (labelled by what
    differs), bars per norm; a dashed line marks the no-norm base cell."""
    vs = variants(view)
    m = select(tables["metrics"], dataset=view.datasets, metric=["ligs", "clean_acc"])
    m = m[m["value"].notna()]
    label = {(v.arch, v.regime): v.label for v in vs}
    in_design = pd.Series([(a, r) in label for a, r in zip(m["arch"], m["regime"])], index=m.index, dtype=bool)
    d = m[in_design & m["norm"].isin(view.norms)]
    if d.empty or not vs:
        return plotting.no_data_figure(view.key, "results for the base cell or its variants", "metrics.csv")
    d = d.assign(_variant=[label[(a, r)] for a, r in zip(d["arch"], d["regime"])])
    groups, norms = [v.label for v in vs], [n for n in view.norms if n in set(d["norm"])]
    a0, r0 = vs[0].arch, vs[0].regime
    ref = m[(m["arch"] == a0) & (m["regime"] == r0) & (m["norm"] == "none")]
    fig, axes = plotting.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.5))
    drew_ref = False
    for j, (metric, ylabel, scale) in enumerate([("ligs", "LIGS (cosine similarity)", 1.0),
                                                 ("clean_acc", "clean accuracy (%)", 100.0)]):
        ax = axes[0, j]
        ax.set_title(ylabel.split(" (")[0])
        ax.set_ylabel(ylabel)
        st = seed_stats(d[d["metric"] == metric], ["_variant", "norm"])
        if st.empty:
            plotting.note(ax, f"{plotting.NO_DATA}:\nno {metric}")
            continue
        ax.axvspan(-0.45, 0.45, color="0.92", zorder=0, lw=0)
        plotting.bars(ax, st, "_variant", groups, [{"match": {"norm": n}, "colour": plotting.norm_colour(n)}
                                                   for n in norms], scale=scale, gid=metric)
        ax.set_xticks(range(len(groups)), [f"base ({a0}, {regime_short(r0)})"] + groups[1:], rotation=30,
                      ha="right", rotation_mode="anchor")
        r = ref[ref["metric"] == metric]
        if len(r):
            ax.axhline(float(seed_stats(r, ["metric"])["mean"].iloc[0]) * scale, color=plotting.norm_colour("none"),
                       ls="--", lw=0.8, zorder=3, gid=f"ref|{metric}")
            drew_ref = True
        plotting.ligs_ylim(ax, st) if metric == "ligs" else plotting.pct_ylim(ax)
    handles = plotting.norm_patches(norms) + [plotting.patch_handle(facecolor="0.92", label="base cell")]
    if drew_ref:
        handles.append(plotting.line_handle(color=plotting.norm_colour("none"), ls="--", lw=0.8,
                                            label="no norm, base cell"))
    plotting.legend_top(fig, handles, f"{plotting.BAR_NOTE} ({nseeds_text(d)}); one factor changed at a time")
    fig.tight_layout(w_pad=1.0)
    return fig


FIGURES = {
    "factors": Figure(fig_factors, ("metrics",),
                      "**E6: factors other than normalisation.** LIGS and clean accuracy of the base cell (shaded) and "
                      "of each variant that changes one factor (width, depth, activation, weight decay, learning rate, "
                      "optimiser), labelled by what differs, bars per norm. Bar: mean over seeds; whisker: min–max; a "
                      "dashed line marks the no-norm base cell where it was run."),
}


# ------------------------------------------------------------------------------------------ report

def factors_table(metrics: pd.DataFrame, view: StudyView, specs: list[Metric]) -> str:
    """Per norm, the base cell and each variant: each metric's mean ± std over seeds, then Δ vs the base cell
    (the mean of the per-seed differences; accuracies in points)."""
    vs = variants(view)
    m = select(metrics, dataset=view.datasets, norm=view.norms)
    rows = []
    for norm in [n for n in view.norms if n in set(m["norm"])]:
        for v in vs:
            row: dict[str, Any] = {"Norm": tex_escape(norm_label(norm)),
                                   "Variant": tex_escape(f"base ({v.arch}, {regime_label(v.regime)})" if v.is_base
                                                         else v.label)}
            vals, deltas, n = {}, {}, 0
            for spec in specs:
                per = spec.per_seed(m, ["arch", "regime", "norm"])
                try:
                    x = per.xs((v.arch, v.regime, norm), level=("arch", "regime", "norm"))
                    b = per.xs((vs[0].arch, vs[0].regime, norm), level=("arch", "regime", "norm"))
                except KeyError:
                    vals[spec.header], deltas[spec.header] = "--", "--"
                    continue
                n = max(n, len(x))
                vals[spec.header] = fmt_mean_std(x.mean(), x.std(ddof=1) if len(x) > 1 else None, spec.percent)
                diff = (x - b).dropna()
                delta = fmt_signed(diff.mean(), spec.percent) if len(diff) else "--"
                deltas[spec.header] = "" if v.is_base else delta
            if n == 0:
                continue
            row["$n$"] = str(n)
            row.update(vals)
            row.update({"$\\Delta$ " + tex_escape(k.replace("(%)", "(pts)")): d for k, d in deltas.items()})
            row["_group"] = norm
            rows.append(row)
    if not rows:
        return empty_table("no results for the base cell or its variants")
    out = pd.DataFrame(rows)
    groups = list(out["_group"])
    out = blank_repeats(out.drop(columns=["_group"]), ["Norm"])
    out["_group"] = groups
    return grouped(out, "ll" + "r" * (out.shape[1] - 3), "_group")


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    vs = variants(view)
    if not vs:
        return {"base": "", "variants": []}
    specs = [Metric("ligs", label="LIGS"), Metric("clean_acc", label="Clean (%)"),
             Metric("robust_acc", view.head.attack, view.head.eps, label="Robust (%)")]
    return {"tables": {"main": write_table(f"main_{KEY}", factors_table(frames["metrics"], view, specs))},
            "base": tex_escape(f"({vs[0].arch}, {regime_label(vs[0].regime)})"),
            "variants": [tex_escape(v.label) for v in vs[1:]]}
