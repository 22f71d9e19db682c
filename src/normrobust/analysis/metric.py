"""One measured quantity, :class:`Metric`: what a table column shows, a figure panel plots and a claim compares.

A metric is a ``metric`` of ``metrics.csv`` (``clean_acc``, ``robust_acc`` at an attack and ε, ``ligs``, ...) or
a column of ``history.csv``, optionally as an error (1 − value: clean error, FGSM error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..sampling import rate_se
from .labels import attack_eps_label, fmt_num, metric_is_percent, metric_label
from .selection import MODEL_KEYS, select

DEFAULT_HEADLINE = {"attack": "pgd_linf", "eps": 4}


@dataclass(frozen=True)
class Metric:
    """A metric of metrics.csv (at ``attack`` / ``eps`` where given) or a column of history.csv."""

    name: str
    attack: str | None = None
    eps: float | None = None
    error: bool = False  # 1 − value (FGSM error, clean error)
    label: str = ""  # a table header; default :attr:`text`

    @property
    def key(self) -> str:
        """As written to the claims CSV's metric column, e.g. ``robust_acc@pgd_linf:4``, ``fgsm_error@fgsm_linf:8``."""
        base = self.name
        if self.error:
            base = "clean_error" if self.name == "clean_acc" else ("fgsm_error" if "fgsm" in str(self.attack)
                                                                   else "robust_error")
        if self.attack is not None and self.eps is not None:
            return f"{base}@{self.attack}:{fmt_num(self.eps)}"
        return base

    @property
    def text(self) -> str:
        """In words: 'PGD-L∞ ε=4/255 robust accuracy', 'clean error', 'LIGS'."""
        if self.attack is not None and self.eps is not None:
            return f"{attack_eps_label(self.attack, self.eps)} {'error' if self.error else metric_label(self.name)}"
        if self.error:
            return "clean error" if self.name == "clean_acc" else f"1 − {metric_label(self.name)}"
        return metric_label(self.name)

    @property
    def header(self) -> str:
        return self.label or self.text

    @property
    def percent(self) -> bool:
        return metric_is_percent(self.key)

    def rows(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """The rows of metrics.csv this metric reads (its value column is ``value``, errors not yet applied)."""
        sel = metrics[metrics["metric"] == self.name]
        if self.attack is not None:
            sel = sel[sel["attack"] == self.attack]
        if self.eps is not None and len(sel):
            sel = sel[np.isclose(sel["eps"].astype(float), float(self.eps), rtol=1e-6, atol=1e-9)]
        return sel

    def per_seed(self, metrics: pd.DataFrame, keys: Sequence[str] = MODEL_KEYS) -> pd.Series:
        """One value per (keys, seed); several rows of a seed averaged; errors applied."""
        sel = self.rows(metrics)
        sel = sel[sel["value"].notna()]
        s = sel.groupby(list(keys) + ["seed"])["value"].mean()
        return 1.0 - s if self.error else s

    def values(self, metrics: pd.DataFrame, cell: dict[str, Any]) -> pd.Series:
        """Per-seed values in one cell (keys dataset, arch, norm, regime; None: any), indexed by seed."""
        m = select(self.rows(metrics), **{k: cell.get(k) for k in MODEL_KEYS})
        m = m[m["value"].notna()]
        s = m.groupby("seed")["value"].mean()
        return 1.0 - s if self.error else s

    def variances(self, metrics: pd.DataFrame, cell: dict[str, Any]) -> pd.Series:
        """Per-seed test-sampling variance of :meth:`values` (se² from metrics.csv's ``se`` column; several rows of
        a seed averaged: Σ se² / k²), indexed by seed; NaN where no standard error was recorded."""
        m = select(self.rows(metrics), **{k: cell.get(k) for k in MODEL_KEYS})
        m = m[m["value"].notna()]
        if "se" not in m.columns:
            return pd.Series(np.nan, index=m["seed"].unique(), dtype=float)
        v = m.assign(_v=m["se"].astype(float) ** 2).groupby("seed")["_v"]
        return v.sum(min_count=1) / v.count().pow(2)

    def _history_rows(self, history: pd.DataFrame, cell: dict[str, Any], epoch: str | int) -> pd.DataFrame:
        """The history row of each seed at ``epoch`` ('first', 'last' or a number) where this column is measured."""
        if self.name not in history.columns:
            return history.iloc[0:0]
        h = select(history, **{k: cell.get(k) for k in MODEL_KEYS})
        h = h[h[self.name].notna()].sort_values("epoch")
        if epoch in ("first", "last"):
            return h.groupby("seed").head(1) if epoch == "first" else h.groupby("seed").tail(1)
        return h[h["epoch"] == int(epoch)].groupby("seed").head(1)

    def history_variances(self, history: pd.DataFrame, cell: dict[str, Any], epoch: str | int) -> pd.Series:
        """Per-seed test-sampling variance of :meth:`history`: LIGS from ``ligs_se``, accuracies from the value and
        ``n_test`` (normrobust.sampling.rate_se); NaN where history.csv does not record them."""
        h = self._history_rows(history, cell, epoch).set_index("seed")
        if self.name == "ligs":
            se = h["ligs_se"].astype(float) if "ligs_se" in h.columns else pd.Series(np.nan, index=h.index)
        elif "n_test" in h.columns:
            se = pd.Series(rate_se(h[self.name].astype(float), h["n_test"].astype(float)), index=h.index)
        else:
            se = pd.Series(np.nan, index=h.index)
        return (se ** 2).astype(float)

    def history(self, history: pd.DataFrame, cell: dict[str, Any], epoch: str | int) -> pd.Series:
        """Per-seed value of this history column in one cell at the ``first`` / ``last`` / given epoch."""
        if self.name not in history.columns:
            return pd.Series(dtype=float)
        h = select(history, **{k: cell.get(k) for k in MODEL_KEYS})
        h = h[h[self.name].notna()].sort_values("epoch")
        if h.empty:
            return pd.Series(dtype=float)
        if epoch in ("first", "last"):
            g = h.groupby("seed")[self.name]
            return (g.first() if epoch == "first" else g.last()).astype(float)
        return h[h["epoch"] == int(epoch)].groupby("seed")[self.name].mean()


def headline(run_info: dict[str, Any]) -> Metric:
    """The run's headline robust accuracy (config ``evaluation.headline``): the attack and ε tables and claims quote."""
    h = ((run_info.get("config") or {}).get("evaluation") or {}).get("headline") or {}
    attack, eps = str(h.get("attack", DEFAULT_HEADLINE["attack"])), float(h.get("eps", DEFAULT_HEADLINE["eps"]))
    return Metric("robust_acc", attack, eps, label=f"{attack_eps_label(attack, eps)} (%)")


CLEAN = Metric("clean_acc", label="Clean (%)")
LIGS = Metric("ligs", label="LIGS")
