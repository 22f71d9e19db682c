"""Test-sampling variance from per-image outcomes: one estimator for every statistic that is a mean over images.

Every cell of a dataset is scored on the same first ``n`` test images (``images.csv``: a cell's quantity per image,
in the test set's order, written by :mod:`normrobust.perimage`; ``transfer.csv``'s ``images``: per image, 1 the
target was fooled, 0 not, NaN wrong clean). A statistic that is the mean of a per-image vector ``v`` over its valid
images (NaN: an image without a value), ``m = nanmean(v)`` (an accuracy, a rate, LIGS, NRF reliance, a transfer
success rate), has the *influence* per image

    φ_i = (v_i − m) · valid_i / p_valid      (0 where image i has no value; p_valid: the share of valid images),

so that ``m − E m ≈ mean_i φ_i`` (the delta method; for a ratio such as a success rate over the images a target got
right clean, the same formula). A linear combination ``Σ_k w_k m_k`` of such statistics measured on the *same* n
images then has the test-sampling variance

    Var_i( Σ_k w_k φ_k,i ) / n      (sample variance over the images, n − 1 in its denominator),

which holds the covariances between cells that share images: two models that err on the same images have a small
paired variance, two that predict identically none; the K targets of a transfer average, which see the same
adversarial images, are not taken as independent. One cell alone (k = 1) gets the ordinary per-image variance.

The per-image vector of a cell is used only where it is unambiguous and current: exactly one ``images.csv`` row per
seed for the metric, decodable, whose nanmean equals the metrics.csv value the claim reads (a stale or foreign
images.csv is ignored); otherwise the claim keeps the variance from the recorded standard errors (its fallback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..perimage import decode
from .metric import Metric
from .selection import MODEL_KEYS, select

MATCH_ATOL = 1e-5  # |nanmean(per-image) − recorded value| allowed (the CSVs keep 6 significant digits)


def decoded(text: Any, n: Any) -> np.ndarray | None:
    """The per-image values of an encoded field (:func:`normrobust.perimage.decode`); None where absent or bad."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        n = float(n)
        return decode(text.strip(), int(n)) if np.isfinite(n) and n >= 1 else None
    except (TypeError, ValueError):
        return None


def influence(values: Any) -> np.ndarray | None:
    """φ_i = (v_i − m)·valid_i / p_valid of the statistic m = nanmean(v) (module docstring), over the last axis (a
    1-d vector: None with no valid value; a batch of vectors, as the calibration tests simulate: NaN rows)."""
    v = np.asarray(values, dtype=float)
    valid = ~np.isnan(v)
    k = valid.sum(axis=-1, keepdims=True)
    if v.ndim == 1 and not k[0]:
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(valid, v, 0.0).sum(axis=-1, keepdims=True) / k
        return np.where(valid, np.where(valid, v, 0.0) - m, 0.0) * (v.shape[-1] / k)


def variance(influences: Sequence[np.ndarray | None], weights: Sequence[float]) -> Any:
    """Var_i(Σ_k w_k φ_k,i) / n over the last axis (the images): the test-sampling variance of Σ_k w_k m_k over the
    same n images (a float, or an array for batches); NaN when an influence is missing, their numbers of images
    differ or n < 2."""
    if not influences or any(f is None for f in influences) or len({np.shape(f)[-1] for f in influences}) != 1:
        return float("nan")
    z = sum(w * f for w, f in zip(weights, influences))
    n = z.shape[-1]
    if n < 2:
        return float("nan")
    out = np.var(z, axis=-1, ddof=1) / n
    return float(out) if np.ndim(out) == 0 else out


def matches(stat: float, recorded: float) -> bool:
    """The per-image vector's mean is the value the tables record (within their printed precision)."""
    return bool(np.isfinite(stat) and np.isfinite(recorded)
                and abs(stat - recorded) <= MATCH_ATOL * max(1.0, abs(recorded)))


def cell_influences(images: pd.DataFrame | None, metric: Metric, cell: dict[str, Any],
                    values: pd.Series) -> dict[Any, np.ndarray]:
    """Seed → the influence vector of ``metric`` in ``cell`` (negated for an error metric, 1 − value), for the seeds
    of ``values`` (:meth:`Metric.values`) with exactly one matching ``images.csv`` row whose nanmean is that value."""
    if images is None or images.empty or "values" not in images.columns:
        return {}
    rows = select(metric.rows(images), **{k: cell.get(k) for k in MODEL_KEYS})
    out = {}
    for seed, g in rows.groupby("seed"):
        if len(g) != 1 or seed not in values.index:
            continue
        v = decoded(g["values"].iloc[0], g["n"].iloc[0])
        if v is None or np.isnan(v).all():
            continue
        stat = float(np.nanmean(v))
        if not matches(1.0 - stat if metric.error else stat, float(values[seed])):
            continue
        f = influence(v)
        out[seed] = -f if metric.error else f
    return out


def combined(images: pd.DataFrame | None, metric: Metric, parts: Sequence[tuple[dict[str, Any], pd.Series]],
             weights: Sequence[float], fallback: pd.Series | None = None, floor: bool = False) -> pd.Series:
    """Seed → the paired test-sampling variance of Σ_k w_k·value(cell_k) (``parts``: (cell, per-seed values)), for
    the seeds where every part has its per-image vector, ``fallback``'s elsewhere (:func:`override`); ``floor``:
    never below ``fallback`` (one cell: a rate of 0 or 1 keeps its recorded binomial error)."""
    infl = [cell_influences(images, metric, c, v) for c, v in parts]
    seeds = set.intersection(*(set(f) for f in infl)) if infl else set()
    out = pd.Series({s: variance([f[s] for f in infl], weights) for s in sorted(seeds)}, dtype=float).dropna()
    if floor and fallback is not None:
        out = np.fmax(out, fallback.astype(float).reindex(out.index))
    return override(fallback, out)


def dominance(images: pd.DataFrame | None, metric: Metric, base: tuple[dict[str, Any], pd.Series],
              ref: tuple[dict[str, Any], pd.Series], variants: Sequence[tuple[dict[str, Any], pd.Series]],
              fallback: pd.Series | None = None) -> pd.Series:
    """Seed → paired variance of Δ = max_j |v_j − b| − |b − r| (:class:`~normrobust.analysis.claims.Dominance`) by
    the delta method at the observed signs: Δ = σ_j (v_j − b) − σ_r (b − r) for each variant j, the largest of
    their variances (as the fallback bounds the maximum by its largest variance); ``fallback``'s for seeds lacking
    a vector."""
    fb, fr = (cell_influences(images, metric, c, v) for c, v in (base, ref))
    fv = [cell_influences(images, metric, c, v) for c, v in variants]
    out = {}
    for s in sorted(set(fb) & set(fr)):
        b, r = float(base[1][s]), float(ref[1][s])
        sr = 1.0 if b >= r else -1.0
        cands = []
        for (_, vals), f in zip(variants, fv):
            if s not in vals.index or not np.isfinite(vals[s]):
                continue
            if s not in f:
                cands = []
                break
            sj = 1.0 if vals[s] >= b else -1.0
            cands.append(variance([f[s], fb[s], fr[s]], (sj, -(sj + sr), sr)))
        if cands:
            out[s] = max(cands)
    return override(fallback, pd.Series(out, dtype=float).dropna())


def override(fallback: pd.Series | None, per_image: pd.Series) -> pd.Series:
    """The per-image variances where they exist, the fallback's elsewhere."""
    if fallback is None:
        return per_image
    return per_image.combine_first(fallback.astype(float)) if len(per_image) else fallback
