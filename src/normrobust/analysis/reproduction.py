"""Reproduction against the published numbers, and the report's limitations.

Each study module types the numbers its papers publish once, as :class:`Published` entries (``PUBLISHED``), with
how to find our counterpart in the aggregated tables: the norm, the *role* of the training regime
(:func:`normrobust.regimes.role`: what it does, not its name), the metric, and the attack and ε.
:func:`reproduction_frame` picks, for each entry, the closest cells the run has (same dataset kind and
architecture as the paper first, else an analogue on other data or another architecture, which the table says)
and reports the mean ± std over seeds and the difference ours − published. Numbers about a derived dataset are
matched only to cells trained on a derived dataset of the same ``method``; all other numbers only to cells on
real data. A robust accuracy evaluated at another ε than the paper's is shown at the nearest ε as an analogue.
Entries whose cells the run does not have stay in the table as "not run", naming the preset that runs them.

A number that needs its own comparison says so in its study's module, not here: ``Published.prefer`` (a regime's
config → whether the paper's own training is that one; preferred among otherwise equal candidates) and
``Published.ours`` (a :data:`Reader`: how to read our per-seed values for a candidate cell from the tables, e.g. a
difference between regimes or a transfer rate). Without ``ours`` a number is a metrics.csv metric at an attack and ε.

Units: accuracies, error rates and confidences in percent, LIGS as is. Values marked (fig) were read off
published figures (±2 points).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..regimes import role
from .labels import dataset_method, fmt_num, fmt_signed, metric_is_percent, tex_escape

COLUMNS = ["source", "setting", "quantity", "published", "ours", "ours_std", "n", "diff", "match", "ours_setting",
           "percent", "norm", "ours_cell"]


#: ``(published, candidate, config, metrics, transfer) -> (per-seed values, note)``: our values of a published number
#: for one candidate (a dict: dataset, arch, regime, same) in the published unit, and a note: why there are none, or
#: how ours differ from the published setting (an empty note: the same quantity)
Reader = Callable[["Published", dict, dict[str, Any], pd.DataFrame, "pd.DataFrame | None"], tuple[pd.Series, str]]


@dataclass(frozen=True)
class Published:
    study: str  # the study whose module types this number
    source: str  # where the number is printed
    setting: str  # the paper's setting
    quantity: str  # what was measured (plain text)
    value: float  # percent for accuracies / errors / confidences, raw for LIGS
    norm: str = "bn"
    role: str = "standard"  # regime role, see normrobust.regimes.role
    metric: str = "clean_acc"  # a metrics.csv metric, or a name the entry's `ours` reader knows
    attack: tuple[str, str] | None = None  # (type, norm) of the evaluation attack
    eps: float | None = None  # in the config's unit (1/255 for L∞)
    error: bool = False  # the paper reports an error rate: ours is 100 − accuracy
    dataset_kind: str = "cifar10"
    arch_kinds: tuple[str, ...] = ("resnet",)  # the paper's architecture first
    analogue_kinds: tuple[str, ...] = ("resnet", "cnn", "vgg")  # acceptable stand-ins, in order
    target_role: str | None = None  # numbers about a pair of cells: the second one's regime role
    preset: str = "paper-cifar10"  # the preset that runs this setting
    dataset_method: str | None = None  # derived datasets: the config's method; None: a plain dataset
    arch_blocks: tuple[int, ...] | None = None  # ResNet blocks per stage of the paper's model, where it matters
    # the study's own comparison, where the generic one does not fit (left out of ==, hash and repr):
    # a regime's config -> True for the paper's kind of training, preferred among otherwise equal candidates
    prefer: Callable[[dict[str, Any]], bool] | None = field(default=None, compare=False, repr=False)
    ours: Reader | None = field(default=None, compare=False, repr=False)  # our per-seed values, see Reader

    @property
    def percent(self) -> bool:
        return self.metric != "ligs"

    def short(self) -> str:
        """The number as a claim row quotes it (at most 4 significant digits)."""
        return fmt_num(self.value, 4)


def find(published: Sequence[Published], **conds: Any) -> Published | None:
    """The first entry whose fields equal ``conds``."""
    for p in published:
        if all(getattr(p, k) == v for k, v in conds.items()):
            return p
    return None


def base_kind(datasets: dict[str, Any], name: str) -> str | None:
    """The kind of the real data under a (possibly derived, possibly nested) dataset."""
    seen = set()
    while name in datasets and name not in seen:
        seen.add(name)
        d = datasets.get(name) or {}
        if d.get("kind") != "derived":
            return d.get("kind")
        name = d.get("base")
    return None


def _candidates(p: Published, cfg: dict[str, Any], metrics: pd.DataFrame) -> list[dict]:
    """Every (dataset, arch, regime) the run has for this entry, best match first."""
    datasets, archs, regimes = cfg.get("datasets") or {}, cfg.get("archs") or {}, cfg.get("regimes") or {}
    kinds = list(p.arch_kinds) + [k for k in p.analogue_kinds if k not in p.arch_kinds]
    have = metrics[["dataset", "arch", "norm", "regime"]].drop_duplicates()
    ranked = []
    for _, r in have[have["norm"] == p.norm].iterrows():
        d, a, g = datasets.get(r["dataset"], {}), archs.get(r["arch"], {}), regimes.get(r["regime"])
        if role(g) != p.role or a.get("kind") not in kinds:
            continue
        if dataset_method(cfg, r["dataset"]) != p.dataset_method:  # D_R only for D_R, plain data for the rest
            continue
        same_data = (base_kind(datasets, r["dataset"]) if p.dataset_method else d.get("kind")) == p.dataset_kind
        same_arch = a.get("kind") in p.arch_kinds
        if p.arch_blocks is not None and same_arch:  # e.g. ResNet-18: four stages of two blocks
            same_arch = (list(a.get("blocks", [])) == list(p.arch_blocks) and a.get("width", 1) == 1
                         and a.get("depth", 1) == 1)
        # a variant (a wider / deeper model or another activation; a regime with its own optimiser settings)
        # only when nothing plainer is there
        variant = (a.get("width", 1) != 1 or a.get("depth", 1) != 1 or a.get("activation", "relu") != "relu",
                   bool((g or {}).get("training")))
        other = p.prefer is not None and not p.prefer(g or {})  # not the paper's kind of training
        key = (not same_data, not same_arch, kinds.index(a.get("kind")), variant[1], other, variant[0],
               r["dataset"], r["arch"], r["regime"])
        ranked.append((key, dict(dataset=r["dataset"], arch=r["arch"], regime=r["regime"],
                                 same=same_data and same_arch)))
    return [c for _, c in sorted(ranked, key=lambda kc: kc[0])]


def _attack_names(cfg: dict[str, Any], attack: tuple[str, str]) -> list[str]:
    atts = (cfg.get("evaluation") or {}).get("attacks") or {}
    return [n for n, a in atts.items() if (a.get("type"), a.get("norm")) == attack]


def metric_values(p: Published, c: dict, cfg: dict[str, Any], metrics: pd.DataFrame,
                  transfer: pd.DataFrame | None = None) -> tuple[pd.Series, str]:
    """The generic :data:`Reader`: our per-seed values (in the published unit) of ``p.metric`` in metrics.csv for
    candidate cells ``c`` (at ``p.attack`` and ``p.eps`` where given), and a note: why there are none, or where
    ours differ from the published setting (another ε)."""
    m = metrics[(metrics["dataset"] == c["dataset"]) & (metrics["arch"] == c["arch"]) & (metrics["norm"] == p.norm)
                & (metrics["regime"] == c["regime"])]
    note = ""
    if p.attack is not None:
        m = m[(m["metric"] == p.metric) & m["attack"].isin(_attack_names(cfg, p.attack))]
        unit = "/255" if p.attack[1] == "linf" else ""
        if not len(m):
            what = f"{p.attack[0].upper()}-{p.attack[1]} ε={fmt_num(p.eps, 4)}{unit}"
            return pd.Series(dtype=float), f"{what} not evaluated"
        eps = m["eps"].astype(float)
        if not np.isclose(eps, p.eps).any():  # another ε only: the nearest one, as an analogue
            near = float(eps.iloc[int(np.argmin(np.abs(eps.values - p.eps)))])
            note = f"at ε={fmt_num(near, 4)}{unit}, not {fmt_num(p.eps, 4)}{unit}"
            m = m[np.isclose(m["eps"].astype(float), near)]
        else:
            m = m[np.isclose(m["eps"].astype(float), p.eps)]
        m = m[m["attack"] == sorted(set(m["attack"]))[0]]
    else:
        m = m[m["metric"] == p.metric]
    v = m.groupby("seed")["value"].mean()
    if p.percent:
        v = (1 - v) * 100 if p.error else v * 100
    return v, note if len(v) else f"{p.metric} not measured"


def reproduction_frame(info: dict[str, Any], metrics: pd.DataFrame, transfer: pd.DataFrame | None,
                       published: Sequence[Published]) -> pd.DataFrame:
    """One row per published number, in ``published``'s order: ours (mean ± std over seeds, n), the difference and
    how close the setting is (``same`` / ``analogue`` / ``not run``); ``norm``: the entry's norm, ``ours_cell``: the
    cells ours come from (``dataset/arch/regime``; empty when not run)."""
    cfg = info.get("config") or {}
    rows = []
    for p in published:
        row = dict(source=p.source, setting=p.setting, quantity=p.quantity, published=p.value, ours=np.nan,
                   ours_std=np.nan, n=0, diff=np.nan, match="not run",
                   ours_setting=f"not in this run (preset {p.preset})", percent=p.percent, norm=p.norm,
                   ours_cell="")
        for c in _candidates(p, cfg, metrics):
            v, note = (p.ours or metric_values)(p, c, cfg, metrics, transfer)
            where = f"{c['dataset']}, {c['arch']}, {c['regime']}"
            if not len(v):
                row["ours_setting"] = f"{where}: {note}"
                continue
            row.update(ours=float(v.mean()), ours_std=float(v.std(ddof=1)) if len(v) > 1 else np.nan, n=len(v),
                       diff=float(v.mean()) - p.value, match="same" if c["same"] and not note else "analogue",
                       ours_setting=where + (f" ({note})" if note else ""),
                       ours_cell=f"{c['dataset']}/{c['arch']}/{c['regime']}")
            break
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def reproduction_table(frame: pd.DataFrame) -> str:
    """The LaTeX tabular of :func:`reproduction_frame`, one block per publication and setting."""
    lines = [r"\begin{tabular}{lrrrl}", r"\toprule",
             r"Quantity & Published & Ours (mean $\pm$ std, $n$ seeds) & $\Delta$ & Our cells \\"]
    block = None
    for _, r in frame.iterrows():
        if (r["source"], r["setting"]) != block:
            block = (r["source"], r["setting"])
            lines += [r"\midrule", rf"\multicolumn{{5}}{{l}}{{\textbf{{{tex_escape(r['source'])}}}: "
                                   rf"{tex_escape(r['setting'])}}} \\"]
        digits = 1 if r["percent"] else 2
        pub = f"{r['published']:.{digits}f}"
        if np.isfinite(r["ours"]):
            std = f" $\\pm$ {r['ours_std']:.{digits}f}" if np.isfinite(r["ours_std"]) else ""
            ours = f"{r['ours']:.{digits}f}{std} ({int(r['n'])})"
            diff = f"{r['diff']:+.{digits}f}".replace("-", "$-$")
        else:
            ours, diff = "--", "--"
        where = tex_escape(r["ours_setting"])
        if r["match"] == "analogue":
            where = r"\emph{analogue:} " + where
        elif r["match"] == "same":
            where = r"\emph{same setting:} " + where
        lines.append(" & ".join(["{" + tex_escape(r["quantity"]) + "}", pub, ours, diff, where]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ limitations

#: Why a claim may fail to reproduce at this pipeline's scale, by the claim's metric (a study may say better)
FAIL_REASONS = {
    "clean_acc": "clean-accuracy gains of a norm depend on the schedule: with few epochs and a small model one "
                 "side may not have converged, and on the generated data a model that never picks up the "
                 "non-robust feature is capped at the robust feature's agreement",
    "robust_acc": "robust accuracy depends on the attack strength relative to the features' amplitudes and on "
                  "how long the models trained; with few epochs a normalised model may not yet rely on "
                  "non-robust features",
    "ligs": "LIGS moves with training length and learning-rate decays ([B] Fig. 3): short schedules compare "
            "models at a different point of their trajectory than [B]",
    "nrf_reliance": "a model picks up the non-robust feature only when it is learnable within the schedule; "
                    "short training can leave normalised models on the robust feature",
    "transfer": "when no model is vulnerable beyond its own source, every transfer rate is near zero and the "
                "difference between sources carries no information",
}


def metric_reason(metric: str) -> str:
    """The generic reason for a failed claim about ``metric``."""
    for k in ("clean_acc", "robust_acc", "nrf_reliance", "ligs"):
        if k in metric:
            return FAIL_REASONS[k]
    return FAIL_REASONS["transfer" if "rate" in metric else "robust_acc"]


def limitations(info: dict[str, Any], claims: pd.DataFrame, repro: pd.DataFrame, n_seeds: int,
                reason: Callable[[pd.Series], str], not_run: Sequence[tuple[str, str]]) -> list[str]:
    """Plain-text paragraphs (LaTeX-escaped) on what did not reproduce and why that might be.

    ``reason(row)``: why a failed claims row may have failed; ``not_run``: (tag, title) of the studies the
    configuration did not enable."""
    cfg = info.get("config") or {}
    out = []
    tr = cfg.get("training") or {}
    kinds = sorted({(d or {}).get("kind", "?") for d in (cfg.get("datasets") or {}).values()})
    if "cifar10" not in kinds or tr.get("epochs", 0) < 150:
        out.append(f"Scale: these runs use {', '.join(kinds)} data, the architectures "
                   f"{', '.join(sorted(cfg.get('archs') or {}))} and {tr.get('epochs', '?')} epochs, where [B] "
                   f"trained ResNet-18 on CIFAR-10 for 150 epochs. Rows of the reproduction table marked "
                   "analogue compare different settings: their differences show the direction of an effect, "
                   "not a failed reproduction.")
    for _, r in (claims[claims["verdict"] == "FAIL"] if len(claims) else claims).iterrows():
        pct = metric_is_percent(str(r.get("metric", "")))
        diff = (fmt_signed(float(r["mean_diff"]), pct, tex=False).replace("−", "-") + (" points" if pct else "")
                if np.isfinite(float(r["mean_diff"])) else "n/a")
        out.append(f"Did not reproduce: {r['claim']} (id {r['id']}, mean difference {diff}). "
                   f"A possible reason: {reason(r)}.")
    inc = int((claims["verdict"] == "INCONCLUSIVE").sum()) if len(claims) else 0
    if inc:
        out.append(f"{inc} claim{'s' if inc != 1 else ''} stayed inconclusive: with {n_seeds} seed"
                   f"{'s' if n_seeds != 1 else ''} per cell a claim passes only when every seed agrees; more "
                   "seeds (config key seeds) would settle them.")
    far = repro[(repro["match"] == "same") & (repro["diff"].abs() > np.where(repro["percent"], 5, 0.05))]
    for _, r in far.iterrows():
        out.append(f"In the paper's own setting, {r['quantity']} differs from {r['source']} by "
                   f"{fmt_num(r['diff'])} (beyond the ±2-point reading error of published figures).")
    sources = sorted({r["source"].split()[0] for _, r in repro.iterrows() if r["match"] == "not run"})
    if sources:
        out.append(f"Numbers of {', '.join(sources)} that this run has no cells for are listed as not run; "
                   "the preset named in the table runs them.")
    if not_run:
        out.append("Not run in this configuration (enable them under the config key studies): "
                   + "; ".join(f"{tag}, {title}" for tag, title in not_run) + ".")
    return [tex_escape(s) for s in out]
