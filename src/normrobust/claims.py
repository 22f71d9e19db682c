"""Claims from PAPER.md checked against the aggregated tables, with a verdict rule fixed in code.

Usage::

    python -m normrobust claims --tables results/tables --out results/tables/claims.csv

Every claim of PAPER.md (E1–E10) becomes one or more rows. The rows are built, for every *enabled* study of
the config in ``run_info.json``, by the study's builder (:data:`BUILDERS`) from the study's datasets,
architectures, norms and regimes; a claim whose comparison the study does not contain (e.g. no ``none``
norm, no AdvProp regime) is not emitted. Regimes are recognised by their config (``objective``, attack type,
``training`` overrides, ``ligs_weight``), architectures by their ``kind`` / ``width`` / ``depth`` /
``activation`` keys, derived datasets by their ``method``; names are a fallback only.

Rule (fixed before any run)
---------------------------
Each claim computes one number per seed, ``Δ_s``, from one of these kinds:

* ``pair``: ``Δ_s = v(treatment) − v(baseline)``, two cells that differ in one key (norm, regime, arch or
  dataset), same seed, for one metric of ``metrics.csv`` (final evaluation; FGSM error = 1 − robust
  accuracy of the fgsm attack, clean error = 1 − clean accuracy), or of ``history.csv`` at one epoch;
* ``ratio`` ("lowers by more than half"): ``Δ_s = v(treatment) − 0.5·v(baseline)``, claimed ``< 0``;
* ``trajectory``: ``Δ_s = v(last epoch) − v(first epoch)`` of one model (``history.csv``);
* ``level``: ``Δ_s = v(cell) − threshold``;
* ``rank``: ``Δ_s`` = Spearman ρ between two metrics over the study's cells of seed ``s`` (at least 3 cells);
* ``dominance`` (E6): ``Δ_s = max over the factor variants |LIGS(variant) − LIGS(base)| −
  |LIGS(base) − LIGS(base cell with no norm)|``;
* ``transfer``: ``Δ_s`` = mean over the targets of the treatment sources' success (or error) rate − the same
  for the baseline sources (``transfer.csv``), targets shared by both sides and neither source's own cell,
  averaged over the matched source groups (e.g. per source norm) of seed ``s``;
* ``unmeasured``: a claim of the paper this pipeline does not measure; always INCONCLUSIVE.

With ``n`` seeds that have a ``Δ_s``:

* **PASS** when ``n ≥ 2``, the mean of ``Δ_s`` is on the claimed side and *every* ``Δ_s`` is on the claimed
  side (the seed spread, min to max, excludes zero);
* **FAIL** when ``n ≥ 2`` and every ``Δ_s`` is on the opposite side;
* **INCONCLUSIVE** otherwise: seeds disagree, ``n < 2``, or the data are missing.

Directions: ``increase`` (claimed side ``Δ > 0``), ``decrease`` (``Δ < 0``), ``increase_or_keep`` with a
tolerance ``tol`` (claimed side ``Δ ≥ −tol``, opposite ``Δ < −tol``), ``decrease_or_keep`` (claimed
``Δ ≤ tol``, opposite ``Δ > tol``) and ``small`` (claimed side ``|Δ| ≤ tol``; FAIL when every ``Δ_s > tol``
or every ``Δ_s < −tol``). Tolerances are stated in each claim's text: 1 percentage point for "raises or
keeps" / "does not hurt", 2 points for "small effect" on an accuracy, 0.05 for "moves LIGS little".
Differences are in the metric's own units (accuracies as fractions: 0.01 = 1 point).

Claims per study (ids; ``{n}`` a norm of the study, ``{r}`` a regime; ``@dataset/arch`` is appended when a
study has several datasets or architectures):

* E1 ``E1-{n}-clean`` (raises or keeps, 1 point), ``E1-{n}-robust`` (headline robust accuracy lower),
  ``E1-{n}-ligs``: each norm vs no norm, standard training.
* E2 ``E2-bn-std-robust``, ``E2-bn-std-ligs``, ``E2-bn-adv-robust[-{r}]`` (small, 2 points, under each
  adversarial regime), ``E2-{none,bn}-rf-first`` (trajectory: LIGS falls during standard training).
* E3 ``E3-drobust-{n}-clean`` (higher), ``E3-drobust-{n}-robust`` (lower), ``E3-drand-{n}-clean``,
  ``E3-ddet-{n}-clean`` (higher than no norm: the norm learns the NRFs); datasets by their ``method``.
* E4 ``E4-{n}-t`` (clean accuracy, labels t: norm higher), ``E4-{n}-t1`` (shifted accuracy, labels t+1:
  no norm higher; treatment = the no-norm model), ``E4-{n}-ligs`` (lower).
* E5 ``E5-{n}-nrf`` (NRF reliance higher), ``E5-rank`` (rank: Spearman ρ(LIGS, NRF reliance) < 0).
* E6 (one at a time; base = archs[0], regimes[0]): ``E6-{n}-width-ligs`` / ``E6-{n}-depth-ligs`` (small,
  0.05), ``E6-{n}-{activation}-ligs`` (higher) and ``-clean`` (lower), ``E6-{n}-adam-ligs`` (higher),
  ``E6-{n}-{wd,lr}-ligs-early`` (higher LIGS at the first epoch, history) and ``-late`` (lower final LIGS),
  ``E6-{n}-vs-norm`` (dominance). Emitted only for the variants the study has.
* E7 ``E7-bn-mixed-clean`` (mixed < standard), ``E7-bn-advprop-clean`` (advprop > mixed),
  ``E7-bn-advprop-std`` (advprop ≥ standard − 1 point), ``E7-bn-adv-robust`` (BN vs none under
  adversarial-only training: small, 2 points), ``E7-{n}-fgsm-robust`` (FGSM training > standard); regimes
  by objective (mixed, advprop, adversarial, weighted / fgsm attack).
* E8 ``E8-{n}-{r}-robust`` (higher), ``E8-{n}-{r}-clean`` (small, 2 points), ``E8-{n}-{r}-ligs`` (higher)
  for every ligs_reg regime vs standard.
* E9 ``E9-transfer`` (no-BN sources > BN sources; final sources, the study's target regimes),
  ``E9-early-stop[-e{k}]`` (epoch-k source > the same cell's final model, averaged over the source cells),
  ``E9-robust-source[-{r}]`` (each non-standard regime's sources > the standard source of the same norm,
  averaged over norms), ``E9-rf-nrf`` (unmeasured).
* E10 ``E10-linear-fgsm-error`` (level 0.9), ``E10-maxout-fgsm-error`` (level 0.5), ``E10-{linear,maxout}-
  confidence`` (mean confidence on misclassified FGSM examples, level 0.5), ``E10-maxout-fgsm-halves``
  (ratio), ``E10-maxout-clean-error`` (FGSM training raises clean error by ≤ 1 point),
  ``E10-maxout-transfer-asym`` (transfer error rate fgsm → standard > standard → fgsm). FGSM error is taken
  at the headline when it is an fgsm attack, else at the largest eps of the config's fgsm attack.

Output columns (:data:`COLUMNS`): id, study, claim, rule (Δ and the verdict rule in words), metric,
direction, tolerance, treatment_mean/min/max and baseline_mean/min/max (the two compared quantities over the
seeds that have a Δ; NaN where a claim has one side), mean_diff/min_diff/max_diff (of Δ_s), n_seeds, paper
(the paper's number(s) from PAPER.md, short text, else empty), verdict, note (why a claim is inconclusive).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from . import tables as T
from .config import ligs_weight, objective
from .studies import STUDIES

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
TOL_KEEP = 0.01  # "raises or keeps" / "does not hurt": up to 1 point the wrong way still counts
TOL_SMALL = 0.02  # "small effect" on an accuracy: |difference| up to 2 points
TOL_LIGS_SMALL = 0.05  # "moves LIGS little" (E6): |ΔLIGS| up to 0.05
MIN_SEEDS = 2  # fewer paired seeds than this: INCONCLUSIVE
MIN_RANK_CELLS = 3  # a rank correlation needs at least this many cells in a seed
RATIO = 0.5  # "lowers by more than half"
UNMEASURED = "not measured by this pipeline"

COLUMNS = ["id", "study", "claim", "rule", "metric", "direction", "tolerance", "treatment_mean", "treatment_min",
           "treatment_max", "baseline_mean", "baseline_min", "baseline_max", "mean_diff", "min_diff", "max_diff",
           "n_seeds", "paper", "verdict", "note"]

STUDY_ORDER = ["e1_norms", "e2_trajectories", "e3_disentangled", "e4_conflict", "e5_synthetic", "e6_factors",
               "e7_adv_training", "e8_ligs_reg", "e9_transfer", "e10_fgsm"]
STUDY_TAG = {**{s: f"E{i + 1}" for i, s in enumerate(STUDY_ORDER)},
             **{name: s["tag"] for name, s in STUDIES.items()}}
CELL = ("dataset", "arch", "norm", "regime")


# ------------------------------------------------------------------------------------- the rule

def verdict(diffs: Any, direction: str, tol: float = 0.0) -> str:
    """PASS / FAIL / INCONCLUSIVE for per-seed paired differences (see the module docstring)."""
    d = np.asarray(pd.to_numeric(pd.Series(list(diffs), dtype=float), errors="coerce"), dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < MIN_SEEDS:
        return INCONCLUSIVE
    mean = float(d.mean())
    if direction == "increase":
        ok, bad, mean_ok = d > 0, d < 0, mean > 0
    elif direction == "decrease":
        ok, bad, mean_ok = d < 0, d > 0, mean < 0
    elif direction == "increase_or_keep":
        ok, bad, mean_ok = d >= -tol, d < -tol, mean >= -tol
    elif direction == "decrease_or_keep":
        ok, bad, mean_ok = d <= tol, d > tol, mean <= tol
    elif direction == "small":
        ok, mean_ok = np.abs(d) <= tol, abs(mean) <= tol
        bad = d > tol if np.all(d > tol) else d < -tol
    else:
        raise ValueError(f"unknown claim direction {direction!r}")
    if mean_ok and bool(np.all(ok)):
        return PASS
    if bool(np.all(bad)):
        return FAIL
    return INCONCLUSIVE


def _tol_text(metric: str, tol: float) -> str:
    """'1 point' / '2 points' for accuracy-type metrics, else the plain number."""
    if T.metric_is_percent(metric):
        pts = tol * 100
        return f"{T.fmt_num(pts)} point" + ("" if abs(pts - 1) < 1e-9 else "s")
    return T.fmt_num(tol)


def rule_text(direction: str, tol: float, metric: str, delta: str = "") -> str:
    """The verdict rule in words, with the definition of Δ first."""
    t = _tol_text(metric, tol)
    core = {
        "increase": "PASS if Δ > 0 on every seed (n ≥ 2); FAIL if Δ < 0 on every seed; else INCONCLUSIVE",
        "decrease": "PASS if Δ < 0 on every seed (n ≥ 2); FAIL if Δ > 0 on every seed; else INCONCLUSIVE",
        "increase_or_keep": f"PASS if Δ ≥ −{t} on every seed and on average (n ≥ 2); FAIL if Δ < −{t} on "
                            f"every seed; else INCONCLUSIVE",
        "decrease_or_keep": f"PASS if Δ ≤ {t} on every seed and on average (n ≥ 2); FAIL if Δ > {t} on every "
                            f"seed; else INCONCLUSIVE",
        "small": f"PASS if |Δ| ≤ {t} on every seed and on average (n ≥ 2); FAIL if Δ > {t} on every seed or "
                 f"Δ < −{t} on every seed; else INCONCLUSIVE",
    }.get(direction)
    if core is None:
        raise ValueError(f"unknown claim direction {direction!r}")
    return f"Δ = {delta}; {core}" if delta else core


# ------------------------------------------------------------------------------------ claim objects

@dataclass(frozen=True)
class Metric:
    """One measured quantity: a metric of metrics.csv (or a column of history.csv), optionally as error."""

    name: str  # metrics.csv metric, or history.csv column
    attack: str | None = None
    eps: float | None = None
    error: bool = False  # report 1 − value (FGSM error, clean error)

    @property
    def label(self) -> str:
        """As written to the CSV's metric column, e.g. ``robust_acc@pgd_linf:4`` or ``fgsm_error@fgsm_linf:8``."""
        base = self.name
        if self.error:
            base = {"clean_acc": "clean_error"}.get(self.name, "fgsm_error" if "fgsm" in str(self.attack)
                                                     else "robust_error")
        if self.attack is not None and self.eps is not None:
            return f"{base}@{self.attack}:{T.fmt_num(self.eps)}"
        return base

    @property
    def text(self) -> str:
        if self.attack is not None and self.eps is not None:
            what = "error" if self.error else T.METRIC_LABEL.get(self.name, self.name)
            return f"{T.attack_eps_label(self.attack, self.eps)} {what}"
        if self.error:
            return "clean error" if self.name == "clean_acc" else f"1 − {T.METRIC_LABEL.get(self.name, self.name)}"
        return T.METRIC_LABEL.get(self.name, self.name)


@dataclass
class Claim:
    """A concrete claim: everything needed to compute and write its row."""

    id: str
    study: str
    text: str
    kind: str  # pair, ratio, trajectory, level, rank, dominance, transfer, unmeasured
    metric: str  # the CSV metric column
    direction: str
    tol: float = 0.0
    delta: str = ""  # Δ in words (goes into the rule)
    paper: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    tables: tuple[str, ...] = ("metrics",)

    @property
    def rule(self) -> str:
        if self.kind == "unmeasured":
            return f"{UNMEASURED}: INCONCLUSIVE by construction"
        return rule_text(self.direction, self.tol, self.metric, self.delta)


@dataclass
class Measured:
    """Per-seed values of a claim: Δ_s and the two compared quantities (NaN where one-sided)."""

    diff: pd.Series
    treatment: pd.Series
    baseline: pd.Series
    note: str = ""


def _empty(note: str) -> Measured:
    e = pd.Series(dtype=float)
    return Measured(e, e, e, note)


# --------------------------------------------------------------------------------- config helpers

def _cfg(run_info: dict[str, Any]) -> dict[str, Any]:
    return run_info.get("config") or {}


def study_datasets(study: dict[str, Any]) -> list[str]:
    """A study's datasets (``dataset`` is one name or a list); [None] when it names none."""
    d = study.get("dataset")
    if d is None:
        return [None]  # type: ignore[list-item]
    return [str(d)] if isinstance(d, str) else [str(x) for x in d]


def study_pairs(study: dict[str, Any]) -> list[tuple[str, str]]:
    """(arch, regime) pairs of a study: every pair, or one at a time (``design: one_at_a_time``)."""
    archs = [str(a) for a in study.get("archs", [])]
    regimes = [str(r) for r in study.get("regimes", [])]
    if not archs or not regimes:
        return []
    if study.get("design", "factorial") == "one_at_a_time":
        return [(archs[0], regimes[0])] + [(a, regimes[0]) for a in archs[1:]] + [(archs[0], r) for r in regimes[1:]]
    return [(a, r) for a in archs for r in regimes]


def study_cell_keys(study: dict[str, Any]) -> list[tuple[str | None, str, str, str]]:
    """The study's (dataset, arch, norm, regime) cells, seeds aside (the contract's study_cells)."""
    return [(d, a, str(n), r) for d in study_datasets(study) for a, r in study_pairs(study)
            for n in study.get("norms", [])]


def _regime_cfg(config: dict[str, Any], regime: str) -> dict[str, Any] | None:
    r = (config.get("regimes") or {}).get(regime)
    return r if isinstance(r, dict) else None


def regime_objective(config: dict[str, Any], regime: str) -> str:
    """normrobust.config.objective of the regime; guessed from the name when the config lacks it."""
    r = _regime_cfg(config, regime)
    if r is not None:
        return objective(r)
    name = regime.lower()
    for key, obj in (("advprop", "advprop"), ("mixed", "mixed"), ("ligs", "ligs_reg"), ("fgsm", "weighted")):
        if key in name:
            return obj
    return "clean" if name in ("standard", "wd_high", "lr_high", "adam") else "adversarial"


def _attack_type(config: dict[str, Any], regime: str) -> str:
    r = _regime_cfg(config, regime)
    a = (r or {}).get("attack")
    return str(a.get("type", "")) if isinstance(a, dict) else ("fgsm" if r is None and "fgsm" in regime else "")


def _overrides(config: dict[str, Any], regime: str) -> dict[str, Any]:
    return dict((_regime_cfg(config, regime) or {}).get("training") or {})


def is_fgsm_training(config: dict[str, Any], regime: str) -> bool:
    """FGSM adversarial training ([G]): the weighted objective, or an fgsm training attack."""
    obj = regime_objective(config, regime)
    return obj == "weighted" or (obj != "clean" and _attack_type(config, regime) == "fgsm")


def standard_regime(config: dict[str, Any], regimes: list[str]) -> str | None:
    """``standard`` when listed, else the first clean regime without training overrides."""
    if "standard" in regimes:
        return "standard"
    for r in regimes:
        if regime_objective(config, r) == "clean" and not _overrides(config, r):
            return r
    return None


def _arch_cfg(config: dict[str, Any], arch: str) -> dict[str, Any] | None:
    a = (config.get("archs") or {}).get(arch)
    return a if isinstance(a, dict) else None


def arch_kind(config: dict[str, Any], arch: str) -> str:
    a = _arch_cfg(config, arch)
    if a is not None and a.get("kind"):
        return str(a["kind"])
    name = arch.lower()
    if "maxout" in name:
        return "maxout"
    if "linear" in name or "softmax" in name:
        return "linear"
    return name


def dataset_method(config: dict[str, Any], dataset: str | None) -> str | None:
    """A derived dataset's method (robust, nonrobust, rand, det, conflict); guessed from d_<method> names."""
    if dataset is None:
        return None
    d = (config.get("datasets") or {}).get(dataset)
    if isinstance(d, dict):
        return str(d["method"]) if d.get("kind") == "derived" and d.get("method") else None
    name = dataset[2:] if dataset.startswith("d_") else None
    return name if name in ("robust", "nonrobust", "rand", "det", "conflict") else None


def _fgsm_metric(config: dict[str, Any], head: dict[str, Any]) -> Metric | None:
    """FGSM error: the headline when it is an fgsm attack, else the largest eps of the first fgsm attack."""
    attacks = ((config.get("evaluation") or {}).get("attacks") or {})
    spec = attacks.get(head["attack"])
    if isinstance(spec, dict) and spec.get("type") == "fgsm":
        return Metric("robust_acc", head["attack"], float(head["eps"]), error=True)
    names = sorted((n for n, s in attacks.items() if isinstance(s, dict) and s.get("type") == "fgsm"),
                   key=lambda n: (n != "fgsm_linf", n))
    if not names:
        return None
    eps = attacks[names[0]].get("eps")
    eps = max(eps) if isinstance(eps, list) else eps
    return Metric("robust_acc", names[0], float(eps), error=True) if eps is not None else None


# -------------------------------------------------------------------------------------- builders

@dataclass
class Ctx:
    """What a study builder sees."""

    config: dict[str, Any]
    name: str
    st: dict[str, Any]
    head: Metric

    @property
    def tag(self) -> str:
        return STUDY_TAG.get(self.name, self.name)

    @property
    def datasets(self) -> list[str | None]:
        return study_datasets(self.st)

    @property
    def archs(self) -> list[str]:
        return [str(a) for a in self.st.get("archs", [])]

    @property
    def norms(self) -> list[str]:
        return [str(n) for n in self.st.get("norms", [])]

    @property
    def regimes(self) -> list[str]:
        return [str(r) for r in self.st.get("regimes", [])]

    @property
    def std(self) -> str | None:
        return standard_regime(self.config, self.regimes)

    def where(self, dataset: str | None, arch: str | None) -> tuple[str, str]:
        """(id suffix, text suffix) naming the dataset and arch when the study has several."""
        parts = ([str(dataset)] if len(self.datasets) > 1 else []) + ([str(arch)] if len(self.archs) > 1 else [])
        if not parts:
            return "", ""
        return "@" + "/".join(parts), " (" + ", ".join(parts) + ")"


def _cell(dataset, arch, norm, regime) -> dict[str, Any]:
    return dict(dataset=dataset, arch=arch, norm=norm, regime=regime)


def _cell_text(cell: dict[str, Any], keys=CELL) -> str:
    out = []
    for k in keys:
        v = cell.get(k)
        if v is None:
            continue
        out.append(T.norm_label(v) if k == "norm" else str(v))
    return "/".join(out)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def pair_claim(cid: str, study: str, text: str, metric: Metric, treat: dict[str, Any], base: dict[str, Any],
               direction: str, tol: float = 0.0, paper: str = "", scale: float = 1.0,
               history_epoch: str | int | None = None) -> Claim:
    """Treatment cell vs baseline cell (differing in one key), same seed: Δ = v(t) − scale·v(b)."""
    diff = [k for k in CELL if treat.get(k) != base.get(k)]
    same = [k for k in CELL if k not in diff]
    at = None if history_epoch is None else (f"the {history_epoch} epoch" if history_epoch in ("first", "last")
                                              else f"epoch {history_epoch}")
    mt = metric.text if at is None else f"{metric.text} at {at}"
    tdesc, bdesc = _cell_text(treat, diff), _cell_text(base, diff)
    k = "" if scale == 1 else f"{T.fmt_num(scale)} × "
    delta = f"{mt}[{tdesc}] − {k}{mt}[{bdesc}] per seed ({_cell_text(treat, same)})"
    label = metric.label if at is None else f"{metric.label}[{at.removeprefix('the ')}]"
    return Claim(cid, study, _cap(text), "ratio" if scale != 1 else "pair", label, direction, tol, delta, paper,
                 dict(metric=metric, treat=treat, base=base, scale=scale, epoch=history_epoch),
                 ("history",) if history_epoch is not None else ("metrics",))


def level_claim(cid: str, study: str, text: str, metric: Metric, cell: dict[str, Any], threshold: float,
                paper: str = "") -> Claim:
    delta = f"{metric.text}[{_cell_text(cell)}] − {T.fmt_num(threshold)} per seed"
    return Claim(cid, study, _cap(text), "level", metric.label, "increase", 0.0, delta, paper,
                 dict(metric=metric, cell=cell, threshold=threshold))


def _norm_pair_claims(ctx: Ctx, key: str, text: str, metric: Metric, direction: str, tol: float = 0.0,
                      regimes: list[str] | None = None, norms: list[str] | None = None,
                      paper: dict[str, str] | None = None, regime_in_id: bool = False) -> list[Claim]:
    """Each treatment norm vs no norm, per dataset, arch and regime (E1, E2, E5 ...)."""
    if "none" not in ctx.norms:
        return []
    regimes = regimes if regimes is not None else ([ctx.std] if ctx.std else [])
    norms = norms if norms is not None else [n for n in T.sort_norms(ctx.norms) if n != "none"]
    norms = [n for n in norms if n in ctx.norms and n != "none"]
    out = []
    for ds in ctx.datasets:
        for arch in ctx.archs or [None]:
            for regime in regimes:
                for norm in norms:
                    sfx, tsfx = ctx.where(ds, arch)
                    cid = f"{ctx.tag}-{norm}-{key}" + (f"-{regime}" if regime_in_id else "") + sfx
                    t = text.format(norm=T.norm_label(norm), regime=T.regime_label(regime), metric=metric.text,
                                    tol=_tol_text(metric.label, tol)) + tsfx
                    out.append(pair_claim(cid, ctx.name, t, metric, _cell(ds, arch, norm, regime),
                                          _cell(ds, arch, "none", regime), direction, tol,
                                          (paper or {}).get(norm, "")))
    return out


def build_e1(ctx: Ctx) -> list[Claim]:
    P = {"clean": {"bn": "BN 95.3 vs none 92.5 (fig)"}, "robust": {"bn": "BN 10 vs none 40, PGD-L2 0.25 (fig)"},
         "ligs": {"bn": "BN 0.59 vs none 0.79 (fig)"}}
    return (_norm_pair_claims(ctx, "clean", "{norm} raises clean accuracy or keeps it (drop ≤ {tol}) vs no norm "
                              "under {regime} training", Metric("clean_acc"), "increase_or_keep", TOL_KEEP,
                              paper=P["clean"])
            + _norm_pair_claims(ctx, "robust", "{norm} lowers {metric} vs no norm under {regime} training",
                                ctx.head, "decrease", paper=P["robust"])
            + _norm_pair_claims(ctx, "ligs", "{norm} lowers LIGS vs no norm under {regime} training", Metric("ligs"),
                                "decrease", paper=P["ligs"]))


def build_e2(ctx: Ctx) -> list[Claim]:
    out = _norm_pair_claims(ctx, "std-robust", "{norm} lowers {metric} under {regime} training", ctx.head,
                            "decrease", norms=["bn"], paper={"bn": "BN 10 vs none 40, PGD-L2 0.25 (fig)"})
    out += _norm_pair_claims(ctx, "std-ligs", "{norm} lowers LIGS under {regime} training", Metric("ligs"),
                             "decrease", norms=["bn"], paper={"bn": "BN 0.59 vs none 0.79 (fig)"})
    adv = [r for r in T.sort_regimes(ctx.regimes) if r != ctx.std]
    for claim in _norm_pair_claims(ctx, "adv-robust", "{norm}'s effect on {metric} is small (|Δ| ≤ {tol}) under "
                                   "{regime} training", ctx.head, "small", TOL_SMALL, regimes=adv, norms=["bn"],
                                   paper={"bn": "BN 79.5 vs none 77, PGD-L2 0.25 (fig)"},
                                   regime_in_id=len(adv) > 1):
        out.append(claim)
    paper = {"bn": "LIGS ~1.0 → 0.59 (fig)", "none": "LIGS ~1.0 → 0.79 (fig)"}
    for ds in ctx.datasets:
        for arch in ctx.archs or [None]:
            for norm in [n for n in ("none", "bn") if n in ctx.norms]:
                if ctx.std is None:
                    continue
                sfx, tsfx = ctx.where(ds, arch)
                label = "no-norm" if norm == "none" else T.norm_label(norm)
                cell = _cell(ds, arch, norm, ctx.std)
                out.append(Claim(
                    f"{ctx.tag}-{norm}-rf-first{sfx}", ctx.name,
                    f"LIGS falls during {T.regime_label(ctx.std)} training of the {label} model (robust features "
                    f"are learnt first){tsfx}", "trajectory", "ligs", "decrease", 0.0,
                    f"LIGS(last epoch) − LIGS(first epoch) of {_cell_text(cell)} per seed (history)",
                    paper.get(norm, ""), dict(metric=Metric("ligs"), cell=cell), ("history",)))
    return out


def build_e3(ctx: Ctx) -> list[Claim]:
    out = []
    if "none" not in ctx.norms or ctx.std is None:
        return out
    names = {"robust": "D_R", "nonrobust": "D_NR", "rand": "D_rand", "det": "D_det"}
    for ds in ctx.datasets:
        method = dataset_method(ctx.config, ds)
        if method not in ("robust", "rand", "det"):
            continue
        dname = names[method]
        for arch in ctx.archs:
            sfx = f"@{arch}" if len(ctx.archs) > 1 else ""
            tsfx = f" ({arch})" if len(ctx.archs) > 1 else ""
            for norm in [n for n in T.sort_norms(ctx.norms) if n != "none"]:
                nl = T.norm_label(norm)
                t, b = _cell(ds, arch, norm, ctx.std), _cell(ds, arch, "none", ctx.std)
                if method == "robust":
                    out.append(pair_claim(f"E3-drobust-{norm}-clean{sfx}", ctx.name,
                                          f"On {dname}, {nl} gives higher clean accuracy than no norm (real test "
                                          f"set){tsfx}", Metric("clean_acc"), t, b, "increase",
                                          paper="BN 84 vs none 81 (fig); Ilyas D_R 84" if norm == "bn" else ""))
                    out.append(pair_claim(f"E3-drobust-{norm}-robust{sfx}", ctx.name,
                                          f"On {dname}, {nl} gives lower {ctx.head.text} than no norm{tsfx}",
                                          ctx.head, t, b, "decrease",
                                          paper="BN 45 vs none 50 (fig); Ilyas D_R 48" if norm == "bn" else ""))
                else:
                    paper = {"rand": "BN ~68 vs none ~5 (fig); Ilyas D_rand 63",
                             "det": "Ilyas D_det 44 (no BN/no-BN split)"}[method] if norm == "bn" else ""
                    out.append(pair_claim(f"E3-d{method}-{norm}-clean{sfx}", ctx.name,
                                          f"{nl} learns the non-robust features of {dname} that no-norm models "
                                          f"cannot: higher clean accuracy on the real test set than no norm{tsfx}",
                                          Metric("clean_acc"), t, b, "increase", paper=paper))
    return out


def build_e4(ctx: Ctx) -> list[Claim]:
    out = []
    if "none" not in ctx.norms or ctx.std is None:
        return out
    conflict = [d for d in ctx.datasets if dataset_method(ctx.config, d) == "conflict"] or ctx.datasets
    for ds in conflict:
        for arch in ctx.archs:
            sfx = "@" + "/".join(([str(ds)] if len(conflict) > 1 else []) + ([arch] if len(ctx.archs) > 1 else []))
            sfx = "" if sfx == "@" else sfx
            tsfx = f" ({sfx[1:]})" if sfx else ""
            for norm in [n for n in T.sort_norms(ctx.norms) if n != "none"]:
                nl = T.norm_label(norm)
                t, b = _cell(ds, arch, norm, ctx.std), _cell(ds, arch, "none", ctx.std)
                bn = norm == "bn"
                out.append(pair_claim(f"E4-{norm}-t{sfx}", ctx.name,
                                      f"Trained on conflicting features, the {nl} model scores more on labels t "
                                      f"(the NRFs' labels; clean accuracy) than the no-norm model{tsfx}",
                                      Metric("clean_acc"), t, b, "increase",
                                      paper="BN 35 vs none 3 (fig)" if bn else ""))
                out.append(pair_claim(f"E4-{norm}-t1{sfx}", ctx.name,
                                      f"The no-norm model scores more on labels t+1 (the RFs' labels; shifted "
                                      f"accuracy) than the {nl} model{tsfx}", Metric("shifted_acc"), b, t,
                                      "increase", paper="none 74 vs BN 18 (fig)" if bn else ""))
                out.append(pair_claim(f"E4-{norm}-ligs{sfx}", ctx.name,
                                      f"On conflicting features, {nl} has lower LIGS than no norm{tsfx}",
                                      Metric("ligs"), t, b, "decrease",
                                      paper="BN 0.37 vs none 0.97 (fig)" if bn else ""))
    return out


def build_e5(ctx: Ctx) -> list[Claim]:
    out = _norm_pair_claims(ctx, "nrf", "{norm} raises NRF reliance vs no norm under {regime} training",
                            Metric("nrf_reliance"), "increase")
    cells = study_cell_keys(ctx.st)
    if len(cells) >= MIN_RANK_CELLS:
        out.append(Claim(
            f"{ctx.tag}-rank", ctx.name,
            f"LIGS ranks the models the way the ground truth does: Spearman ρ(LIGS, NRF reliance) over the "
            f"study's {len(cells)} cells is negative on every seed", "rank", "spearman(ligs,nrf_reliance)",
            "decrease", 0.0, f"Spearman ρ between LIGS and NRF reliance over the study's cells of one seed "
            f"(at least {MIN_RANK_CELLS} cells)", "",
            dict(x=Metric("ligs"), y=Metric("nrf_reliance"), cells=cells)))
    return out


def _arch_factors(config: dict[str, Any], base: str, arch: str) -> dict[str, str]:
    """Factor → value in which ``arch`` differs from ``base``: width, depth, activation."""
    b, a = _arch_cfg(config, base), _arch_cfg(config, arch)
    out: dict[str, str] = {}
    if a is None or b is None:
        name = arch.lower()
        for key, fac in (("wide", "width"), ("width", "width"), ("deep", "depth"), ("depth", "depth")):
            if key in name:
                out[fac] = arch
        for act in ("leaky_relu", "selu", "elu", "gelu", "tanh"):
            if act in name:
                out["activation"] = act
                break
        return out
    if a.get("kind") != b.get("kind"):
        return {"other": arch}
    bw, aw = b.get("widths"), a.get("widths")
    if a.get("width", 1) != b.get("width", 1) or (bw and aw and len(bw) == len(aw) and bw != aw):
        out["width"] = arch
    if (a.get("depth", 1) != b.get("depth", 1) or a.get("convs_per_stage", 1) != b.get("convs_per_stage", 1)
            or a.get("blocks") != b.get("blocks") or (bw and aw and len(bw) != len(aw))):
        out["depth"] = arch
    if a.get("activation", "relu") != b.get("activation", "relu"):
        out["activation"] = str(a.get("activation", "relu"))
    return out


def _regime_factors(config: dict[str, Any], base: str, regime: str) -> dict[str, Any]:
    """Factor → (variant value, base value) in which ``regime`` differs from ``base``: wd, lr, optimizer."""
    if regime_objective(config, regime) != regime_objective(config, base):
        return {"other": regime}
    if _regime_cfg(config, regime) is None:
        name = regime.lower()
        for key, fac in (("adam", "optimizer"), ("adagrad", "optimizer"), ("wd", "wd"), ("lr", "lr")):
            if key in name:
                return {fac: ("adam" if key == "adam" else key, None)} if fac == "optimizer" else {fac: (None, None)}
        return {}
    train = dict(config.get("training") or {})
    b = {**train, **_overrides(config, base)}
    v = {**train, **_overrides(config, regime)}
    out: dict[str, Any] = {}
    if v.get("optimizer", "sgd") != b.get("optimizer", "sgd"):
        out["optimizer"] = (v.get("optimizer", "sgd"), b.get("optimizer", "sgd"))
        return out  # the optimizer comes with its own lr
    for key, fac in (("weight_decay", "wd"), ("lr", "lr")):
        if v.get(key) != b.get(key):
            out[fac] = (v.get(key), b.get(key))
    return out


def build_e6(ctx: Ctx) -> list[Claim]:
    out: list[Claim] = []
    if not ctx.archs or not ctx.regimes:
        return out
    a0, r0 = ctx.archs[0], ctx.regimes[0]
    arch_f = {a: _arch_factors(ctx.config, a0, a) for a in ctx.archs[1:]}
    reg_f = {r: _regime_factors(ctx.config, r0, r) for r in ctx.regimes[1:]}
    ligs, clean = Metric("ligs"), Metric("clean_acc")
    for ds in ctx.datasets:
        dsfx = f"@{ds}" if len(ctx.datasets) > 1 else ""
        tsfx = f" ({ds})" if len(ctx.datasets) > 1 else ""
        for norm in ctx.norms:
            nl = T.norm_label(norm)
            base = _cell(ds, a0, norm, r0)
            for fac in ("width", "depth"):
                vs = [a for a, f in arch_f.items() if set(f) == {fac}]
                for a in vs:
                    s = f"-{a}" if len(vs) > 1 else ""
                    out.append(pair_claim(f"E6-{norm}-{fac}-ligs{s}{dsfx}", ctx.name,
                                          f"{_cap(fac)} moves LIGS little (|Δ| ≤ {T.fmt_num(TOL_LIGS_SMALL)}): "
                                          f"{a} vs {a0}, {nl}{tsfx}", ligs, _cell(ds, a, norm, r0), base, "small",
                                          TOL_LIGS_SMALL))
            for a, f in arch_f.items():
                if set(f) != {"activation"} or f["activation"] == "relu":
                    continue
                act = f["activation"]
                out.append(pair_claim(f"E6-{norm}-{act}-ligs{dsfx}", ctx.name,
                                      f"{act.upper() if act == 'selu' else act} ({a}) has higher LIGS than ReLU "
                                      f"({a0}), {nl}{tsfx}", ligs, _cell(ds, a, norm, r0), base, "increase"))
                out.append(pair_claim(f"E6-{norm}-{act}-clean{dsfx}", ctx.name,
                                      f"{act.upper() if act == 'selu' else act} ({a}) has lower clean accuracy "
                                      f"than ReLU ({a0}), {nl}{tsfx}", clean, _cell(ds, a, norm, r0), base,
                                      "decrease"))
            for r, f in reg_f.items():
                if set(f) == {"optimizer"} and f["optimizer"][0] == "adam":
                    old_opt = str(f["optimizer"][1] or "sgd").upper()
                    out.append(pair_claim(f"E6-{norm}-adam-ligs{dsfx}", ctx.name,
                                          f"Adam ({r}) gives higher LIGS than {old_opt} "
                                          f"({r0}), {nl}{tsfx}", ligs, _cell(ds, a0, norm, r), base, "increase"))
                for fac, word in (("wd", "weight decay"), ("lr", "initial learning rate")):
                    if set(f) != {fac}:
                        continue
                    new, old = f[fac]
                    if new is not None and old is not None and not float(new) > float(old):
                        continue  # the claim is about a higher value
                    t = _cell(ds, a0, norm, r)
                    out.append(pair_claim(f"E6-{norm}-{fac}-ligs-early{dsfx}", ctx.name,
                                          f"Higher {word} ({r}) gives higher LIGS early (first epoch) than {r0}, "
                                          f"{nl}{tsfx}", ligs, t, base, "increase", history_epoch="first"))
                    out.append(pair_claim(f"E6-{norm}-{fac}-ligs-late{dsfx}", ctx.name,
                                          f"Higher {word} ({r}) gives lower final LIGS than {r0}, {nl}{tsfx}",
                                          ligs, t, base, "decrease"))
            variants = ([_cell(ds, a, norm, r0) for a in ctx.archs[1:]]
                        + [_cell(ds, a0, norm, r) for r in ctx.regimes[1:]])
            if norm != "none" and variants:
                ref = _cell(ds, a0, "none", r0)
                out.append(Claim(
                    f"E6-{norm}-vs-norm{dsfx}", ctx.name,
                    f"None of the factors moves LIGS as much as normalisation does: the largest |ΔLIGS| of a "
                    f"factor variant is below |LIGS({nl}) − LIGS(no norm)| of the base cell {a0}/{r0}{tsfx}",
                    "dominance", "ligs", "decrease", 0.0,
                    f"max over the {len(variants)} variants of |LIGS(variant) − LIGS(base)| − |LIGS(base) − "
                    f"LIGS(base with no norm)| per seed ({_cell_text(base)})", "",
                    dict(metric=ligs, base=base, variants=variants, ref=ref)))
    return out


def build_e7(ctx: Ctx) -> list[Claim]:
    out: list[Claim] = []
    std = ctx.std
    if std is None:
        return out
    by_obj: dict[str, list[str]] = {}
    for r in ctx.regimes:
        if r == std:
            continue
        key = "fgsm" if is_fgsm_training(ctx.config, r) else regime_objective(ctx.config, r)
        by_obj.setdefault(key, []).append(r)
    clean = Metric("clean_acc")
    advprop_paper = "+0.7 top-1 vs standard (EfficientNet-B7 ImageNet 84.5 → 85.2)"
    for ds in ctx.datasets:
        for arch in ctx.archs:
            sfx, tsfx = ctx.where(ds, arch)

            def c(norm, regime):
                return _cell(ds, arch, norm, regime)

            def rs(key, r):
                return f"-{r}" if len(by_obj.get(key, [])) > 1 else ""

            if "bn" in ctx.norms:
                for m in by_obj.get("mixed", []):
                    out.append(pair_claim(f"E7-bn-mixed-clean{rs('mixed', m)}{sfx}", ctx.name,
                                          f"Mixing clean and adversarial data through one shared BN ({m}) lowers "
                                          f"clean accuracy vs standard training{tsfx}", clean, c("bn", m),
                                          c("bn", std), "decrease"))
                for a in by_obj.get("advprop", []):
                    for m in by_obj.get("mixed", []):
                        s = rs("advprop", a) + rs("mixed", m)
                        out.append(pair_claim(f"E7-bn-advprop-clean{s}{sfx}", ctx.name,
                                              f"AdvProp's auxiliary BN ({a}) repairs it: higher clean accuracy "
                                              f"than mixing through one BN ({m}){tsfx}", clean, c("bn", a),
                                              c("bn", m), "increase", paper=advprop_paper))
                    out.append(pair_claim(f"E7-bn-advprop-std{rs('advprop', a)}{sfx}", ctx.name,
                                          f"AdvProp ({a}) raises clean accuracy or keeps it (drop ≤ "
                                          f"{_tol_text('clean_acc', TOL_KEEP)}) vs standard training{tsfx}", clean,
                                          c("bn", a), c("bn", std), "increase_or_keep", TOL_KEEP,
                                          paper=advprop_paper))
                if "none" in ctx.norms:
                    for a in by_obj.get("adversarial", []):
                        out.append(pair_claim(f"E7-bn-adv-robust{rs('adversarial', a)}{sfx}", ctx.name,
                                              f"Under adversarial-only training ({T.regime_label(a)}) BN's effect "
                                              f"on {ctx.head.text} is small (|Δ| ≤ "
                                              f"{_tol_text(ctx.head.label, TOL_SMALL)}){tsfx}", ctx.head,
                                              c("bn", a), c("none", a), "small", TOL_SMALL))
            for norm in T.sort_norms(ctx.norms):
                for f in by_obj.get("fgsm", []):
                    out.append(pair_claim(f"E7-{norm}-fgsm-robust{rs('fgsm', f)}{sfx}", ctx.name,
                                          f"FGSM adversarial training ({f}) raises {ctx.head.text} over standard "
                                          f"training, {T.norm_label(norm)}{tsfx}", ctx.head, c(norm, f),
                                          c(norm, std), "increase"))
    return out


def build_e8(ctx: Ctx) -> list[Claim]:
    out: list[Claim] = []
    std = ctx.std
    if std is None:
        return out
    regs = [r for r in ctx.regimes if regime_objective(ctx.config, r) == "ligs_reg"]
    regs.sort(key=lambda r: ligs_weight(_regime_cfg(ctx.config, r) or {}))
    for ds in ctx.datasets:
        for arch in ctx.archs:
            sfx, tsfx = ctx.where(ds, arch)
            for norm in T.sort_norms(ctx.norms):
                nl = T.norm_label(norm)
                for r in regs:
                    cfg = _regime_cfg(ctx.config, r)
                    w = ligs_weight(cfg) if cfg is not None else None
                    what = f"LIGS regularisation ({r}" + (f", weight {T.fmt_num(w)})" if w is not None else ")")
                    t, b = _cell(ds, arch, norm, r), _cell(ds, arch, norm, std)
                    out.append(pair_claim(f"E8-{norm}-{r}-robust{sfx}", ctx.name,
                                          f"{what} raises {ctx.head.text} over standard training, {nl}{tsfx}",
                                          ctx.head, t, b, "increase"))
                    out.append(pair_claim(f"E8-{norm}-{r}-clean{sfx}", ctx.name,
                                          f"{what} changes clean accuracy little (|Δ| ≤ "
                                          f"{_tol_text('clean_acc', TOL_SMALL)}), {nl}{tsfx}", Metric("clean_acc"),
                                          t, b, "small", TOL_SMALL))
                    out.append(pair_claim(f"E8-{norm}-{r}-ligs{sfx}", ctx.name,
                                          f"{what} raises LIGS, {nl}{tsfx}", Metric("ligs"), t, b, "increase"))
    return out


def transfer_claim(cid: str, study: str, text: str, delta: str, treat: dict[str, Any], base: dict[str, Any], *,
                   dataset: str | None, metric: str = "success_rate", group: tuple[str, ...] = (),
                   shared: bool = True, targets: list[str] | None = None, direction: str = "increase",
                   paper: str = "") -> Claim:
    """Transfer comparison: mean rate over the targets of the treatment sources − that of the baseline sources.

    ``treat`` / ``base``: column → value (or list of values) on transfer.csv (source_*, target_*,
    source_final, source_epoch); ``group``: source columns matched between the two sides (the per-seed Δ
    is the mean over the groups); ``shared``: compare over the targets both sides have, neither source's
    own cell included; ``targets``: target regimes to keep (the study's transfer targets).
    """
    return Claim(cid, study, _cap(text), "transfer", metric, direction, 0.0, delta, paper,
                 dict(treat=treat, base=base, dataset=dataset, group=group, shared=shared, targets=targets,
                      study=study, value=metric), ("transfer",))


def build_e9(ctx: Ctx) -> list[Claim]:
    out: list[Claim] = []
    std = ctx.std
    tblock = ctx.st.get("transfer") or {}
    targets = [str(r) for r in tblock.get("targets", [])] or None
    for ds in ctx.datasets:
        for arch in ctx.archs or [None]:
            sfx, tsfx = ctx.where(ds, arch)
            a = {} if arch is None else {"source_arch": arch}
            if std is not None and {"none", "bn"} <= set(ctx.norms):
                out.append(transfer_claim(
                    f"E9-transfer{sfx}", ctx.name,
                    f"Sources without BN transfer better than BN sources ({T.regime_label(std)} sources; mean "
                    f"success rate over shared targets){tsfx}",
                    f"mean success rate of the no-norm source − that of the BN source over the targets both "
                    f"attacked, neither source included ({std} final sources) per seed",
                    {**a, "source_norm": "none", "source_regime": std, "source_final": True},
                    {**a, "source_norm": "bn", "source_regime": std, "source_final": True},
                    dataset=ds, targets=targets))
            for k in tblock.get("source_epochs") or []:
                s = f"-e{k}" if len(tblock.get("source_epochs")) > 1 else ""
                src_regs = targets or ([std] if std else [])
                out.append(transfer_claim(
                    f"E9-early-stop{s}{sfx}", ctx.name,
                    f"Early stopping helps transfer: epoch-{k} sources have a higher mean success rate than the "
                    f"final model of the same cell (averaged over the source cells){tsfx}",
                    f"mean success rate of the epoch-{k} source − that of the same cell's final model over the "
                    f"shared targets (the cell itself excluded), averaged over the source cells, per seed",
                    {**a, "source_final": False, "source_epoch": int(k), "source_regime": src_regs},
                    {**a, "source_final": True, "source_regime": src_regs}, dataset=ds,
                    group=("source_arch", "source_norm", "source_regime"), targets=targets))
            others = [r for r in T.sort_regimes(ctx.regimes) if r != std]
            for r in others if std is not None else []:
                s = f"-{r}" if len(others) > 1 else ""
                out.append(transfer_claim(
                    f"E9-robust-source{s}{sfx}", ctx.name,
                    f"A slightly robust source ({T.regime_label(r)}) transfers better than a standard source of "
                    f"the same norm (mean success rate, averaged over norms){tsfx}",
                    f"mean success rate of the {r} source − that of the {std} source of the same norm over the "
                    f"shared targets, averaged over the norms, per seed",
                    {**a, "source_regime": r, "source_final": True}, {**a, "source_regime": std, "source_final": True},
                    dataset=ds, group=("source_arch", "source_norm"), targets=targets))
    out.append(Claim("E9-rf-nrf", ctx.name, "Robust features transfer better than non-robust features",
                     "unmeasured", "success_rate", "increase", tables=()))
    return out


def build_e10(ctx: Ctx) -> list[Claim]:
    out: list[Claim] = []
    std = ctx.std
    fg = _fgsm_metric(ctx.config, {"attack": ctx.head.attack, "eps": ctx.head.eps})
    if std is None:
        return out
    fregs = [r for r in ctx.regimes if r != std and is_fgsm_training(ctx.config, r)]
    kinds = {a: arch_kind(ctx.config, a) for a in ctx.archs}
    tblock = ctx.st.get("transfer") or {}
    targets = [str(r) for r in tblock.get("targets", [])] or None
    for ds in ctx.datasets:
        dsfx = f"@{ds}" if len(ctx.datasets) > 1 else ""
        for arch in ctx.archs:
            kind = kinds[arch]
            if kind not in ("linear", "maxout"):
                continue
            label = kind if list(kinds.values()).count(kind) == 1 else arch
            shown = "shallow softmax" if kind == "linear" else "maxout"
            named = f" ({arch})" if arch != kind else ""
            for norm in ctx.norms:
                nsfx = f"-{norm}" if len(ctx.norms) > 1 else ""
                sfx = nsfx + dsfx
                cell = _cell(ds, arch, norm, std)
                if fg is not None:
                    thr, paper = (0.9, "99.9% error") if kind == "linear" else (0.5, "89.4% error")
                    out.append(level_claim(f"E10-{label}-fgsm-error{sfx}", ctx.name,
                                           f"FGSM fools the {shown} model{named}: {fg.text} above "
                                           f"{T.fmt_num(thr * 100)}%", fg, cell, thr, paper))
                    conf = Metric("adv_wrong_confidence", fg.attack, fg.eps)
                    out.append(level_claim(f"E10-{label}-confidence{sfx}", ctx.name,
                                           f"Misclassified FGSM examples still get high confidence on the {shown} "
                                           f"model{named}: mean max-softmax above 50%", conf, cell, 0.5,
                                           "mean confidence 79.3%" if kind == "linear" else "confidence 97.6%"))
                if kind != "maxout":
                    continue
                for f in fregs:
                    rs = f"-{f}" if len(fregs) > 1 else ""
                    tc = _cell(ds, arch, norm, f)
                    if fg is not None:
                        out.append(pair_claim(f"E10-{label}-fgsm-halves{rs}{sfx}", ctx.name,
                                              f"FGSM adversarial training ({f}) lowers the {shown} model's FGSM "
                                              f"error by more than half", fg, tc, cell, "decrease", scale=RATIO,
                                              paper="89.4% → 17.9%"))
                    out.append(pair_claim(f"E10-{label}-clean-error{rs}{sfx}", ctx.name,
                                          f"FGSM adversarial training ({f}) does not raise the {shown} model's "
                                          f"clean error by more than {_tol_text('clean_error', TOL_KEEP)}",
                                          Metric("clean_acc", error=True), tc, cell, "decrease_or_keep", TOL_KEEP,
                                          paper="0.94% → 0.84%"))
                    if targets is None or {std, f} <= set(targets):
                        out.append(transfer_claim(
                            f"E10-{label}-transfer-asym{rs}{sfx}", ctx.name,
                            f"Examples from the adversarially trained {shown} model ({f}) fool the original more "
                            f"than the reverse (transfer error rate)",
                            f"error rate of {f} → {std} − error rate of {std} → {f} "
                            f"({arch}, {T.norm_label(norm)}) "
                            f"per seed",
                            {"source_arch": arch, "source_norm": norm, "source_regime": f, "source_final": True,
                             "target_arch": arch, "target_norm": norm, "target_regime": std},
                            {"source_arch": arch, "source_norm": norm, "source_regime": std, "source_final": True,
                             "target_arch": arch, "target_norm": norm, "target_regime": f},
                            dataset=ds, metric="error_rate", shared=False, paper="40.9% vs 19.6%"))
    return out


BUILDERS: dict[str, Callable[[Ctx], list[Claim]]] = {
    "e1_norms": build_e1, "e2_trajectories": build_e2, "e3_disentangled": build_e3, "e4_conflict": build_e4,
    "e5_synthetic": build_e5, "e6_factors": build_e6, "e7_adv_training": build_e7, "e8_ligs_reg": build_e8,
    "e9_transfer": build_e9, "e10_fgsm": build_e10,
}


def expand_claims(run_info: dict[str, Any]) -> list[Claim]:
    """Concrete claims for the enabled studies of the config, study by study (E1 ... E10)."""
    config = _cfg(run_info)
    head = T.headline(run_info)
    hm = Metric("robust_acc", head["attack"], float(head["eps"]))
    enabled = T.studies(run_info)
    out: list[Claim] = []
    for name in sorted(enabled, key=lambda n: (STUDY_ORDER.index(n) if n in STUDY_ORDER else len(STUDY_ORDER), n)):
        builder = BUILDERS.get(name)
        if builder is not None:
            out += builder(Ctx(config, name, enabled[name], hm))
    return out


# ------------------------------------------------------------------------------------ measurements

def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


def _select(df: pd.DataFrame, cell: dict[str, Any]) -> pd.DataFrame:
    m = pd.Series(True, index=df.index)
    for k in CELL:
        v = cell.get(k)
        if v is not None and k in df.columns:
            m &= df[k] == v
    return df[m]


def metric_values(metrics: pd.DataFrame, cell: dict[str, Any], metric: Metric) -> pd.Series:
    """Per-seed value of one metric in one cell (several rows of a seed are averaged)."""
    m = _select(metrics, cell)
    m = m[m["metric"] == metric.name]
    if metric.attack is not None:
        m = m[m["attack"] == metric.attack]
    if metric.eps is not None:
        m = m[np.isclose(_num(m["eps"]).astype(float), float(metric.eps))]
    v = _num(m["value"])
    s = v[v.notna()].groupby(m.loc[v.notna(), "seed"]).mean()
    return 1.0 - s if metric.error else s


def history_values(history: pd.DataFrame, cell: dict[str, Any], column: str, epoch: str | int) -> pd.Series:
    """Per-seed value of a history column at the first / last / given epoch of each seed."""
    if column not in history.columns:
        return pd.Series(dtype=float)
    h = _select(history, cell).copy()
    h["_v"] = _num(h[column])
    h = h[h["_v"].notna()].sort_values("epoch")
    if h.empty:
        return pd.Series(dtype=float)
    g = h.groupby("seed")
    if epoch == "first":
        return g["_v"].first()
    if epoch == "last":
        return g["_v"].last()
    return h[h["epoch"] == int(epoch)].groupby("seed")["_v"].mean()


def _spearman(x: pd.Series, y: pd.Series) -> float:
    if len(x) < MIN_RANK_CELLS or x.nunique() < 2 or y.nunique() < 2:
        return float("nan")
    return float(x.rank().corr(y.rank()))


def _measure_pair(c: Claim, metrics: pd.DataFrame | None, history: pd.DataFrame | None) -> Measured:
    p = c.params
    if p.get("epoch") is not None:
        if history is None:
            return _empty("history.csv not available")
        treat = history_values(history, p["treat"], p["metric"].name, p["epoch"])
        base = history_values(history, p["base"], p["metric"].name, p["epoch"])
    else:
        if metrics is None:
            return _empty("metrics.csv not available")
        treat = metric_values(metrics, p["treat"], p["metric"])
        base = metric_values(metrics, p["base"], p["metric"])
    if treat.empty or base.empty:
        missing = [_cell_text(cell) for cell, s in ((p["treat"], treat), (p["base"], base)) if s.empty]
        return _empty(f"no {c.metric} for {', '.join(missing)}")
    d = (treat - p["scale"] * base).dropna()
    return Measured(d, treat, base, "" if len(d) else "no seed with both cells")


def _measure_trajectory(c: Claim, history: pd.DataFrame | None) -> Measured:
    if history is None:
        return _empty("history.csv not available")
    cell, col = c.params["cell"], c.params["metric"].name
    if col not in history.columns:
        return _empty(f"history.csv has no column {col}")
    h = _select(history, cell).copy()
    h["_v"] = _num(h[col])
    h = h[h["_v"].notna()].sort_values("epoch")
    if h.empty:
        return _empty(f"no history for {_cell_text(cell)}")
    g = h.groupby("seed")
    first, last = g["_v"].first(), g["_v"].last()
    keep = g["epoch"].max() > g["epoch"].min()
    d = (last - first)[keep]
    return Measured(d, last[keep], first[keep], "" if len(d) else "fewer than two epochs in the history")


def _measure_level(c: Claim, metrics: pd.DataFrame | None) -> Measured:
    if metrics is None:
        return _empty("metrics.csv not available")
    v = metric_values(metrics, c.params["cell"], c.params["metric"])
    if v.empty:
        return _empty(f"no {c.metric} for {_cell_text(c.params['cell'])}")
    return Measured(v - c.params["threshold"], v, pd.Series(np.nan, index=v.index))


def _measure_rank(c: Claim, metrics: pd.DataFrame | None) -> Measured:
    if metrics is None:
        return _empty("metrics.csv not available")
    rows = []
    for ds, arch, norm, regime in c.params["cells"]:
        cell = _cell(ds, arch, norm, regime)
        x, y = metric_values(metrics, cell, c.params["x"]), metric_values(metrics, cell, c.params["y"])
        for seed in x.index.intersection(y.index):
            rows.append((seed, x[seed], y[seed]))
    if not rows:
        return _empty(f"no cell with both {c.params['x'].name} and {c.params['y'].name}")
    df = pd.DataFrame(rows, columns=["seed", "x", "y"])
    rho = pd.Series({s: _spearman(g["x"], g["y"]) for s, g in df.groupby("seed")}, dtype=float).dropna()
    nan = pd.Series(np.nan, index=rho.index)
    return Measured(rho, nan, nan, "" if len(rho) else f"fewer than {MIN_RANK_CELLS} cells per seed")


def _measure_dominance(c: Claim, metrics: pd.DataFrame | None) -> Measured:
    if metrics is None:
        return _empty("metrics.csv not available")
    p = c.params
    base = metric_values(metrics, p["base"], p["metric"])
    ref = metric_values(metrics, p["ref"], p["metric"])
    if base.empty or ref.empty:
        missing = [_cell_text(cell) for cell, s in ((p["base"], base), (p["ref"], ref)) if s.empty]
        return _empty(f"no {c.metric} for {', '.join(missing)}")
    var = [metric_values(metrics, v, p["metric"]) for v in p["variants"]]
    moves = pd.concat([(v - base).abs() for v in var if not v.empty], axis=1) if any(not v.empty for v in var) else None
    if moves is None:
        return _empty(f"no {c.metric} for any factor variant")
    factor = moves.max(axis=1, skipna=True)
    norm = (base - ref).abs()
    d = (factor - norm).dropna()
    return Measured(d, factor, norm, "" if len(d) else "no seed with the base, the variants and the no-norm cell")


def _transfer_frame(transfer: pd.DataFrame, study: str, dataset: str | None, value: str) -> pd.DataFrame:
    t = transfer.copy()
    if "study" in t.columns and (t["study"].astype(str).str.strip() != "").any():
        t = t[t["study"].astype(str) == study]  # tables before the study column: every row
    if dataset is not None and "dataset" in t.columns:
        t = t[t["dataset"] == dataset]
    if "source_final" in t.columns:
        t["source_final"] = t["source_final"].map(
            lambda v: v if isinstance(v, bool) else str(v).strip().lower() in ("true", "1", "yes"))
    else:
        t["source_final"] = True
    t["source_epoch"] = _num(t["source_epoch"]) if "source_epoch" in t.columns else np.nan
    t["_v"] = _num(t[value]) if value in t.columns else np.nan
    return t[t["_v"].notna()]


def _match(t: pd.DataFrame, cond: dict[str, Any]) -> pd.DataFrame:
    m = pd.Series(True, index=t.index)
    for k, v in cond.items():
        if k == "source_epoch":
            m &= np.isclose(t[k].astype(float), float(v))
        elif isinstance(v, (list, tuple, set)):
            m &= t[k].isin(list(v))
        else:
            m &= t[k] == v
    return t[m]


_TGT = ["target_arch", "target_norm", "target_regime"]
_SRC = ["source_arch", "source_norm", "source_regime"]


def _measure_transfer(c: Claim, transfer: pd.DataFrame | None) -> Measured:
    if transfer is None:
        return _empty("transfer.csv not available")
    p = c.params
    if p["value"] not in transfer.columns:
        return _empty(f"transfer.csv has no column {p['value']}")
    t = _transfer_frame(transfer, p["study"], p["dataset"], p["value"])
    if p.get("targets"):
        t = t[t["target_regime"].isin(p["targets"])]
    ta, tb = _match(t, p["treat"]), _match(t, p["base"])
    if ta.empty or tb.empty:
        side = "treatment" if ta.empty else "baseline"
        what = ", ".join(f"{k}={v}" for k, v in (p["treat"] if ta.empty else p["base"]).items())
        return _empty(f"no transfer rows for the {side} sources ({what})")
    group = list(p["group"])
    rows = {}
    for seed in sorted(set(ta["seed"]) & set(tb["seed"])):
        a_s, b_s = ta[ta["seed"] == seed], tb[tb["seed"] == seed]
        keys = ([tuple(k) for k in a_s[group].drop_duplicates().itertuples(index=False)] if group else [()])
        vals = []
        for key in keys:
            ga = a_s[(a_s[group] == pd.Series(key, index=group)).all(axis=1)] if group else a_s
            gb = b_s[(b_s[group] == pd.Series(key, index=group)).all(axis=1)] if group else b_s
            if ga.empty or gb.empty:
                continue
            ma = ga.groupby(_TGT)["_v"].mean()
            mb = gb.groupby(_TGT)["_v"].mean()
            if p["shared"]:
                own = {tuple(r) for r in pd.concat([ga[_SRC], gb[_SRC]]).drop_duplicates().itertuples(index=False)}
                shared = [k for k in ma.index.intersection(mb.index) if tuple(k) not in own]
                if not shared:
                    continue
                vals.append((float(ma.loc[shared].mean()), float(mb.loc[shared].mean())))
            else:
                vals.append((float(ma.mean()), float(mb.mean())))
        if vals:
            rows[seed] = (np.mean([v[0] for v in vals]), np.mean([v[1] for v in vals]))
    if not rows:
        return _empty("no shared targets")
    treat = pd.Series({s: v[0] for s, v in rows.items()}, dtype=float)
    base = pd.Series({s: v[1] for s, v in rows.items()}, dtype=float)
    return Measured(treat - base, treat, base)


def measure(c: Claim, metrics: pd.DataFrame | None = None, history: pd.DataFrame | None = None,
            transfer: pd.DataFrame | None = None) -> Measured:
    """Per-seed Δ and the compared quantities of one claim."""
    if c.kind in ("pair", "ratio"):
        return _measure_pair(c, metrics, history)
    if c.kind == "trajectory":
        return _measure_trajectory(c, history)
    if c.kind == "level":
        return _measure_level(c, metrics)
    if c.kind == "rank":
        return _measure_rank(c, metrics)
    if c.kind == "dominance":
        return _measure_dominance(c, metrics)
    if c.kind == "transfer":
        return _measure_transfer(c, transfer)
    if c.kind == "unmeasured":
        return _empty(UNMEASURED)
    raise ValueError(f"unknown claim kind {c.kind!r}")


def paired_diffs(c: Claim, metrics: pd.DataFrame | None, history: pd.DataFrame | None,
                 transfer: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """Per-seed differences Δ_s for a claim, and a note when data are missing."""
    m = measure(c, metrics, history, transfer)
    return m.diff, m.note


def _stats(s: pd.Series) -> tuple[float, float, float]:
    s = pd.to_numeric(s, errors="coerce").dropna()
    if s.empty:
        return np.nan, np.nan, np.nan
    return float(s.mean()), float(s.min()), float(s.max())


def evaluate(run_info: dict[str, Any], metrics: pd.DataFrame | None = None,
             history: pd.DataFrame | None = None, transfer: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims table (columns :data:`COLUMNS`) for the enabled studies."""
    rows = []
    for c in expand_claims(run_info):
        m = measure(c, metrics, history, transfer)
        d = pd.to_numeric(m.diff, errors="coerce").astype(float)
        d = d[np.isfinite(d)]
        n = int(len(d))
        v = verdict(d.values, c.direction, c.tol)
        note = m.note
        if v == INCONCLUSIVE and not note:
            note = (f"fewer than {MIN_SEEDS} seeds" if n < MIN_SEEDS
                    else "no difference on any seed" if bool((d == 0).all()) else "seeds disagree")
        seeds = d.index
        tm = _stats(m.treatment.reindex(seeds)) if n else (np.nan,) * 3
        bm = _stats(m.baseline.reindex(seeds)) if n else (np.nan,) * 3
        dm = _stats(d)
        rows.append({
            "id": c.id, "study": c.study, "claim": c.text, "rule": c.rule, "metric": c.metric,
            "direction": c.direction, "tolerance": c.tol,
            "treatment_mean": tm[0], "treatment_min": tm[1], "treatment_max": tm[2],
            "baseline_mean": bm[0], "baseline_min": bm[1], "baseline_max": bm[2],
            "mean_diff": dm[0], "min_diff": dm[1], "max_diff": dm[2], "n_seeds": n,
            "paper": c.paper, "verdict": v, "note": note,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def needed_tables(run_info: dict[str, Any]) -> set[str]:
    """The tables (metrics, history, transfer) the enabled studies' claims read."""
    return {t for c in expand_claims(run_info) for t in c.tables}


def load_and_evaluate(tables_dir: str | Path) -> pd.DataFrame:
    """Read the tables the enabled studies' claims need from ``tables_dir`` and evaluate the claims.

    Raises :class:`normrobust.tables.MissingInputError` naming the file when a needed table is absent.
    """
    info = T.read_run_info(tables_dir, required=True)
    need = needed_tables(info)
    frames = {name: (T.read_table(tables_dir, name) if name in need else None)
              for name in ("metrics", "history", "transfer")}
    return evaluate(info, frames["metrics"], frames["history"], frames["transfer"])


def write_claims(df: pd.DataFrame, out: str | Path) -> None:
    from .utils import atomic_write

    text = df.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    atomic_write(out, lambda f: f.write(text), mode="w")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust claims", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tables", default="results/tables", help="directory of the aggregated tables")
    p.add_argument("--out", default=None, help="output CSV (default: TABLES/claims.csv)")
    args = p.parse_args(argv)
    out = Path(args.out) if args.out else Path(args.tables) / "claims.csv"
    try:
        df = load_and_evaluate(args.tables)
    except T.MissingInputError as e:
        print(f"normrobust claims: error: {e}", file=sys.stderr)
        return 1
    write_claims(df, out)
    counts = df["verdict"].value_counts()
    from .utils import log

    log(f"claims: {len(df)} checked ({', '.join(f'{k} {counts.get(k, 0)}' for k in (PASS, FAIL, INCONCLUSIVE))})"
        f" -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
