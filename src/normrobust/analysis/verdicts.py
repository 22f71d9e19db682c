"""The verdict rule: PASS / FAIL / INCONCLUSIVE from a claim's per-seed differences, fixed before any run.

Every claim computes one number per seed, ``Δ_s`` (see :mod:`normrobust.analysis.claims`). With ``n`` seeds
that have a ``Δ_s``:

* **PASS** when ``n ≥ 2``, the mean of ``Δ_s`` is on the claimed side and *every* ``Δ_s`` is on the claimed
  side (the seed spread, min to max, excludes zero);
* **FAIL** when ``n ≥ 2`` and every ``Δ_s`` is on the opposite side;
* **INCONCLUSIVE** otherwise: seeds disagree, ``n < 2``, or the data are missing.

Directions: ``increase`` (claimed side ``Δ > 0``), ``decrease`` (``Δ < 0``), ``increase_or_keep`` with a
tolerance ``tol`` (claimed side ``Δ ≥ −tol``, opposite ``Δ < −tol``), ``decrease_or_keep`` (claimed ``Δ ≤ tol``,
opposite ``Δ > tol``) and ``small`` (claimed side ``|Δ| ≤ tol``; FAIL when every ``Δ_s > tol`` or every
``Δ_s < −tol``). Differences are in the metric's own units (accuracies as fractions: 0.01 = 1 point).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .labels import fmt_num, metric_is_percent

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
VERDICTS = (PASS, FAIL, INCONCLUSIVE)
DIRECTIONS = ("increase", "decrease", "increase_or_keep", "decrease_or_keep", "small")
MIN_SEEDS = 2  # fewer paired seeds than this: INCONCLUSIVE


def verdict(diffs: Any, direction: str, tol: float = 0.0) -> str:
    """PASS / FAIL / INCONCLUSIVE for per-seed differences (see the module docstring)."""
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
        raise ValueError(f"unknown claim direction {direction!r} (allowed: {', '.join(DIRECTIONS)})")
    if mean_ok and bool(np.all(ok)):
        return PASS
    if bool(np.all(bad)):
        return FAIL
    return INCONCLUSIVE


def tol_text(metric: str, tol: float) -> str:
    """'1 point' / '2 points' for accuracy-type metrics, else the plain number."""
    if metric_is_percent(metric):
        pts = tol * 100
        return f"{fmt_num(pts)} point" + ("" if abs(pts - 1) < 1e-9 else "s")
    return fmt_num(tol)


def rule_text(direction: str, tol: float, metric: str, delta: str = "") -> str:
    """The verdict rule in words, with the definition of Δ first."""
    t = tol_text(metric, tol)
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
        raise ValueError(f"unknown claim direction {direction!r} (allowed: {', '.join(DIRECTIONS)})")
    return f"Δ = {delta}; {core}" if delta else core
