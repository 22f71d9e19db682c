"""E10's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, cell, level, pair
from ...analysis.labels import (
    attack_label,
    attack_tex,
    eps_axis_label,
    fmt_num,
    fmt_pct,
    fmt_points,
    norm_label,
    regime_label,
    sort_norms,
    sort_regimes,
    tex_escape,
)
from ...analysis.latex import empty_table, simple_table
from ...analysis.metric import CLEAN, Metric
from ...analysis.plotting import Figure
from ...analysis.preconditions import Learned
from ...analysis.selection import nseeds_text, seed_stats, select
from ...analysis.study_view import StudyView
from ...analysis.transfer_claim import Transfer
from ...analysis.verdicts import tol_text
from ...regimes import is_fgsm_training, role
from . import KEY, TAG, TITLE  # noqa: F401 (the report driver reads them here)
from .published import G_EPS, PUBLISHED, g_text, g_value  # noqa: F401 (PUBLISHED: read by the report)

TABLES = ("metrics", "transfer")
#: every model a claim compares learned its task: clean accuracy above chance + LEARNED_MARGIN (the claims step adds it,
#: with room to move: analysis.preconditions.attach_shared)
LEARNED = Learned(CLEAN)
#: "FGSM fools the model": it errs on most FGSM examples, error above one half ([G] reports 99.9% for the softmax
#: classifier and 89.4% for maxout, both far above; a majority is the least "fools" can mean), for both models
LINEAR_ERROR_LEVEL = MAXOUT_ERROR_LEVEL = 0.5
#: "high confidence" on misclassified examples: the wrong class gets more than half the probability, i.e. more than
#: all other classes together ([G]: 79.3% and 97.6%)
CONFIDENCE_LEVEL = 0.5
#: FGSM training "lowers the error by more than half": Δ = error(trained) − RATIO·error(standard) < 0
RATIO = 0.5
#: FGSM training keeps the clean error: a rise of at most 1 point ([G]: 0.94% → 0.84%)
TOL_KEEP = 0.01

#: table quantities: (name, published metric, error) → our metric at the FGSM attack
QUANTITIES = [("clean_error", "Clean error (%)"), ("fgsm_error", "FGSM error (%)"),
              ("wrong_confidence", "Confidence on wrong adv. (%)")]
def fgsm_metric(view: StudyView) -> Metric | None:
    """The FGSM error E10 reads: the headline when it is an FGSM attack, else the config's FGSM attack (L∞ first, then
    by name) at its largest ε."""
    attacks = (view.config.get("evaluation") or {}).get("attacks") or {}
    spec = attacks.get(view.head.attack) or {}
    if spec.get("type") == "fgsm":
        return Metric("robust_acc", view.head.attack, float(view.head.eps), error=True)
    names = sorted((n for n, s in attacks.items() if s.get("type") == "fgsm"),
                   key=lambda n: (attacks[n].get("norm") != "linf", n))
    if not names:
        return None
    eps = attacks[names[0]].get("eps")
    return Metric("robust_acc", names[0], float(max(eps) if isinstance(eps, list) else eps), error=True)


def kinds(view: StudyView) -> dict[str, str]:
    """Arch → kind (linear: [G]'s shallow softmax; maxout)."""
    return {a: str(view.arch_config(a).get("kind", a)) for a in view.archs}


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    std, fg = view.std, fgsm_metric(view)
    if std is None:
        return out
    fregs = [r for r in view.regimes if r != std and is_fgsm_training(view.regime_config(r))]
    arch_kind = kinds(view)
    tgt = view.transfer.get("targets")
    for ds in view.datasets:
        dsfx = f"@{ds}" if len(view.datasets) > 1 else ""
        for arch, kind in arch_kind.items():
            if kind not in ("linear", "maxout"):
                continue
            label = kind if list(arch_kind.values()).count(kind) == 1 else arch
            shown, named = ("shallow softmax" if kind == "linear" else "maxout"), (f" ({arch})" if arch != kind else "")
            for norm in view.norms:
                sfx = (f"-{norm}" if len(view.norms) > 1 else "") + dsfx
                base = cell(ds, arch, norm, std)
                if fg is not None:
                    thr = LINEAR_ERROR_LEVEL if kind == "linear" else MAXOUT_ERROR_LEVEL
                    out.append(level(f"{TAG}-{label}-fgsm-error{sfx}", KEY, f"FGSM fools the {shown} model{named}: "
                                     f"{fg.text} above {fmt_num(thr * 100)}%", fg, base, thr,
                                     f"{g_text(kind, 'standard', 'fgsm_error')} error"))
                    conf = Metric("adv_wrong_confidence", fg.attack, fg.eps)
                    out.append(level(f"{TAG}-{label}-confidence{sfx}", KEY, f"Misclassified FGSM examples still get "
                                     f"high confidence on the {shown} model{named}: mean max-softmax above "
                                     f"{fmt_num(CONFIDENCE_LEVEL * 100)}%", conf, base, CONFIDENCE_LEVEL,
                                     f"mean confidence {g_text(kind, 'standard', 'wrong_confidence')}"))
                if kind != "maxout":
                    continue
                for f in fregs:
                    rs, t = (f"-{f}" if len(fregs) > 1 else ""), cell(ds, arch, norm, f)
                    if fg is not None:
                        out.append(pair(f"{TAG}-{label}-fgsm-halves{rs}{sfx}", KEY, f"FGSM adversarial training ({f}) "
                                        f"lowers the {shown} model's FGSM error by more than half", fg, t, base,
                                        "decrease", scale=RATIO, paper=f"{g_text(kind, 'standard', 'fgsm_error')} → "
                                        f"{g_text(kind, 'weighted', 'fgsm_error')}"))
                    out.append(pair(f"{TAG}-{label}-clean-error{rs}{sfx}", KEY, f"FGSM adversarial training ({f}) does "
                                    f"not raise the {shown} model's clean error by more than "
                                    f"{tol_text('clean_error', TOL_KEEP)}", Metric("clean_acc", error=True), t, base,
                                    "decrease_or_keep", TOL_KEEP, paper=f"{g_text(kind, 'standard', 'clean_error')} → "
                                    f"{g_text(kind, 'weighted', 'clean_error')}"))
                    if tgt is None or {std, f} <= set(tgt):
                        side = {"source_arch": arch, "source_norm": norm, "source_final": True, "target_arch": arch,
                                "target_norm": norm}
                        out.append(Transfer(
                            id=f"{TAG}-{label}-transfer-asym{rs}{sfx}", study=KEY, metric="error_rate",
                            direction="increase", text=f"Examples from the adversarially trained {shown} model ({f}) "
                            f"fool the original more than the reverse (transfer error rate)",
                            delta=f"error rate of {f} → {std} − error rate of {std} → {f} ({arch}, {norm_label(norm)}) "
                                  f"per seed",
                            treat={**side, "source_regime": f, "target_regime": std},
                            base={**side, "source_regime": std, "target_regime": f}, dataset=ds, shared=False,
                            value="error_rate", paper=f"{g_text(kind, 'weighted', 'transfer_error', 'standard')} vs "
                                                      f"{g_text(kind, 'standard', 'transfer_error', 'weighted')}"))
    return out


def fail_reason(row: pd.Series) -> str:
    return ("[G]'s numbers are for MNIST at ε = 0.25 with their maxout network; other data, another ε or a smaller "
            "model change the error rates")


# ------------------------------------------------------------------------------------- our numbers

def frame(view: StudyView, metrics: pd.DataFrame, transfer: pd.DataFrame | None) -> pd.DataFrame:
    """Per model (arch, norm, regime) the clean error, the FGSM error and the mean confidence on misclassified FGSM
    examples at :func:`fgsm_metric`; per pair of one arch and norm the transfer error rate. Percent, with [G]'s
    number and the difference. Columns kind (model | transfer), arch, norm, regime, target_regime, quantity, mean,
    std, n, paper, diff."""
    fg, arch_kind, rows = fgsm_metric(view), kinds(view), []
    specs = {"clean_error": Metric("clean_acc", error=True)}
    if fg is not None:
        specs["fgsm_error"] = fg
        specs["wrong_confidence"] = Metric("adv_wrong_confidence", fg.attack, fg.eps)

    def add(kind, arch, norm, regime, target, quantity, v):
        v = v.dropna() * 100
        if not len(v):
            return
        paper = g_value(arch_kind.get(arch, arch), role(view.regime_config(regime)), quantity,
                        None if target is None else role(view.regime_config(target)))
        rows.append({"kind": kind, "arch": arch, "norm": norm, "regime": regime, "target_regime": target,
                     "quantity": quantity, "mean": float(v.mean()),
                     "std": float(v.std(ddof=1)) if len(v) > 1 else np.nan,
                     "n": len(v), "paper": np.nan if paper is None else paper,
                     "diff": np.nan if paper is None else float(v.mean()) - paper})

    m = view.rows(metrics)
    for arch in view.archs:
        for norm in sort_norms(view.norms):
            for regime in sort_regimes(view.regimes):
                for q, spec in specs.items():
                    add("model", arch, norm, regime, None, q, spec.values(m, cell(None, arch, norm, regime)))
    t = select(transfer, study=KEY, source_final=True) if transfer is not None else None
    if t is not None and len(t):
        t = view.rows(t, prefix="source_")
        t = t[(t["source_arch"] == t["target_arch"]) & (t["source_norm"] == t["target_norm"])
              & (t["source_regime"] != t["target_regime"]) & t["target_regime"].isin(view.regimes)]
        for (arch, norm, src, tgt), p in t.groupby(["source_arch", "source_norm", "source_regime", "target_regime"],
                                                   sort=False):
            add("transfer", arch, norm, src, tgt, "transfer_error", p.groupby("seed")["error_rate"].mean())
    cols = ["kind", "arch", "norm", "regime", "target_regime", "quantity", "mean", "std", "n", "paper", "diff"]
    return pd.DataFrame(rows, columns=cols)


def arch_label(view: StudyView, arch: str) -> str:
    """[G]'s names: a linear arch is the shallow softmax classifier."""
    kind = kinds(view).get(arch)
    if kind == "linear":
        return "softmax" if arch == "softmax" else f"softmax ({arch})"
    return arch if kind in (None, arch) else f"{arch} ({kind})"


# ------------------------------------------------------------------------------------------ figures

def _eps_panel(ax, st: pd.DataFrame, quantity: str, title: str, view: StudyView, fg: Metric, series: dict) -> bool:
    """A panel against ε (FGSM error, ε = 0: clean error; or wrong_confidence), a line per arch × regime × norm."""
    error = quantity == "fgsm_error"
    ax.set_title(title.replace(" (%)", "") + ("\nε = 0: clean error" if error else
                                              "\n(mean max-softmax, misclassified adv.)"))
    ax.set_ylabel(title)
    ax.set_xlabel(eps_axis_label(fg.attack))
    if st.empty:
        plotting.note(ax, f"{plotting.NO_DATA}:\nno {'robust_acc' if error else 'adv_wrong_confidence'}\n"
                          f"for {fg.attack}")
        return False
    stars, colours = False, series["colours"]
    for arch in series["archs"]:
        for regime in series["regimes"]:
            for norm in series["norms"]:
                s = st[(st["arch"] == arch) & (st["regime"] == regime) & (st["norm"] == norm)].sort_values("eps")
                if s.empty:
                    continue
                plotting.band(ax, s["eps"], s["mean"], s["min"], s["max"], colours[arch], scale=100.0, alpha=0.13,
                              ls=plotting.regime_linestyle(regime),
                              marker=plotting.norm_marker(norm) if len(series["norms"]) > 1 else "o",
                              gid=f"{'error' if error else 'confidence'}|{arch}|{regime}|{norm}")
                ref = g_value(series["kind"].get(arch, arch), role(view.regime_config(regime)), quantity)
                if series["on_mnist"] and ref is not None:
                    ax.plot([G_EPS], [ref], linestyle="none", marker="*", markersize=7, markerfacecolor="white",
                            markeredgecolor=colours[arch], zorder=4)
                    stars = True
    ax.set_ylim(-2, 102)
    ax.set_xlim(left=0)
    return stars


def _transfer_panel(ax, transfer: pd.DataFrame, view: StudyView, series: dict) -> bool:
    """Error rates on the other model's FGSM examples (standard → adv. trained and back), bars per arch and norm."""
    ax.set_title("transfer: error on the other\nmodel's FGSM examples")
    ax.set_ylabel("error rate (%)")
    tr = select(transfer, study=KEY, source_final=True)
    tr = view.rows(tr[(tr["source_arch"] == tr["target_arch"]) & (tr["source_norm"] == tr["target_norm"])
                      & tr["error_rate"].notna()], "source_")
    tr = tr[(tr["source_regime"] == view.std) != (tr["target_regime"] == view.std)]
    if tr.empty:
        plotting.note(ax, f"{plotting.NO_DATA}:\nno transfer error_rate\nin transfer.csv")
        return False
    archs, colours, stars = series["archs"], series["colours"], False
    tr = tr.assign(direction=np.where(tr["source_regime"] == view.std, "standard→adv", "adv→standard"),
                   group=tr["source_arch"] + np.where(tr["source_norm"] == "none", "",
                                                      " " + tr["source_norm"].map(norm_label)))
    st = seed_stats(tr, ["group", "source_arch", "direction"], "error_rate")
    groups = sorted(st["group"].unique(), key=lambda g: (archs.index(g.split(" ")[0]) if g.split(" ")[0] in archs
                                                         else 99, g))
    arch_of = dict(zip(st["group"], st["source_arch"]))
    styles = [{"match": {"direction": "standard→adv"}, "colour": None, "alpha": 0.9},
              {"match": {"direction": "adv→standard"}, "colour": None, "hatch": "////", "alpha": 0.5}]
    plotting.bars(ax, st, "group", groups, styles, scale=100.0, gid="transfer",
                  group_colour=lambda g: colours.get(arch_of.get(g), "0.5"))
    ax.set_xticks(range(len(groups)), groups)
    for gi, g in enumerate(groups):
        for si, (src, tgt) in enumerate([("standard", "weighted"), ("weighted", "standard")]):
            ref = g_value(series["kind"].get(arch_of.get(g)), src, "transfer_error", tgt)
            if series["on_mnist"] and ref is not None:
                ax.plot([gi - 0.2 + 0.4 * si], [ref], linestyle="none", marker="*", markersize=7,
                        markerfacecolor="white", markeredgecolor="0.1", zorder=4)
                stars = True
    ax.set_ylim(0, 105)
    return stars


def _fgsm_legend(fig, series: dict, stars: bool, seeds: str) -> None:
    """Colour per arch, line style per regime, marker per norm (if several), the transfer bars, [G]'s stars."""
    handles = [plotting.line_handle(color=series["colours"][a], marker="o", label=a) for a in series["archs"]]
    handles += [plotting.line_handle(color="0.2", ls=plotting.regime_linestyle(r), label=regime_label(r))
                for r in series["regimes"]]
    if len(series["norms"]) > 1:
        handles += [plotting.line_handle(color="0.2", ls="none", marker=plotting.norm_marker(n), label=norm_label(n))
                    for n in series["norms"]]
    handles += [plotting.patch_handle(facecolor="0.6", edgecolor="0.15", lw=0.5, label="standard → adv. trained"),
                plotting.patch_handle(facecolor="0.85", edgecolor="0.15", lw=0.5, hatch="////",
                                      label="adv. trained → standard")]
    if stars:
        handles.append(plotting.line_handle(ls="none", marker="*", markersize=7, markerfacecolor="white",
                                            markeredgecolor="0.1", label="[G] (MNIST, ε=0.25)"))
    plotting.legend_top(fig, handles, f"line/bar: mean over seeds; band/whisker: min–max ({seeds}); colour: "
                        "architecture", ncol=4)


def fig_fgsm(tables: dict[str, pd.DataFrame], view: StudyView):
    """FGSM error (ε = 0: clean error) and the mean confidence on misclassified FGSM examples against ε per
    arch × regime, and the transfer error rates standard → FGSM-trained and back; [G]'s numbers as stars on MNIST
    (each panel returns whether it drew one)."""
    fg = fgsm_metric(view)
    m = view.rows(tables["metrics"])
    m = m[m["value"].notna()]
    if m.empty or fg is None:
        return plotting.no_data_figure(view.key, "FGSM results", "metrics.csv")
    archs = [a for a in view.archs if a in set(m["arch"])]
    series = {"archs": archs, "regimes": [r for r in view.regimes if r in set(m["regime"])],
              "norms": sort_norms(m["norm"]), "colours": plotting.series_colours(archs), "kind": kinds(view),
              "on_mnist": str(((view.config.get("datasets") or {}).get(view.datasets[0]) or {}).get("kind", ""))
              == "mnist"}
    keys = ["arch", "regime", "norm", "eps"]
    rob = m[(m["metric"] == "robust_acc") & (m["attack"] == fg.attack)]
    clean = m[m["metric"] == "clean_acc"]
    err = pd.concat([seed_stats(clean.assign(value=1.0 - clean["value"], eps=0.0), keys),
                     seed_stats(rob.assign(value=1.0 - rob["value"]), keys)], ignore_index=True)
    conf = seed_stats(m[(m["metric"] == "adv_wrong_confidence") & (m["attack"] == fg.attack)], keys)
    fig, axes = plotting.subplots(1, 3, figsize=(plotting.FULL_WIDTH, 2.45),
                                  gridspec_kw={"width_ratios": [1.25, 1.25, 1.0]})
    stars = _eps_panel(axes[0, 0], err.iloc[0:0] if rob.empty else err, "fgsm_error",
                       f"{attack_label(fg.attack)} error (%)", view, fg, series)
    stars |= _eps_panel(axes[0, 1], conf, "wrong_confidence", "confidence on errors (%)", view, fg, series)
    stars |= _transfer_panel(axes[0, 2], tables["transfer"], view, series)
    _fgsm_legend(fig, series, stars, nseeds_text(m))
    fig.tight_layout(w_pad=0.8)
    return fig


FIGURES = {
    "fgsm": Figure(fig_fgsm, ("metrics", "transfer"),
                   "**E10: FGSM ([G]).** FGSM error against ε (ε = 0: clean error) of the shallow softmax and the "
                   "maxout network, standard and FGSM-trained; the mean confidence on misclassified adversarial "
                   "examples; and the transfer error rates between the standard and the FGSM-trained model. Mean over "
                   "seeds; min–max as bands or whiskers."),
}


# ------------------------------------------------------------------------------------------ report

def models_table(f: pd.DataFrame, view: StudyView) -> str:
    """Per model and quantity: ours (mean ± std), [G] and the difference in points."""
    f = f[f["kind"] == "model"]
    if f.empty:
        return empty_table("no results for the E10 models")
    qs = [(q, lab) for q, lab in QUANTITIES if q in set(f["quantity"])]
    multi = f["norm"].nunique() > 1
    nlab = 3 if multi else 2
    lines = [r"\begin{tabular}{" + "l" * nlab + "r" + "rrr" * len(qs) + "}", r"\toprule",
             " & " * nlab + "& " + " & ".join(rf"\multicolumn{{3}}{{c}}{{{tex_escape(lab)}}}" for _, lab in qs)
             + r" \\",
             " ".join(rf"\cmidrule(lr){{{nlab + 2 + 3 * i}-{nlab + 4 + 3 * i}}}" for i in range(len(qs))),
             "Model & " + ("Norm & " if multi else "") + "Regime & $n$ & "
             + " & ".join(["ours & [G] & $\\Delta$"] * len(qs)) + r" \\", r"\midrule"]
    prev = None
    for (arch, norm, regime), g in f.groupby(["arch", "norm", "regime"], sort=False):
        if prev is not None and arch != prev:
            lines.append(r"\midrule")
        cells = [tex_escape(arch_label(view, arch)) if arch != prev else ""]
        cells += [tex_escape(norm_label(norm))] if multi else []
        prev = arch
        cells += [tex_escape(regime_label(regime)), str(int(g["n"].max()))]
        for q, _ in qs:
            r = g[g["quantity"] == q]
            d = 2 if q == "clean_error" else 1
            cells += ([fmt_pct(r["mean"].iloc[0], r["std"].iloc[0], d), fmt_pct(r["paper"].iloc[0], None, d),
                       fmt_points(r["diff"].iloc[0], d)] if len(r) else ["--", "--", "--"])
        lines.append(" & ".join(cells) + r" \\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


def transfer_table(f: pd.DataFrame, view: StudyView) -> str:
    """Per arch and direction the error rate on the target, [G]'s and the difference."""
    f = f[f["kind"] == "transfer"]
    multi = f["norm"].nunique() > 1
    rows, prev = [], None
    for _, r in f.iterrows():
        cells = [tex_escape(arch_label(view, r["arch"])) if r["arch"] != prev else ""]
        prev = r["arch"]
        cells += ([tex_escape(norm_label(r["norm"]))] if multi else [])
        src, tgt = tex_escape(regime_label(r["regime"])), tex_escape(regime_label(r["target_regime"]))
        cells += [f"{src} $\\rightarrow$ {tgt}",
                  str(int(r["n"])), fmt_pct(r["mean"], r["std"]), fmt_pct(r["paper"]), fmt_points(r["diff"])]
        rows.append(cells)
    header = ["Model"] + (["Norm"] if multi else []) + [r"Source $\rightarrow$ target", "$n$",
                                                        "Error on target (\\%)", "[G]", r"$\Delta$"]
    return simple_table(header, rows, "l" + ("l" if multi else "") + "lrrrr")


NAMES = {"clean_error": "clean error", "fgsm_error": "FGSM error",
         "wrong_confidence": "confidence on misclassified FGSM examples", "transfer_error": "error on the target"}


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    fg = fgsm_metric(view)
    f = frame(view, frames["metrics"], frames.get("transfer"))
    out: dict[str, Any] = {"tables": {"main": write_table(f"main_{KEY}", models_table(f, view))}}
    if (f["kind"] == "transfer").any():
        out["tables"]["transfer"] = write_table(f"transfer_{KEY}", transfer_table(f, view))
    out["eps"] = (f"$\\varepsilon = {fmt_num(fg.eps, 4)}/255$ (${fmt_num(fg.eps / 255)}$ on the $[0,1]$ scale)"
                  if fg is not None else "--")
    out["eps_is_g"] = fg is not None and bool(np.isclose(fg.eps, G_EPS))
    out["transfer_attack"] = attack_tex(view.transfer_attack or None)  # the attack this study's transfer jobs made
    items = []
    for _, r in f[f["paper"].notna()].iterrows():
        who = f"{arch_label(view, r['arch'])}, {regime_label(r['regime'])}"
        if r["kind"] == "transfer":
            who += f" → {regime_label(r['target_regime'])}"
        d = 2 if r["quantity"] == "clean_error" else 1
        diff = float(r["diff"])
        how = ("the same as [G]" if round(diff, d) == 0 else
               f"{abs(diff):.{d}f} points {'above' if diff > 0 else 'below'} [G]'s {r['paper']:.{d}f}%")
        items.append(tex_escape(f"{who}: {NAMES[r['quantity']]} {r['mean']:.{d}f}%, {how}"))
    out["g_items"] = items
    return out
