"""The verdict rule: PASS / FAIL / INCONCLUSIVE from a claim's interval, fixed before any run.

Every claim computes one number per seed, ``Δ_s`` (see :mod:`normrobust.analysis.claims`), and, per seed, the
variance ``v_s`` that sampling the test images alone puts on ``Δ_s`` (see :func:`normrobust.analysis.claims.Measured`).
With ``n`` seeds:

    mean = mean_s Δ_s,   s = standard deviation of Δ_s over the seeds (n − 1 in the denominator),
    half-width = sqrt( (t_{0.975, n−1} · s / √n)² + (1.96 · √V)² ),
    interval = mean ± half-width   (95 %, two-sided),

with the test-sampling term ``V = mean_s v_s`` when the sampling is *shared* by the seeds, ``V = mean_s v_s / n``
when it is independent across them. The first term is the seed-to-seed variation (a t-interval: with 2 seeds
t = 12.7, with 3 seeds 4.3); the second is the test-sampling floor:

* shared (the default): every seed is evaluated on the *same* test images, so their test-sampling error does not
  average out over seeds: it is added in full, never divided by n;
* independent (``Measured(..., shared=False)``, :class:`~normrobust.analysis.claims.Rank`): ``v_s`` is sampling
  that each seed draws afresh. A rank correlation over the cells of seed s has the variance 1.06 / (m − 3) of
  sampling m cells; each seed's cells are independently trained models, so that sampling is independent across
  seeds and the mean over n seeds has 1/n of it: more seeds (or more cells) can decide the claim.

How ``v_s`` is made (:mod:`normrobust.analysis.paired` for the per-image estimator): a claim that compares cells
scored on the same images (:class:`~normrobust.analysis.claims.Pair`, :class:`~normrobust.analysis.claims.Level`,
:class:`~normrobust.analysis.claims.Dominance` on ``metrics.csv``) takes the variance of its Δ from the per-image
outcomes of ``images.csv``: the per-image influence of each cell's statistic combined image by image, so two
models that err on the same images have a small paired variance (and two that predict identically, none); a
transfer claim (:class:`~normrobust.analysis.transfer_claim.Transfer`) combines the influences of its K targets
image by image, since they see the same adversarial images (never dividing a sum of variances by K²). Without
per-image outcomes (older tables, hand-built ones), a claim falls back to the recorded standard errors, the two
sides of a difference added as if independent (conservative for models scored on the same images, whose errors
are positively correlated); history-based claims always do.

Verdicts from the interval ``[lo, hi]`` and the claim's direction (``tol`` ≥ 0 in the metric's own units):

* ``increase``: PASS if lo > 0; FAIL if hi < 0.       ``decrease``: PASS if hi < 0; FAIL if lo > 0.
* ``increase_or_keep``: PASS if lo > −tol; FAIL if hi < −tol.  ``decrease_or_keep``: PASS if hi < tol; FAIL if
  lo > tol.
* ``small``: PASS if −tol < lo and hi < tol (an equivalence test); FAIL if lo > tol or hi < −tol.
* otherwise, or with fewer than :data:`MIN_SEEDS` seeds (no estimate of the seed spread): INCONCLUSIVE.

The level, as it is: the interval is two-sided at 95 %, and each verdict reads one side of it. On a claim whose
true effect sits exactly at the edge the verdict reads (0 for ``increase`` / ``decrease``, ∓tol for ``*_or_keep``),
a directional claim PASSes wrongly in at most 2.5 % of cases and FAILs wrongly in at most 2.5 %: 5 % of false
verdicts in all, 2.5 % in the direction the claim states. A ``small`` claim with an effect at its tolerance PASSes
in at most 2.5 % (the interval must clear that edge), and one with no effect FAILs in far fewer. The rule reaches
these rates where the draw of the test images is the whole error (every seed the same Δ); with seed-to-seed
variation the test-sampling term is conservative (each ``v_s`` also holds the part of the test sampling that the
seed spread already shows), and the rates are lower.

Calibration (tests/test_verdicts.py): simulated claims with no effect and shared per-image structure (per-image
difficulty common to cells, seeds and targets, cell × image effects common to seeds), through the claim kinds' own
estimator and, for a few, their measure(), for the paired, transfer and rank paths; the measured rates are printed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .labels import fmt_num, metric_is_percent

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
#: a claim whose precondition does not hold (normrobust.analysis.preconditions): never PASS or FAIL
NOT_TESTABLE = "NOT TESTABLE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE, NOT_TESTABLE)
#: what a claim is: evidence about the papers, or a manipulation check (true by construction of its regime or data,
#: e.g. a LIGS penalty raising LIGS): reported apart, never counted as evidence
EVIDENCE, MANIPULATION_CHECK = "evidence", "manipulation check"
DIRECTIONS = ("increase", "decrease", "increase_or_keep", "decrease_or_keep", "small")
MIN_SEEDS = 2  # fewer seeds than this: no seed spread to estimate, INCONCLUSIVE
Z975 = 1.959964  # standard normal 0.975 quantile (the test-sampling term)
# Student t 0.975 quantiles for 1..30 degrees of freedom (any statistics table); beyond 30, Cornish-Fisher
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
         2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
         2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272)


def t975(df: int) -> float:
    """Student t 0.975 quantile with ``df`` ≥ 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"t975: degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def interval(diffs: Any, variances: Any = None, shared: bool = True) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of per-seed differences with per-seed test-sampling variances (module docstring;
    ``shared``: the seeds share their test sampling, else it is independent across them).

    Seeds whose Δ is not finite are dropped; a missing (NaN) variance counts as 0. ``lo`` and ``hi`` are NaN with
    fewer than :data:`MIN_SEEDS` seeds, and infinite when a variance is infinite."""
    d = np.asarray(pd.to_numeric(pd.Series(list(diffs), dtype=float), errors="coerce"), dtype=float)
    v = (np.zeros_like(d) if variances is None
         else np.asarray(pd.to_numeric(pd.Series(list(variances), dtype=float), errors="coerce"), dtype=float))
    if v.shape != d.shape:
        raise ValueError(f"interval: {len(d)} differences but {len(v)} variances")
    keep = np.isfinite(d)
    d, v = d[keep], v[keep]
    n = int(len(d))
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean, lo, hi = intervals(d[None, :], v[None, :], shared)
    return float(mean[0]), float(lo[0]), float(hi[0]), n


def intervals(d: np.ndarray, v: np.ndarray, shared: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`interval` of many claims at once: ``d`` and ``v`` are [claims, seeds] arrays without missing Δ (the
    calibration tests simulate thousands). Returns (mean, lo, hi), each [claims]."""
    n = d.shape[1]
    mean = d.mean(axis=1)
    if n < MIN_SEEDS:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    v = np.where(np.isnan(v), 0.0, v)
    seed_term = t975(n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    test_term = Z975 * np.sqrt(v.mean(axis=1) / (1 if shared else n))
    with np.errstate(invalid="ignore"):
        half = np.where(np.isfinite(test_term), np.hypot(seed_term, test_term), np.inf)
    return mean, mean - half, mean + half


def decisions(lo: np.ndarray, hi: np.ndarray, direction: str, tol: float = 0.0) -> np.ndarray:
    """:func:`decide` of many intervals at once (an array of verdict strings)."""
    return np.array([decide(a, b, direction, tol) for a, b in zip(lo.tolist(), hi.tolist())], dtype=object)


def decide(lo: float, hi: float, direction: str, tol: float = 0.0) -> str:
    """PASS / FAIL / INCONCLUSIVE of an interval (module docstring); NaN bounds give INCONCLUSIVE."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown claim direction {direction!r} (allowed: {', '.join(DIRECTIONS)})")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    passed, failed = {
        "increase": (lo > 0, hi < 0),
        "decrease": (hi < 0, lo > 0),
        "increase_or_keep": (lo > -tol, hi < -tol),
        "decrease_or_keep": (hi < tol, lo > tol),
        "small": (-tol < lo and hi < tol, lo > tol or hi < -tol),
    }[direction]
    return PASS if passed else FAIL if failed else INCONCLUSIVE


def verdict(diffs: Any, direction: str, tol: float = 0.0, variances: Any = None, shared: bool = True) -> str:
    """The verdict of per-seed differences (and their test-sampling variances, shared by the seeds or not)."""
    _, lo, hi, _ = interval(diffs, variances, shared)
    return decide(lo, hi, direction, tol)


def tol_text(metric: str, tol: float) -> str:
    """'1 point' / '2 points' for accuracy-type metrics, else the plain number."""
    if metric_is_percent(metric):
        pts = tol * 100
        return f"{fmt_num(pts)} point" + ("" if abs(pts - 1) < 1e-9 else "s")
    return fmt_num(tol)


def rule_text(direction: str, tol: float, metric: str, delta: str = "") -> str:
    """The verdict rule in words, with the definition of Δ first ([lo, hi]: the claim's 95 % interval of Δ)."""
    t = tol_text(metric, tol)
    core = {
        "increase": "PASS if lo > 0; FAIL if hi < 0",
        "decrease": "PASS if hi < 0; FAIL if lo > 0",
        "increase_or_keep": f"PASS if lo > −{t}; FAIL if hi < −{t}",
        "decrease_or_keep": f"PASS if hi < {t}; FAIL if lo > {t}",
        "small": f"PASS if [lo, hi] lies within ±{t}; FAIL if it lies entirely outside",
    }.get(direction)
    if core is None:
        raise ValueError(f"unknown claim direction {direction!r} (allowed: {', '.join(DIRECTIONS)})")
    core += "; else INCONCLUSIVE ([lo, hi]: 95 % interval of Δ over seeds and test images)"
    return f"Δ = {delta}; {core}" if delta else core
