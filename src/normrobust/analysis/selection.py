"""Selecting rows of the aggregated tables, ordering them, and statistics over seeds.

:func:`select` is the one filter every figure, table and claim uses: by the (dataset, arch, norm, regime) of a
study's cells and/or by column values, on ``metrics.csv`` / ``history.csv`` (columns ``arch``, ``norm``, ...)
and on ``transfer.csv`` (``source_arch``, ... with ``prefix="source_"``). :func:`seed_stats` gives mean, sample
std (ddof=1), min, max and the number of seeds, each seed counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .labels import NORM_ORDER, REGIME_ORDER, order_key

#: a cell without its seed: what a table row or a claim side is about
MODEL_KEYS = ("dataset", "arch", "norm", "regime")


def select(df: pd.DataFrame, cells: Iterable[Sequence[str]] | None = None, prefix: str = "",
           **conds: Any) -> pd.DataFrame:
    """Rows of ``df`` in ``cells`` (tuples of dataset, arch, norm, regime; None: all) whose columns equal
    ``conds`` (a value, or a list of values; None: no condition).

    ``prefix`` names the cell columns (``source_`` on transfer.csv; its dataset column has no prefix)."""
    if df.empty:
        return df
    mask = pd.Series(True, index=df.index)
    if cells is not None:
        want = {tuple(str(v) for v in c) for c in cells}
        cols = ["dataset"] + [prefix + k for k in MODEL_KEYS[1:]]
        keys = zip(*(df[c].astype(str) for c in cols))
        mask &= pd.Series([k in want for k in keys], index=df.index, dtype=bool)
    for col, val in conds.items():
        if val is None:
            continue
        if isinstance(val, (list, tuple, set)):
            mask &= df[col].isin(list(val))
        else:
            mask &= df[col] == val
    return df[mask]


def seed_stats(df: pd.DataFrame, keys: Sequence[str], value: str = "value") -> pd.DataFrame:
    """Mean, sample std (ddof=1), min, max and number of seeds of ``value`` per ``keys``.

    Several rows of one seed (several targets, say) are averaged first, so each seed counts once."""
    keys = list(keys)
    cols = keys + ["mean", "std", "min", "max", "n"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    d = df[df[value].notna()]
    if "seed" in d.columns and "seed" not in keys:
        d = d.groupby(keys + ["seed"], as_index=False, sort=False)[value].mean()
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby(keys, sort=False)[value]
    out = g.agg(mean="mean", std=lambda v: v.std(ddof=1) if len(v) > 1 else np.nan,
                min="min", max="max", n="count").reset_index()
    for c in ("mean", "std", "min", "max"):
        out[c] = out[c].astype(float)
    return out[cols]


def _plain_key(x: Any) -> tuple:
    """Numbers in numeric order first, then text in alphabetical order."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and np.isfinite(x):
        return (0, float(x), "")
    return (1, 0.0, str(x))


def cell_order(df: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Rows sorted by ``keys``: norms and regimes in their fixed orders, everything else plainly."""
    df = df.copy()
    order_cols = []
    for k in keys:
        if k == "norm" or k.endswith("_norm"):
            key = order_key(NORM_ORDER)
        elif k == "regime" or k.endswith("_regime"):
            key = order_key(REGIME_ORDER)
        else:
            key = _plain_key
        df[f"_o_{k}"] = df[k].map(key)
        order_cols.append(f"_o_{k}")
    return df.sort_values(order_cols, kind="stable").drop(columns=order_cols).reset_index(drop=True)


def spearman(x: Sequence[float], y: Sequence[float], min_pairs: int = 3) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN with fewer than ``min_pairs`` pairs or a
    constant side."""
    d = pd.DataFrame({"x": list(x), "y": list(y)}).dropna()
    if len(d) < min_pairs or d["x"].nunique() < 2 or d["y"].nunique() < 2:
        return float("nan")
    return float(d["x"].rank().corr(d["y"].rank()))


def nseeds_text(df: pd.DataFrame) -> str:
    """'2 seeds' / '1 seed': how many seeds the rows hold."""
    n = int(df["seed"].nunique()) if "seed" in df.columns and len(df) else 0
    return f"{n} seed{'s' if n != 1 else ''}"
