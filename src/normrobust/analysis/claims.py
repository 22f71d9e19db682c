"""Claims: what a study states, how it is measured from the tables, and the claims table.

A study module builds its claims (one small class per kind of comparison, below) from its
:class:`~normrobust.analysis.study_view.StudyView`; :func:`evaluate` measures each claim's per-seed difference
``Δ_s`` and its test-sampling variance ``v_s`` on the tables, and judges them with the verdict rule
(:mod:`normrobust.analysis.verdicts`: a 95 % interval over seeds and test images).

Test-sampling variances: paired over the images the cells share, from images.csv (transfer.csv's ``images`` for
transfer claims; :mod:`normrobust.analysis.paired`); without them, and always on history.csv, from the ``se``
columns (history.csv's ``ligs_se`` / ``n_test``, a transfer rate's ``n``: normrobust.sampling.rate_se), the two
sides of a difference added as if independent (an over-estimate for models scored on the same images).

Kinds of claim (``Δ_s`` for seed ``s``):

* :class:`Pair`: ``v(treatment) − scale·v(baseline)``, two cells that differ in one key, same seed, for one
  metric of ``metrics.csv`` (final evaluation) or of ``history.csv`` at an epoch; ``scale`` 0.5 is
  "lowers by more than half";
* :class:`Trajectory`: ``v(last epoch) − v(first epoch)`` of one model (``history.csv``);
* :class:`Level`: ``v(cell) − threshold``;
* :class:`Rank`: Spearman ρ between two metrics over a set of cells of seed ``s``, judged on Fisher's z = atanh ρ
  with the sampling variance 1.06 / (m − 3) of a rank correlation over m cells (Fieller et al. 1957) as its floor,
  independent across seeds (other models), reported back as ρ (at least :data:`MIN_RANK_CELLS` cells);
* :class:`Dominance`: ``max over variants |v(variant) − v(base)| − |v(base) − v(reference)|``;
* :class:`~normrobust.analysis.transfer_claim.Transfer` (its own module): mean over the targets of the treatment
  sources' rate − the same for the baseline sources (``transfer.csv``), averaged over matched source groups of seed
  ``s``;
* :class:`Unmeasured`: a claim of the paper this pipeline does not measure; always INCONCLUSIVE.

Output columns (:data:`COLUMNS`): id, study, claim, rule (Δ and the verdict rule in words), metric, direction,
tolerance, treatment_mean/min/max and baseline_mean/min/max (the two compared quantities over the seeds that
have a Δ; NaN where a claim has one side), mean_diff/min_diff/max_diff (of Δ_s), ci_low/ci_high (the 95 %
interval of Δ the verdict is read from), test_se (the test-sampling standard error of Δ), n_seeds, paper (the
paper's number, short text), verdict, note (why a claim is inconclusive).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from . import paired
from .labels import fmt_num, metric_is_percent, norm_label, regime_label, sort_norms
from .metric import Metric
from .selection import MODEL_KEYS, select, spearman
from .verdicts import EVIDENCE, INCONCLUSIVE, MIN_SEEDS, decide, interval, rule_text, tol_text

COLUMNS = ["id", "study", "claim", "rule", "metric", "direction", "tolerance", "treatment_mean", "treatment_min",
           "treatment_max", "baseline_mean", "baseline_min", "baseline_max", "mean_diff", "min_diff", "max_diff",
           "ci_low", "ci_high", "test_se", "n_seeds", "paper", "verdict", "note", "kind"]
NUMERIC = ["tolerance", "treatment_mean", "treatment_min", "treatment_max", "baseline_mean", "baseline_min",
           "baseline_max", "mean_diff", "min_diff", "max_diff", "ci_low", "ci_high", "test_se", "n_seeds"]
MIN_RANK_CELLS = 4  # a rank correlation needs at least this many cells in a seed (its z variance needs m > 3)
RANK_Z_VARIANCE = 1.06  # var(atanh ρ_Spearman) ≈ 1.06 / (m − 3) (Fieller, Hartley & Pearson 1957)
RANK_CLIP = 0.9999  # |ρ| clipped below 1 before atanh (a perfect rank order has a finite z)
UNMEASURED = "not measured by this pipeline"
Frames = dict  # table name -> DataFrame (or None when not read)


@dataclass
class Measured:
    """Per-seed values of a claim: Δ_s, the two compared quantities (NaN where one-sided), the test-sampling variance
    of Δ_s (``var``; NaN where not recorded), ``back``: maps Δ's scale to the reported one (Rank: tanh), ``shared``:
    the seeds share that sampling (the same test images), else it is independent across them (verdicts)."""

    diff: pd.Series
    treatment: pd.Series
    baseline: pd.Series
    note: str = ""
    var: pd.Series | None = None
    back: Any = None
    shared: bool = True


def no_data(note: str) -> Measured:
    """A claim without data: no seeds, and the reason."""
    e = pd.Series(dtype=float)
    return Measured(e, e, e, note)


def _add(*parts: pd.Series, weights: tuple[float, ...] | None = None) -> pd.Series:
    """Σ w_i · parts_i aligned on the seed index (NaN where a part lacks a seed)."""
    weights = weights or (1.0,) * len(parts)
    out = None
    for w, p in zip(weights, parts):
        p = p.astype(float) * w
        out = p if out is None else out.add(p)
    return out if out is not None else pd.Series(dtype=float)


def cell(dataset: str | None, arch: str | None, norm: str | None, regime: str | None) -> dict[str, Any]:
    return dict(dataset=dataset, arch=arch, norm=norm, regime=regime)


def cell_text(c: dict[str, Any], keys=MODEL_KEYS) -> str:
    return "/".join(norm_label(c[k]) if k == "norm" else str(c[k]) for k in keys if c.get(k) is not None)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass(kw_only=True)
class Claim:
    """A concrete claim: everything needed to measure it and write its row."""

    id: str
    study: str
    text: str
    metric: str  # the claims CSV's metric column
    direction: str
    tol: float = 0.0
    delta: str = ""  # Δ in words (goes into the rule)
    paper: str = ""
    #: what must hold for the comparison to mean anything (normrobust.analysis.preconditions); else NOT TESTABLE
    requires: list = field(default_factory=list)
    kind: str = EVIDENCE  # or MANIPULATION_CHECK (true by construction: reported apart)
    tables: ClassVar[tuple[str, ...]] = ("metrics",)

    def __post_init__(self) -> None:
        self.text = _cap(self.text)

    @property
    def rule(self) -> str:
        return rule_text(self.direction, self.tol, self.metric, self.delta)

    def needs(self) -> tuple[str, ...]:
        """The tables this claim reads."""
        return self.tables

    def measure(self, frames: Frames) -> Measured:
        raise NotImplementedError

    def _table(self, frames: Frames, name: str) -> pd.DataFrame | None:
        return frames.get(name)


@dataclass(kw_only=True)
class Pair(Claim):
    """Treatment cell vs baseline cell (differing in one key), same seed: Δ = v(t) − scale·v(b). Its variance is
    paired over the images (images.csv); on history.csv (no per-image record) the two sides' are added as if
    independent: conservative, since scores on the same images are positively correlated."""

    of: Metric
    treat: dict[str, Any]
    base: dict[str, Any]
    scale: float = 1.0
    epoch: str | int | None = None  # a history.csv column at this epoch ('first', 'last' or a number)

    def needs(self) -> tuple[str, ...]:
        return ("history",) if self.epoch is not None else ("metrics", "images")

    def measure(self, frames: Frames) -> Measured:
        table = self.needs()[0]
        df = frames.get(table)
        if df is None:
            return no_data(f"{table}.csv not available")
        if self.epoch is not None:
            treat, base = self.of.history(df, self.treat, self.epoch), self.of.history(df, self.base, self.epoch)
            vt, vb = (self.of.history_variances(df, c, self.epoch) for c in (self.treat, self.base))
        else:
            treat, base = self.of.values(df, self.treat), self.of.values(df, self.base)
            vt, vb = self.of.variances(df, self.treat), self.of.variances(df, self.base)
        if treat.empty or base.empty:
            missing = [cell_text(c) for c, s in ((self.treat, treat), (self.base, base)) if s.empty]
            return no_data(f"no {self.metric} for {', '.join(missing)}")
        d = (treat - self.scale * base).dropna()
        var = _add(vt, vb, weights=(1.0, self.scale ** 2))
        if self.epoch is None:
            var = paired.combined(frames.get("images"), self.of, [(self.treat, treat), (self.base, base)],
                                  (1.0, -self.scale), fallback=var)
        return Measured(d, treat, base, "" if len(d) else "no seed with both cells", var=var)


def pair(cid: str, study: str, text: str, metric: Metric, treat: dict[str, Any], base: dict[str, Any],
         direction: str, tol: float = 0.0, paper: str = "", scale: float = 1.0,
         epoch: str | int | None = None) -> Pair:
    """A :class:`Pair` claim with its Δ in words and its metric label."""
    diff = [k for k in MODEL_KEYS if treat.get(k) != base.get(k)]
    same = [k for k in MODEL_KEYS if k not in diff]
    at = None if epoch is None else (f"the {epoch} epoch" if epoch in ("first", "last") else f"epoch {epoch}")
    mt = metric.text if at is None else f"{metric.text} at {at}"
    k = "" if scale == 1 else f"{fmt_num(scale)} × "
    delta = f"{mt}[{cell_text(treat, diff)}] − {k}{mt}[{cell_text(base, diff)}] per seed ({cell_text(treat, same)})"
    label = metric.key if at is None else f"{metric.key}[{at.removeprefix('the ')}]"
    return Pair(id=cid, study=study, text=text, metric=label, direction=direction, tol=tol, delta=delta,
                paper=paper, of=metric, treat=treat, base=base, scale=scale, epoch=epoch)


def norm_vs_none(view, tag: str, key: str, text: str, metric: Metric, direction: str, tol: float = 0.0,
                 regimes: list[str] | None = None, norms: list[str] | None = None, paper: dict[str, str] | None = None,
                 regime_in_id: bool = False) -> list[Pair]:
    """Each norm of a study against no norm, same dataset, arch, regime (default: the standard one) and seed.

    Ids ``{tag}-{norm}-{key}[-{regime}][@dataset/arch]``; ``text`` may use {norm}, {regime}, {metric} and {tol};
    ``paper``: norm → the paper's number. ``view`` is the study's StudyView."""
    if "none" not in view.norms:
        return []
    regimes = regimes if regimes is not None else ([view.std] if view.std else [])
    norms = [n for n in (norms or sort_norms(view.norms)) if n in view.norms and n != "none"]
    out = []
    for ds in view.datasets:
        for arch in view.archs:
            sfx, tsfx = view.where(ds, arch)
            for regime in regimes:
                for norm in norms:
                    cid = f"{tag}-{norm}-{key}" + (f"-{regime}" if regime_in_id else "") + sfx
                    t = text.format(norm=norm_label(norm), regime=regime_label(regime), metric=metric.text,
                                    tol=tol_text(metric.key, tol)) + tsfx
                    out.append(pair(cid, view.key, t, metric, cell(ds, arch, norm, regime),
                                    cell(ds, arch, "none", regime), direction, tol, (paper or {}).get(norm, "")))
    return out


@dataclass(kw_only=True)
class Level(Claim):
    """One cell against a fixed level: Δ = v(cell) − threshold; its per-image variance (images.csv) where recorded,
    never below the recorded se² (a rate of 0 or 1 is still uncertain)."""

    of: Metric
    cell: dict[str, Any]
    threshold: float
    tables: ClassVar[tuple[str, ...]] = ("metrics", "images")

    def measure(self, frames: Frames) -> Measured:
        metrics = frames.get("metrics")
        if metrics is None:
            return no_data("metrics.csv not available")
        v = self.of.values(metrics, self.cell)
        if v.empty:
            return no_data(f"no {self.metric} for {cell_text(self.cell)}")
        var = paired.combined(frames.get("images"), self.of, [(self.cell, v)], (1.0,),
                              fallback=self.of.variances(metrics, self.cell), floor=True)
        return Measured(v - self.threshold, v, pd.Series(np.nan, index=v.index), var=var)


def level(cid: str, study: str, text: str, metric: Metric, c: dict[str, Any], threshold: float,
          paper: str = "", direction: str = "increase") -> Level:
    """A :class:`Level` claim: the cell's value is above (``increase``) or below (``decrease``) ``threshold``."""
    delta = f"{metric.text}[{cell_text(c)}] − {fmt_num(threshold)} per seed"
    return Level(id=cid, study=study, text=text, metric=metric.key, direction=direction, delta=delta, paper=paper,
                 of=metric, cell=c, threshold=threshold)


@dataclass(kw_only=True)
class Trajectory(Claim):
    """Δ = v(last epoch) − v(first epoch) of one model (history.csv); the two epochs' variances added as if
    independent (conservative: the same model on the same images at two epochs errs on many of the same)."""

    of: Metric
    cell: dict[str, Any]
    tables: ClassVar[tuple[str, ...]] = ("history",)

    def measure(self, frames: Frames) -> Measured:
        history = frames.get("history")
        if history is None:
            return no_data("history.csv not available")
        col = self.of.name
        if col not in history.columns:
            return no_data(f"history.csv has no column {col}")
        h = select(history, **{k: self.cell.get(k) for k in MODEL_KEYS})
        h = h[h[col].notna()].sort_values("epoch")
        if h.empty:
            return no_data(f"no history for {cell_text(self.cell)}")
        g = h.groupby("seed")
        first, last = g[col].first().astype(float), g[col].last().astype(float)
        keep = g["epoch"].max() > g["epoch"].min()
        d = (last - first)[keep]
        var = _add(*(self.of.history_variances(history, self.cell, e) for e in ("last", "first")))
        return Measured(d, last[keep], first[keep], "" if len(d) else "fewer than two epochs in the history", var=var)


@dataclass(kw_only=True)
class Rank(Claim):
    """Δ_s = Spearman ρ between two metrics over ``cells`` of seed s, on Fisher's z, whose variance 1.06 / (m − 3)
    is the sampling of m cells: each seed's cells are other, independently trained models, so it is independent
    across seeds (``shared=False``) and more seeds or more cells can decide the claim."""

    x: Metric
    y: Metric
    cells: list[tuple[str, str, str, str]] = field(default_factory=list)

    def measure(self, frames: Frames) -> Measured:
        metrics = frames.get("metrics")
        if metrics is None:
            return no_data("metrics.csv not available")
        m = select(metrics, self.cells)
        both = pd.concat({"x": self.x.per_seed(m), "y": self.y.per_seed(m)}, axis=1).dropna().reset_index()
        if both.empty:
            return no_data(f"no cell with both {self.x.name} and {self.y.name}")
        rho = pd.Series({s: spearman(g["x"], g["y"], MIN_RANK_CELLS) for s, g in both.groupby("seed")},
                        dtype=float).dropna()
        cells = both.groupby("seed").size().reindex(rho.index).astype(float)
        nan = pd.Series(np.nan, index=rho.index)
        note = "" if len(rho) else (f"fewer than {MIN_RANK_CELLS} cells with both metrics per seed, or one metric "
                                    f"constant over the cells")
        return Measured(np.arctanh(rho.clip(-RANK_CLIP, RANK_CLIP)), nan, nan, note,
                        var=RANK_Z_VARIANCE / (cells - 3), back=np.tanh, shared=False)


@dataclass(kw_only=True)
class Dominance(Claim):
    """Δ = max over variants |v(variant) − v(base)| − |v(base) − v(reference)|, per seed; its variance paired over
    the images (:func:`normrobust.analysis.paired.dominance`) where images.csv has them all."""

    of: Metric
    base: dict[str, Any]
    variants: list[dict[str, Any]]
    ref: dict[str, Any]
    tables: ClassVar[tuple[str, ...]] = ("metrics", "images")

    def measure(self, frames: Frames) -> Measured:
        metrics = frames.get("metrics")
        if metrics is None:
            return no_data("metrics.csv not available")
        base, ref = self.of.values(metrics, self.base), self.of.values(metrics, self.ref)
        if base.empty or ref.empty:
            missing = [cell_text(c) for c, s in ((self.base, base), (self.ref, ref)) if s.empty]
            return no_data(f"no {self.metric} for {', '.join(missing)}")
        moves, var_moves, seen = [], [], []
        for c in self.variants:
            v = self.of.values(metrics, c)
            if not v.empty:
                moves.append((v - base).abs())
                var_moves.append(self.of.variances(metrics, c))
                seen.append((c, v))
        if not moves:
            return no_data(f"no {self.metric} for any variant")
        factor = pd.concat(moves, axis=1).max(axis=1, skipna=True)
        gap = (base - ref).abs()
        d = (factor - gap).dropna()
        # the largest variant's variance bounded by the largest of them; the base counted in both terms
        vb, vr = self.of.variances(metrics, self.base), self.of.variances(metrics, self.ref)
        var = _add(pd.concat(var_moves, axis=1).max(axis=1, skipna=False), vb, vr, weights=(1.0, 2.0, 1.0))
        var = paired.dominance(frames.get("images"), self.of, (self.base, base), (self.ref, ref), seen, fallback=var)
        return Measured(d, factor, gap, "" if len(d) else "no seed with the base, the variants and the reference",
                        var=var)


@dataclass(kw_only=True)
class Unmeasured(Claim):
    """A claim of the paper this pipeline does not measure: INCONCLUSIVE by construction."""

    tables: ClassVar[tuple[str, ...]] = ()

    @property
    def rule(self) -> str:
        return f"{UNMEASURED}: INCONCLUSIVE by construction"

    def measure(self, frames: Frames) -> Measured:
        return no_data(UNMEASURED)


def _stats(s: pd.Series) -> tuple[float, float, float]:
    s = pd.to_numeric(s, errors="coerce").dropna()
    if s.empty:
        return np.nan, np.nan, np.nan
    return float(s.mean()), float(s.min()), float(s.max())


def _inconclusive_note(n: int, lo: float, hi: float, direction: str, tol: float, var_missing: bool) -> str:
    """Why a measured claim is INCONCLUSIVE, in words."""
    if n < MIN_SEEDS:
        return f"fewer than {MIN_SEEDS} seeds"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "the interval is unbounded (too few cells or images)"
    edge = {"increase": 0.0, "decrease": 0.0, "increase_or_keep": -tol, "decrease_or_keep": tol}.get(direction)
    what = f"contains {fmt_num(edge)}" if edge is not None else f"overlaps the band edge ±{fmt_num(tol)}"
    return f"the 95% interval {what}" + ("; no test-sampling error recorded" if var_missing else "")


def evaluate(claims: list[Claim], frames: Frames) -> pd.DataFrame:
    """The claims table (columns :data:`COLUMNS`): each claim measured on ``frames`` and judged."""
    rows = []
    for c in claims:
        m = c.measure(frames)
        d = pd.to_numeric(m.diff, errors="coerce").astype(float)
        d = d[np.isfinite(d)]
        n = int(len(d))
        var = (m.var if m.var is not None else pd.Series(np.nan, index=d.index)).reindex(d.index).astype(float)
        mean, lo, hi, _ = interval(d.values, var.values, m.shared)
        back = m.back or (lambda x: x)
        mean, lo, hi = (float(back(x)) if np.isfinite(x) else x for x in (mean, lo, hi))
        v = decide(lo, hi, c.direction, c.tol) if n >= MIN_SEEDS else INCONCLUSIVE
        note = m.note
        if v == INCONCLUSIVE and not note:
            note = _inconclusive_note(n, lo, hi, c.direction, c.tol, bool(n) and bool(var.isna().all()))
        tm = _stats(m.treatment.reindex(d.index)) if n else (np.nan,) * 3
        bm = _stats(m.baseline.reindex(d.index)) if n else (np.nan,) * 3
        dm = _stats(back(d)) if n else (np.nan,) * 3
        test_se = float(np.sqrt(var.fillna(0).mean())) if n and m.back is None else np.nan
        rows.append({
            "id": c.id, "study": c.study, "claim": c.text, "rule": c.rule, "metric": c.metric,
            "direction": c.direction, "tolerance": c.tol,
            "treatment_mean": tm[0], "treatment_min": tm[1], "treatment_max": tm[2],
            "baseline_mean": bm[0], "baseline_min": bm[1], "baseline_max": bm[2],
            "mean_diff": mean if n else np.nan, "min_diff": dm[1], "max_diff": dm[2],
            "ci_low": lo, "ci_high": hi, "test_se": test_se, "n_seeds": n,
            "paper": c.paper, "verdict": v, "note": note, "kind": c.kind,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def find_claim(claims: pd.DataFrame, ids: list[str]) -> pd.Series | None:
    """The first claims row among ``ids`` that has a measured difference."""
    for cid in ids:
        hit = claims[claims["id"] == cid]
        if len(hit) and np.isfinite(float(hit["mean_diff"].iloc[0])):
            return hit.iloc[0]
    return None


def change_phrase(row: pd.Series | None, what: str) -> str:
    """'lowered WHAT by 24.8 points' (or raised / left unchanged) from a claims row."""
    if row is None or not np.isfinite(float(row["mean_diff"])):
        return ""
    pct = metric_is_percent(row["metric"])
    v = float(row["mean_diff"]) * (100 if pct else 1)
    digits = 1 if pct else 3
    if round(v, digits) == 0:
        return f"left {what} unchanged"
    return f"{'raised' if v > 0 else 'lowered'} {what} by {abs(v):.{digits}f}{' points' if pct else ''}"


def read_claims(path) -> pd.DataFrame:
    """A claims CSV with every column typed (numbers parsed, missing text empty).

    An empty, binary or damaged file, or a number column holding something other than a number (empty, nan or
    ±inf, as the claims step writes them, are accepted) raises :class:`~normrobust.analysis.tables.TableError`
    naming the file, line and column."""
    from .tables import read_csv_checked, remake_hint

    table = read_csv_checked(path, "claims file", remake_hint(path, "claims"))
    missing = [c for c in COLUMNS if c not in table.frame.columns]
    if missing:
        raise ValueError(f"claims file {path} lacks column(s) {', '.join(missing)} (rerun the claims step)")
    df = table.numbers(NUMERIC, missing=("", "nan", "NaN"), allow_inf=True)  # ci_low / ci_high may be infinite
    for c in set(COLUMNS) - set(NUMERIC):
        df[c] = df[c].mask(df[c].isin(["nan", "NaN"]), "").astype(str)
    return df
