"""E3's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, cell, level, pair
from ...analysis.labels import (
    DERIVED_NAMES,
    attack_eps_label,
    dataset_label,
    dataset_method,
    fmt_paper,
    norm_label,
    sort_norms,
    tex_escape,
)
from ...analysis.latex import stats_table
from ...analysis.metric import CLEAN, LIGS, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned, carries, carries_level
from ...analysis.reproduction import Published, find
from ...analysis.selection import nseeds_text, seed_stats
from ...analysis.study_view import StudyView
from . import CARRIES_LEVEL, KEY, READER_MARGIN, TAG, TITLE  # noqa: F401 (the report driver reads them here)

TABLES = ("metrics",)
METHODS = ["robust", "nonrobust", "rand", "det"]  # the derived datasets of this study, in the paper's order
#: [B]'s Fig. 4 robust accuracy is PGD-L2 at this ε (the table shows ours at it when evaluated)
B_L2_EPS = 0.25
#: "fails to learn D_rand": real-test clean accuracy below twice chance (0.2 with 10 classes; [B] Fig. 4: 5%)
FAIL_LEVEL = 0.2
#: "learns from D_NR": real-test clean accuracy above one half (five times chance; Ilyas et al.: 88%)
LEARNS_LEVEL = 0.5
#: "near-zero robust accuracy": below chance with 10 classes (Ilyas et al.: 0%)
NEAR_ZERO = 0.1

_PRESET = "paper-cifar10 with e3_disentangled"
TRAIN_ACC = Metric("train_acc")
#: every model a claim compares learned the derived set it was trained on: accuracy on it above chance +
#: LEARNED_MARGIN (the claims step adds it, with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(TRAIN_ACC, "the derived set it was trained on")
#: what each kind of derived set is made to carry (its label's feature), in words
INTENDED = {"robust": "the label's robust feature", "nonrobust": "the label's non-robust feature",
            "rand": "the new label's non-robust feature", "det": "the new label's non-robust feature"}


def _fig4(method: str, norm: str, clean: float, robust: float, ligs: float) -> list[Published]:
    kw = dict(norm=norm, dataset_method=method, arch_blocks=(2, 2, 2, 2), preset=_PRESET)
    setting, who = f"ResNet-18 trained on {DERIVED_NAMES[method]} (from CIFAR-10)", "BN" if norm == "bn" else "no norm"
    src = "[B] Fig. 4 (fig)"
    return [Published(KEY, src, setting, f"{who}: clean accuracy (%)", clean, metric="clean_acc", **kw),
            Published(KEY, src, setting, f"{who}: PGD-L2 0.25 accuracy (%)", robust, metric="robust_acc",
                      attack=("pgd", "l2"), eps=B_L2_EPS, **kw),
            Published(KEY, src, setting, f"{who}: LIGS", ligs, metric="ligs", **kw)]


def _ilyas(method: str, clean: float, robust: float | None = None) -> list[Published]:
    """Ilyas et al. (2019) Fig. 2 / Table 1: a standard ResNet-50 (with BN) trained on a derived dataset."""
    kw = dict(norm="bn", dataset_method=method, arch_blocks=(3, 4, 6, 3), preset=_PRESET)
    setting, name = "ResNet-50 (BN) trained on datasets derived from CIFAR-10", DERIVED_NAMES[method]
    out = [Published(KEY, "Ilyas et al. 2019", setting, f"{name}: clean accuracy (%)", clean, metric="clean_acc", **kw)]
    if robust is not None:
        out.append(Published(KEY, "Ilyas et al. 2019", setting, f"{name}: PGD-L2 0.25 accuracy (%)", robust,
                             metric="robust_acc", attack=("pgd", "l2"), eps=B_L2_EPS, **kw))
    return out


PUBLISHED = [*_fig4("robust", "none", 81, 50, 0.94), *_fig4("robust", "bn", 84, 45, 0.91),
             *_fig4("rand", "none", 5, 3, 1.0), *_fig4("rand", "bn", 68, 0, 0.31),
             *_ilyas("robust", 84, 48), *_ilyas("nonrobust", 88, 0), *_ilyas("rand", 63), *_ilyas("det", 44)]


def _value(source: str, method: str, norm: str, metric: str) -> float | None:
    p = find(PUBLISHED, source=source, dataset_method=method, norm=norm, metric=metric)
    return p.value if p is not None else None


def _quote(method: str, metric: str) -> str:
    """What the papers give for BN on one derived dataset, e.g. 'BN 84 vs none 81 (fig); Ilyas D_R 84'."""
    parts = []
    bn, none = (find(PUBLISHED, source="[B] Fig. 4 (fig)", dataset_method=method, norm=n, metric=metric)
                for n in ("bn", "none"))
    if bn is not None and none is not None:
        parts.append(f"BN {bn.short()} vs none {none.short()} (fig)")
    il = find(PUBLISHED, source="Ilyas et al. 2019", dataset_method=method, metric=metric)
    if il is not None:
        parts.append(f"Ilyas {DERIVED_NAMES[method]} {il.short()}" + ("" if parts else " (no BN/no-BN split)"))
    return "; ".join(parts)


#: said of a quote when the robust accuracy measured is not the quoted one's (PGD-L2 0.25 not evaluated)
ANALOGUE = " (quoted at PGD-L2 0.25; ours at the headline attack: an analogue)"


def robust_metric(view: StudyView) -> tuple[Metric, bool]:
    """The robust accuracy E3's robust claims measure: PGD-L2 at ε = 0.25, what [B]'s Fig. 4 and Ilyas et al. quote,
    when an evaluation attack measures it (True); else the headline (False: the quote is then an analogue)."""
    for name, spec in ((view.config.get("evaluation") or {}).get("attacks") or {}).items():
        if spec.get("type") == "pgd" and spec.get("norm") == "l2" and any(
                abs(float(e) - B_L2_EPS) < 1e-9 for e in spec.get("eps") or []):
            return Metric("robust_acc", name, B_L2_EPS), True
    return view.head, False


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    if "none" not in view.norms or view.std is None:
        return out
    for ds in view.datasets:
        method = dataset_method(view.config, ds)
        if method not in ("robust", "nonrobust", "rand", "det"):
            continue
        dname = DERIVED_NAMES[method]
        for arch in view.archs:
            sfx, tsfx = (f"@{arch}", f" ({arch})") if len(view.archs) > 1 else ("", "")
            if method == "rand":
                out.append(level(f"{TAG}-drand-none-fails{sfx}", KEY, f"A no-norm model fails to learn {dname}: "
                                 f"clean accuracy on the real test set below {FAIL_LEVEL:.0%}{tsfx}", CLEAN,
                                 cell(ds, arch, "none", view.std), FAIL_LEVEL,
                                 paper=f"none {_value('[B] Fig. 4 (fig)', 'rand', 'none', 'clean_acc'):g}% (fig)",
                                 direction="decrease"))
            for norm in [n for n in sort_norms(view.norms) if n != "none"]:
                nl, bn = norm_label(norm), norm == "bn"
                t, b = cell(ds, arch, norm, view.std), cell(ds, arch, "none", view.std)
                if method == "nonrobust":
                    il = _value("Ilyas et al. 2019", "nonrobust", "bn", "clean_acc")
                    out.append(level(f"{TAG}-dnonrobust-{norm}-clean{sfx}", KEY, f"A {nl} model trained on {dname} "
                                     f"learns: clean accuracy on the real test set above {LEARNS_LEVEL:.0%}{tsfx}",
                                     CLEAN, t, LEARNS_LEVEL, paper=f"Ilyas {il:g}%" if bn else ""))
                    rob, quoted = robust_metric(view)
                    out.append(level(f"{TAG}-dnonrobust-{norm}-robust{sfx}", KEY, f"A {nl} model's {rob.text} is "
                                     f"near zero (below {NEAR_ZERO:.0%}) after training on {dname}{tsfx}", rob,
                                     t, NEAR_ZERO, paper=("Ilyas 0%" + ("" if quoted else ANALOGUE)) if bn else "",
                                     direction="decrease"))
                    continue
                if method == "robust":
                    out.append(pair(f"{TAG}-drobust-{norm}-clean{sfx}", KEY, f"On {dname}, {nl} gives higher clean "
                                    f"accuracy than no norm (real test set){tsfx}", CLEAN, t, b, "increase",
                                    paper=_quote(method, "clean_acc") if bn else ""))
                    rob, quoted = robust_metric(view)
                    out.append(pair(f"{TAG}-drobust-{norm}-robust{sfx}", KEY, f"On {dname}, {nl} gives lower "
                                    f"{rob.text} than no norm{tsfx}", rob, t, b, "decrease",
                                    paper=(_quote(method, "robust_acc") + ("" if quoted else ANALOGUE)) if bn else ""))
                else:
                    out.append(pair(f"{TAG}-d{method}-{norm}-clean{sfx}", KEY, f"{nl} learns the non-robust features "
                                    f"of {dname} that no-norm models cannot: higher clean accuracy on the real test "
                                    f"set than no norm{tsfx}", CLEAN, t, b, "increase",
                                    paper=_quote(method, "clean_acc") if bn else ""))
    for c in out:  # each claim reads one derived set: it must carry its feature, and the models must have learned it
        ds = (c.cell if hasattr(c, "cell") else c.treat)["dataset"]
        at_least = carries_level(view.config, ds, CARRIES_LEVEL, READER_MARGIN)
        c.requires.append(carries(ds, at_least, INTENDED[dataset_method(view.config, ds)]))
    return out


def fail_reason(row: pd.Series) -> str:
    return ("the derived datasets are built from the pipeline's own small models at this scale; their robust and "
            "non-robust features are weaker than in [B]'s CIFAR-10 sets, and short training may not pick them up")


# ------------------------------------------------------------------------------------------ figures

def study_datasets(view: StudyView) -> list[str]:
    """The study's datasets, derived ones in the paper's order (D_R, D_NR, D_rand, D_det), others after."""
    def key(d: str) -> tuple[int, str]:
        m = dataset_method(view.config, d)
        return (METHODS.index(m) if m in METHODS else len(METHODS), d)
    return sorted(view.datasets, key=key)


def fig_disentangled(tables: dict[str, pd.DataFrame], view: StudyView):
    """Per derived dataset (D_R, D_NR, D_rand, D_det), bars per norm (and regime): clean accuracy, headline robust
    accuracy and LIGS, all on the real test set; a row per arch."""
    m = view.rows(tables["metrics"])
    m = m[m["value"].notna()]
    if m.empty:
        return plotting.no_data_figure(view.key, "results on the disentangled datasets", "metrics.csv")
    datasets = [d for d in study_datasets(view) if d in set(m["dataset"])]
    archs = [a for a in view.archs if a in set(m["arch"])]
    norms = sort_norms(m["norm"])
    regimes = [r for r in view.regimes if r in set(m["regime"])]
    head = attack_eps_label(view.head.attack, view.head.eps)
    panels = [(CLEAN, "clean accuracy (%)", 100.0), (view.head, f"robust accuracy (%)\n{head}", 100.0),
              (LIGS, "LIGS (cosine similarity)", 1.0)]
    fig, axes = plotting.subplots(len(archs), 3, figsize=(plotting.FULL_WIDTH, 2.1 * len(archs) + 0.3))
    for i, arch in enumerate(archs):
        for j, (metric, label, scale) in enumerate(panels):
            ax = axes[i, j]
            plotting.panel_labels(ax, label, arch if len(archs) > 1 else None)
            st = seed_stats(metric.rows(m[m["arch"] == arch]), ["dataset", "norm", "regime"])
            if st.empty:
                plotting.note(ax, f"{plotting.NO_DATA}:\nno {metric.text}")
                continue
            plotting.bars(ax, st, "dataset", datasets, plotting.norm_series(norms, regimes), scale=scale,
                          gid=f"{metric.name}|{arch}")
            ax.set_xticks(range(len(datasets)), [_math_name(view, d) for d in datasets])
            plotting.ligs_ylim(ax, st) if metric.name == "ligs" else plotting.pct_ylim(ax)
            ax.set_xlabel("training set (test: real images)")
    handles = plotting.norm_patches(norms) + (plotting.hatch_handles(regimes) if len(regimes) > 1 else [])
    plotting.legend_top(fig, handles, f"{plotting.BAR_NOTE} ({nseeds_text(m)})")
    fig.tight_layout(w_pad=0.8)
    return fig


def _math_name(view: StudyView, d: str) -> str:
    """D_R as matplotlib mathtext ($D_{\\mathrm{R}}$), else the dataset's name."""
    name = dataset_label(view.config, d)
    return rf"$D_{{\mathrm{{{name[2:]}}}}}$" if name.startswith("D_") else name


FIGURES = {
    "disentangled": Figure(fig_disentangled, ("metrics",),
                           "**E3: disentangled datasets.** Models trained on D_R, D_NR, D_rand and D_det (built from "
                           "the pipeline's own models) and evaluated on the real test set: clean accuracy, headline "
                           "robust accuracy and LIGS, bars per norm ([B] Fig. 4). Bar: mean over seeds; whisker: "
                           "min–max."),
}


# ------------------------------------------------------------------------------------------ report

def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    metrics = frames["metrics"]
    specs = [Metric("clean_acc", label="Clean (%)"), view.head]
    l2 = Metric("robust_acc", "pgd_l2", B_L2_EPS, label=f"{attack_eps_label('pgd_l2', B_L2_EPS)} (%)")
    if len(l2.rows(metrics)) and view.head.key != l2.key:
        specs.append(l2)
    specs.append(Metric("ligs", label="LIGS"))

    def extra(row: dict[str, Any]) -> dict[str, str]:
        method, src = dataset_method(view.config, row["dataset"]), "[B] Fig. 4 (fig)"
        return {"[B] clean (%)": fmt_paper(_value(src, method, row["norm"], "clean_acc"), True),
                "[B] PGD-L2 0.25 (%)": fmt_paper(_value(src, method, row["norm"], "robust_acc"), True),
                "[B] LIGS": fmt_paper(_value(src, method, row["norm"], "ligs"), False)}

    table = stats_table(view.rows(metrics), specs, always=("dataset", "norm"), headers={"dataset": "Trained on"},
                        formats={"dataset": lambda d: dataset_label(view.config, d)}, extra=extra,
                        orders={"dataset": study_datasets(view)})
    return {"tables": {"main": write_table(f"main_{KEY}", table)},
            "robust_label": tex_escape(attack_eps_label(view.head.attack, view.head.eps))}
