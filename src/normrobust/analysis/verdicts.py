"""The verdict rule: PASS / FAIL / INCONCLUSIVE from a claim's interval, fixed before any run.

Every claim computes one number per seed, ``Δ_s`` (see :mod:`normrobust.analysis.claims`), and, per seed, the
variance ``v_s`` that sampling the test images alone puts on ``Δ_s`` (from the standard errors the evaluation
records; see :func:`normrobust.analysis.claims.Measured`). With ``n`` seeds:

    mean = mean_s Δ_s,   s = standard deviation of Δ_s over the seeds (n − 1 in the denominator),
    half-width = sqrt( (t_{0.975, n−1} · s / √n)² + (1.96 · √mean_s v_s)² ),
    interval = mean ± half-width   (95 %).

The first term is the seed-to-seed variation (a t-interval: with 2 seeds t = 12.7, with 3 seeds 4.3); the second
is the test-sampling floor. Every seed is evaluated on the *same* test images, so their test-sampling error does
not average out over seeds: it is added in full, never divided by n. Where a claim compares two models the floor
treats their errors as independent, which over-states it (paired models err on many of the same images): the
rule errs toward INCONCLUSIVE, never toward a verdict.

Verdicts from the interval ``[lo, hi]`` and the claim's direction (``tol`` ≥ 0 in the metric's own units):

* ``increase``: PASS if lo > 0; FAIL if hi < 0.       ``decrease``: PASS if hi < 0; FAIL if lo > 0.
* ``increase_or_keep``: PASS if lo > −tol; FAIL if hi < −tol.  ``decrease_or_keep``: PASS if hi < tol; FAIL if
  lo > tol.
* ``small``: PASS if −tol < lo and hi < tol (an equivalence test); FAIL if lo > tol or hi < −tol.
* otherwise, or with fewer than :data:`MIN_SEEDS` seeds (no estimate of the seed spread): INCONCLUSIVE.

Calibration (tests/test_verdicts.py): on simulated claims with no effect (or, for ``small``, an effect exactly at
the tolerance) the rule gives PASS or FAIL in about 5 % of cases (its nominal level; within the Monte Carlo error of
the test), fewer where an interval is conservative; the measured rate is printed by the test.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .labels import fmt_num, metric_is_percent

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
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


def interval(diffs: Any, variances: Any = None) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n) of per-seed differences with per-seed test-sampling variances (module docstring).

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
    mean, lo, hi = intervals(d[None, :], v[None, :])
    return float(mean[0]), float(lo[0]), float(hi[0]), n


def intervals(d: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`interval` of many claims at once: ``d`` and ``v`` are [claims, seeds] arrays without missing Δ (the
    calibration test simulates thousands). Returns (mean, lo, hi), each [claims]."""
    n = d.shape[1]
    mean = d.mean(axis=1)
    if n < MIN_SEEDS:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    v = np.where(np.isnan(v), 0.0, v)
    seed_term = t975(n - 1) * d.std(axis=1, ddof=1) / math.sqrt(n)
    test_term = Z975 * np.sqrt(v.mean(axis=1))
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


def verdict(diffs: Any, direction: str, tol: float = 0.0, variances: Any = None) -> str:
    """The verdict of per-seed differences (and their test-sampling variances)."""
    _, lo, hi, _ = interval(diffs, variances)
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
