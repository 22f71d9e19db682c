"""Test-sampling error of a measured quantity: how much a number would move on another draw of test images.

Used by the evaluation (the ``se`` column of metrics.csv) and by the verdict rule's test-sampling floor
(normrobust.analysis.verdicts). No torch: the analysis imports it.
"""

from __future__ import annotations

import math

import numpy as np


def rate_se(rate, n):
    """Standard error of a fraction measured on ``n`` images, Agresti-Coull: with p = (k + 2) / (n + 4),
    sqrt(p (1 − p) / (n + 4)). Never 0: a rate of 0 or 1 on n images is still uncertain. Works on numbers and
    on numpy arrays / pandas Series; NaN where the rate or n is missing or n < 1."""
    r, m = np.asarray(rate, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = (r * m + 2.0) / (m + 4.0)
        se = np.sqrt(p * (1.0 - p) / (m + 4.0))
    se = np.where(np.isfinite(r) & np.isfinite(m) & (m >= 1), se, np.nan)
    return float(se) if se.ndim == 0 else se


def mean_se(sd: float, n: int) -> float:
    """Standard error of a mean over ``n`` images with per-image standard deviation ``sd`` (NaN if n < 2)."""
    return sd / math.sqrt(n) if n >= 2 and math.isfinite(sd) else math.nan
