"""E9's analysis part: claims, figures, tables, report section (the study itself: __init__.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ...analysis import plotting
from ...analysis.claims import Claim, Measured, no_data
from ...analysis.labels import (
    REGIME_LABEL,
    REGIME_ORDER,
    attack_tex,
    attack_text,
    fmt_mean_std,
    has_ground_truth,
    join_words,
    norm_label,
    order_key,
    regime_label,
    regime_short,
    sort_norms,
    sort_regimes,
    tex_escape,
    tex_number,
)
from ...analysis.latex import blank_repeats, empty_table, grouped, simple_table
from ...analysis.paired import decoded, influence, variance
from ...analysis.plotting import Figure
from ...analysis.preconditions import Precondition, known_features, white_box
from ...analysis.selection import cell_order, nseeds_text, seed_stats, select
from ...analysis.study_view import StudyView
from ...analysis.transfer_claim import SOURCE, TARGET, Transfer
from . import KEY, TAG, TITLE, WHITE_BOX_LEVEL  # noqa: F401 (the report driver reads them here)

TABLES = ("transfer",)
PUBLISHED: list = []  # [B] shows these effects in figures without numbers one could read off precisely


def targets(view: StudyView) -> list[str]:
    """The target regimes of the study's transfer block (default: the standard regime)."""
    return [str(r) for r in view.transfer.get("targets") or []] or ([view.std] if view.std else ["standard"])


def claims(view: StudyView) -> list[Claim]:
    out: list[Claim] = []
    std, tgt = view.std, targets(view)
    epochs = view.transfer.get("source_epochs") or []
    first = 0
    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)
            a = {"source_arch": arch}
            if std is not None and {"none", "bn"} <= set(view.norms):
                out.append(Transfer(
                    id=f"{TAG}-transfer{sfx}", study=KEY, metric="success_rate", direction="increase",
                    text=f"Sources without BN transfer better than BN sources ({regime_label(std)} sources; mean "
                         f"success rate over shared targets){tsfx}",
                    delta=f"mean success rate of the no-norm source − that of the BN source over the targets both "
                          f"attacked, neither source included ({std} final sources) per seed",
                    treat={**a, "source_norm": "none", "source_regime": std, "source_final": True},
                    base={**a, "source_norm": "bn", "source_regime": std, "source_final": True},
                    dataset=ds, targets=tgt))
            for k in epochs:
                out.append(Transfer(
                    id=f"{TAG}-early-stop{f'-e{k}' if len(epochs) > 1 else ''}{sfx}", study=KEY, metric="success_rate",
                    direction="increase",
                    text=f"Early stopping helps transfer: epoch-{k} sources have a higher mean success rate than the "
                         f"final model of the same cell (averaged over the source cells){tsfx}",
                    delta=f"mean success rate of the epoch-{k} source − that of the same cell's final model over the "
                          f"shared targets (the cell itself excluded), averaged over the source cells, per seed",
                    treat={**a, "source_final": False, "source_epoch": int(k), "source_regime": tgt},
                    base={**a, "source_final": True, "source_regime": tgt}, dataset=ds, group=tuple(SOURCE),
                    targets=tgt))
            others = [r for r in sort_regimes(view.regimes) if r != std]
            for r in others if std is not None else []:
                out.append(Transfer(
                    id=f"{TAG}-robust-source{f'-{r}' if len(others) > 1 else ''}{sfx}", study=KEY,
                    metric="success_rate", direction="increase",
                    text=f"A slightly robust source ({regime_label(r)}) transfers better than a standard source of the "
                         f"same norm (mean success rate, averaged over norms){tsfx}",
                    delta=f"mean success rate of the {r} source − that of the {std} source of the same norm over the "
                          f"shared targets, averaged over the norms, per seed",
                    treat={**a, "source_regime": r, "source_final": True},
                    base={**a, "source_regime": std, "source_final": True}, dataset=ds,
                    group=("source_arch", "source_norm"), targets=tgt))
            if std is not None and has_ground_truth(view.config, ds):  # no claim that can only be NOT TESTABLE
                out.append(RfNrf(id=f"{TAG}-rf-nrf{sfx}", study=KEY, metric="success_rate", direction="increase",
                                 text=f"Robust features transfer better than non-robust features: the RF part of the "
                                      f"examples of {regime_label(std)} sources fools the targets more often than "
                                      f"their NRF part (the same L2 norm){tsfx}",
                                 delta="mean over (source, target) of the success rate of the examples' perturbation "
                                       "projected onto the robust features' span − onto the non-robust features' "
                                       "span, each at the full perturbation's L2 norm, per seed",
                                 dataset=ds, source={**a, "source_regime": std, "source_final": True}, targets=tgt))
                out[-1].requires.append(known_features(view.config, ds))
            for c in out[first:]:
                c.requires += white_box_of(view, c, ds, arch)
            first = len(out)
    return out


def white_box_of(view: StudyView, claim: Claim, ds: str, arch: str) -> list[Precondition]:
    """Every source a transfer claim compares fools itself at the transfer attack (E9's WHITE_BOX_LEVEL); a cell the
    study excludes is no source, so no condition of the claim."""
    out, trained = [], {(m.arch, m.norm, m.regime) for m in view.models if m.dataset == ds}
    for side in ("treat", "base", "source"):
        sel = getattr(claim, side, None)
        if not sel:
            continue
        regimes = sel["source_regime"] if isinstance(sel["source_regime"], list) else [sel["source_regime"]]
        for regime in regimes:
            for norm in sort_norms(view.norms):
                src = {"dataset": ds, "source_arch": arch, "source_norm": norm, "source_regime": regime,
                       "source_final": sel["source_final"]}
                if "source_epoch" in sel:
                    src["source_epoch"] = sel["source_epoch"]
                if ("source_norm" in sel and sel["source_norm"] != norm) or (arch, norm, regime) not in trained:
                    continue
                at = f" (epoch {sel['source_epoch']})" if "source_epoch" in sel else ""
                out.append(white_box(KEY, src, WHITE_BOX_LEVEL, f"{arch}/{norm_label(norm)}/{regime}{at}"))
    return out


@dataclass(kw_only=True)
class RfNrf(Claim):
    """Δ_s = mean over the study's (source, target) rows of seed s of rf_success_rate − nrf_success_rate (transfer.csv;
    the transfer job's "rf_nrf" measurement), with the paired per-image variance over the shared images."""

    dataset: str
    source: dict[str, Any]
    targets: list[str]
    tables: ClassVar[tuple[str, ...]] = ("transfer",)

    def measure(self, frames: dict) -> Measured:
        t = frames.get("transfer")
        if t is None or "rf_success_rate" not in t.columns or t["rf_success_rate"].isna().all():
            return no_data("not measured: the data has no known feature templates (only the generated data has)")
        t = select(t, study=self.study, dataset=self.dataset, target_regime=self.targets, **self.source)
        t = t[t["rf_success_rate"].notna() & t["nrf_success_rate"].notna()]
        t = t[~np.logical_and.reduce([t[s] == t[g] for s, g in zip(SOURCE, TARGET)])]  # a source's own cell: no
        if t.empty:
            return no_data("no transfer rows with RF and NRF parts")
        diff, var = {}, {}
        for seed, g in t.groupby("seed"):
            diff[seed] = float((g["rf_success_rate"] - g["nrf_success_rate"]).mean())
            parts = [influence(decoded(r[c], r["n_total"])) for _, r in g.iterrows()
                     for c in ("rf_images", "nrf_images")]
            var[seed] = variance(parts, [w / len(g) for _ in range(len(g)) for w in (1.0, -1.0)])
        rf = t.groupby("seed")["rf_success_rate"].mean()
        nrf = t.groupby("seed")["nrf_success_rate"].mean()
        return Measured(pd.Series(diff), rf, nrf, var=pd.Series(var, dtype=float))


def fail_reason(row: pd.Series) -> str:
    cid = str(row["id"])
    if "robust-source" in cid:
        return ("a source trained adversarially at the full training ε learns mostly robust features and its examples "
                "transfer less to standard targets; [B]'s slightly robust surrogates use a small ε, so the regime's ε "
                "decides the sign")
    if "early" in cid:
        return ("whether an early checkpoint transfers better depends on how far it has moved from the robust-feature "
                "phase; with short schedules epoch 1 may already be close to the final model")
    return ("when no model is vulnerable beyond its own source, every transfer rate is near zero and the difference "
            "between sources carries no information")


# ------------------------------------------------------------------------------------- aggregation

def study_rows(transfer: pd.DataFrame, view: StudyView) -> pd.DataFrame:
    """This study's transfer rows on its cells, targets of the transfer block's regimes, own cell left out."""
    t = select(transfer, study=KEY)
    t = view.rows(t, prefix="source_")
    t = t[t["target_regime"].isin(targets(view)) & t["target_norm"].isin(view.norms)
          & t["target_arch"].isin(view.archs) & t["success_rate"].notna()]
    own = np.logical_and.reduce([t[s] == t[g] for s, g in zip(SOURCE, TARGET)]) if len(t) else []
    return t[~pd.Series(own, index=t.index, dtype=bool)] if len(t) else t


def regime_name(view: StudyView, regime: str) -> str:
    """A regime's label, with its training attack's ε where it has one: 'PGD-L∞ AT ε=1/255', 'standard'."""
    desc = attack_text(view.regime_config(regime).get("attack"))
    eps = desc.split(" ", 1)[1] if " ε=" in desc else ""
    if regime in REGIME_LABEL:
        return regime_label(regime) + (f" {eps}" if eps else "")
    return f"{desc.split(' ε=')[0]} AT {eps}".strip() if desc else str(regime)


def kind_of(view: StudyView, regime: str, final: bool, epoch: float) -> tuple[str, tuple]:
    """(label, sort key) of a kind of source: finished of a target regime, early-stopped (epoch k), another regime."""
    tgt = targets(view)
    name, ro = regime_name(view, regime), order_key(REGIME_ORDER)(regime)[0]
    e = int(epoch) if epoch is not None and np.isfinite(float(epoch)) else -1
    if final:
        return f"{name} (final)", (0 if regime in tgt else 2, ro, 0)
    if regime in tgt and len(tgt) == 1:
        return f"epoch {e}", (1, ro, e)
    return f"{name}, epoch {e}", (1 if regime in tgt else 3, ro, e)


def source_kinds(transfer: pd.DataFrame, view: StudyView) -> pd.DataFrame:
    """Per (kind, source arch, source norm, seed) the mean success rate over the targets: first per source over
    its targets (:func:`study_rows`), then over the sources of a kind. Columns kind, order, source_arch,
    source_norm, seed, success_rate."""
    t = study_rows(transfer, view)
    cols = ["kind", "order", "source_arch", "source_norm", "seed", "success_rate"]
    if t.empty:
        return pd.DataFrame(columns=cols)
    kinds = [kind_of(view, r, f, e) for r, f, e in zip(t["source_regime"], t["source_final"], t["source_epoch"])]
    t = t.assign(kind=[k for k, _ in kinds], order=[o for _, o in kinds])
    per_source = t.groupby(["kind", "order", *SOURCE, "source_final", "source_epoch", "seed"], as_index=False,
                           sort=False, dropna=False)["success_rate"].mean()
    out = per_source.groupby(["kind", "order", "source_arch", "source_norm", "seed"], as_index=False,
                             sort=False)["success_rate"].mean()
    return out.sort_values("order", kind="stable").reset_index(drop=True)[cols]


def matrix(transfer: pd.DataFrame, view: StudyView) -> pd.DataFrame:
    """Final sources × targets: mean, std, n over seeds of the success rate (this study's rows, its cells)."""
    t = view.rows(select(transfer, study=KEY, source_final=True), prefix="source_")
    t = t[t["target_norm"].isin(view.norms) & t["target_arch"].isin(view.archs)]
    return seed_stats(t, SOURCE + TARGET, value="success_rate")


# ------------------------------------------------------------------------------------------ figures

def fig_transfer_heatmap(tables: dict[str, pd.DataFrame], view: StudyView):
    """Final source (rows) × target (columns) transfer success rate (%), mean over seeds, annotated."""
    mat = matrix(tables["transfer"], view)
    if mat.empty:
        return plotting.no_data_figure(view.key, "transfer results", "transfer.csv")
    multi_arch = len(set(mat["source_arch"]) | set(mat["target_arch"])) > 1

    def name(a, r, n):
        s = f"{norm_label(n)} ({regime_short(r)})"
        return f"{a}/{s}" if multi_arch else s

    src = [tuple(r) for r in cell_order(mat[["source_arch", "source_regime", "source_norm"]].drop_duplicates(),
                                        ["source_arch", "source_regime", "source_norm"]).itertuples(index=False)]
    tgt = [tuple(r) for r in cell_order(mat[["target_arch", "target_regime", "target_norm"]].drop_duplicates(),
                                        ["target_arch", "target_regime", "target_norm"]).itertuples(index=False)]
    look = {(r.source_arch, r.source_regime, r.source_norm, r.target_arch, r.target_regime, r.target_norm): r.mean
            for r in mat.itertuples(index=False)}
    grid = np.array([[look.get(s + g, np.nan) * 100 for g in tgt] for s in src])
    fig, axes = plotting.subplots(figsize=(min(plotting.FULL_WIDTH, 1.9 + 0.62 * len(tgt)), 0.9 + 0.27 * len(src)))
    ax = axes[0, 0]
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=plotting.colormap("viridis", bad="0.88"), vmin=0, vmax=100,
                   aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = grid[i, j]
            ax.text(j, i, "–" if not np.isfinite(v) else f"{v:.0f}", ha="center", va="center", fontsize=6.5,
                    color="0.3" if not np.isfinite(v) else ("black" if v > 60 else "white"))
    ax.set_xticks(range(len(tgt)), [name(*k) for k in tgt], rotation=35, ha="right")
    ax.set_yticks(range(len(src)), [name(*k) for k in src])
    ax.set_xlabel("target model (norm, training regime)")
    ax.set_ylabel("source model")
    ax.grid(False)
    for s in ax.spines.values():
        s.set_visible(False)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label(f"success rate (%), mean over {nseeds_text(select(tables['transfer'], study=KEY))}")
    cb.outline.set_linewidth(0.4)
    fig.tight_layout()
    return fig


def fig_transfer_sources(tables: dict[str, pd.DataFrame], view: StudyView):
    """Mean transfer success over the targets per kind of source (finished, early-stopped 'epoch k', slightly
    robust), bars per source norm; a source's own cell excluded (:func:`source_kinds`)."""
    per = source_kinds(tables["transfer"], view)
    if per.empty:
        return plotting.no_data_figure(view.key, "transfer results", "transfer.csv")
    kinds = list(dict.fromkeys(per["kind"]))
    archs, norms = sorted(per["source_arch"].unique()), sort_norms(per["source_norm"])
    width = min(plotting.FULL_WIDTH, 1.8 + 0.95 * len(kinds) * len(archs))
    fig, axes = plotting.subplots(1, len(archs), figsize=(width, 2.4), sharey=True)
    for j, arch in enumerate(archs):
        ax = axes[0, j]
        st = seed_stats(per[per["source_arch"] == arch], ["kind", "source_norm"], "success_rate")
        plotting.bars(ax, st, "kind", kinds, [{"match": {"source_norm": n}, "colour": plotting.norm_colour(n)}
                                              for n in norms], scale=100.0, gid=f"success|{arch}")
        ax.set_xticks(range(len(kinds)), [k.replace(" ε=", "\nε=").replace(" (final)", "\n(final)")
                                          .replace(", epoch", "\nepoch") for k in kinds])
        ax.set_xlabel("source model" + (f" ({arch})" if len(archs) > 1 else ""))
        if j == 0:
            ax.set_ylabel(f"transfer success rate (%)\nmean over {'/'.join(targets(view))} targets")
        plotting.pct_ylim(ax)
    plotting.legend_top(fig, plotting.norm_patches(norms), f"{plotting.BAR_NOTE} ({nseeds_text(per)}); colour: source "
                        "norm; own cell excluded")
    fig.tight_layout()
    return fig


FIGURES = {
    "transfer_heatmap": Figure(fig_transfer_heatmap, ("transfer",),
                               "**E9: transferability.** Transfer success rate (%) of adversarial examples from each "
                               "finished source model (rows) to each target model (columns), mean over seeds; grey: "
                               "not evaluated (e.g. a model attacking itself)."),
    "transfer_sources": Figure(fig_transfer_sources, ("transfer",),
                               "**E9: kinds of source.** Mean transfer success rate (%) over the targets for "
                               "finished, early-stopped (epoch k) and slightly robust sources, bars per source norm (a "
                               "source's own cell excluded). Bar: mean over seeds; whisker: min–max."),
}


# ------------------------------------------------------------------------------------------ report

def matrix_table(transfer: pd.DataFrame, view: StudyView) -> str:
    """Success (%) per final source (rows) and target (columns), mean over seeds, and the mean over the targets
    (self excluded) as mean ± std over seeds."""
    mat = matrix(transfer, view)
    if mat.empty:
        return empty_table("no transfer results for this study")
    multi_arch = len(set(mat["source_arch"]) | set(mat["target_arch"])) > 1
    multi_treg = mat["target_regime"].nunique() > 1
    tcols = [tuple(r) for r in cell_order(mat[TARGET].drop_duplicates(), TARGET).itertuples(index=False)]
    per = study_rows(select(transfer, source_final=True), view)
    per = per.groupby(SOURCE + ["seed"], as_index=False)["success_rate"].mean()
    src_stats = seed_stats(per, SOURCE, value="success_rate")
    rows = []
    for sa, sr, sn in cell_order(mat[["source_arch", "source_regime", "source_norm"]].drop_duplicates(),
                                 ["source_arch", "source_regime", "source_norm"]).itertuples(index=False):
        row: dict[str, str] = {"Source arch": tex_escape(sa)} if multi_arch else {}
        row.update({"Source regime": tex_escape(regime_label(sr)), "Source norm": tex_escape(norm_label(sn))})
        for ta, tn, tr in tcols:
            hit = mat[(mat[SOURCE] == [sa, sn, sr]).all(axis=1) & (mat[TARGET] == [ta, tn, tr]).all(axis=1)]
            label = norm_label(tn) + (f" ({regime_short(tr)})" if multi_treg else "")
            row[tex_escape(f"{ta}/{label}" if multi_arch else label)] = (fmt_mean_std(hit["mean"].iloc[0], None, True)
                                                                        if len(hit) else "--")
        s = src_stats[(src_stats[SOURCE] == [sa, sn, sr]).all(axis=1)]
        row["Mean (%)"] = fmt_mean_std(s["mean"].iloc[0], s["std"].iloc[0], True) if len(s) else "--"
        row["_group"] = f"{sa}/{sr}"
        rows.append(row)
    out = pd.DataFrame(rows)
    labels = [c for c in ("Source arch", "Source regime") if c in out.columns]
    groups = list(out["_group"])
    out = blank_repeats(out.drop(columns=["_group"]), labels)
    out["_group"] = groups
    return grouped(out, "l" * (len(labels) + 1) + "r" * (len(tcols) + 1), "_group")


def kinds_table(transfer: pd.DataFrame, view: StudyView) -> str:
    """Rows: kind of source; columns: source norm (mean ± std over seeds of the mean success rate, %); $n$."""
    st = seed_stats(source_kinds(transfer, view), ["kind", "source_norm"], "success_rate")
    if st.empty:
        return empty_table("no transfer results for this study")
    norms = sort_norms(st["source_norm"])
    rows = []
    for k in dict.fromkeys(st["kind"]):
        f = st[st["kind"] == k]
        cells = [fmt_mean_std(f[f["source_norm"] == n]["mean"].iloc[0], f[f["source_norm"] == n]["std"].iloc[0], True)
                 if (f["source_norm"] == n).any() else "--" for n in norms]
        rows.append([tex_escape(k)] + cells + [str(int(f["n"].max()))])
    return simple_table(["Source"] + [tex_escape(norm_label(n)) for n in norms] + ["$n$"], rows,
                        "l" + "r" * len(norms) + "r")


def section(view: StudyView, frames: dict[str, Any], write_table) -> dict[str, Any]:
    attack = attack_tex(view.transfer_attack or None)  # the attack this study's transfer jobs made
    transfer = frames.get("transfer")
    if transfer is None:
        return {"transfer_attack": attack}
    t = view.rows(select(transfer, study=KEY, source_final=True), prefix="source_")
    nn = t["n"].dropna()
    out = {"transfer_attack": attack,
           "tables": {"transfer": write_table(f"transfer_{KEY}", matrix_table(transfer, view))},
           "n_pairs": int(len(t[SOURCE + TARGET].drop_duplicates())), "n_seeds": int(t["seed"].nunique()),
           "n_images": (f"{int(nn.min())}--{int(nn.max())}" if len(nn) and nn.min() != nn.max()
                        else (str(int(nn.iloc[0])) if len(nn) else "--")),
           "targets": join_words([tex_escape(regime_label(r)) for r in targets(view)]),
           "source_epochs": join_words([tex_number(e) for e in view.transfer.get("source_epochs") or []])}
    if not source_kinds(transfer, view).empty:
        out["tables"]["sources"] = write_table(f"sources_{KEY}", kinds_table(transfer, view))
    return out

