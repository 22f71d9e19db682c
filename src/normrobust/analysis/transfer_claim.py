"""The transfer claim kind: one kind of source transfers better than another (transfer.csv).

See :mod:`normrobust.analysis.claims` for the claim kinds and the claims table; this kind reads ``transfer.csv``,
whose rows are (source, target) pairs with a success or error rate over ``n`` images.

Test-sampling variance. Δ_s is a linear combination of the rows' rates: each side's mean over its targets of the
per-target mean over its sources, treatment − baseline, averaged over the matched groups. Every row of a seed is
measured on the same clean test images (each source attacks them, each target reads the same adversarial images),
so the K targets' rates are not independent: an image that is easy to attack is easy for every target. Where the
rows record their per-image success (the ``images`` column: 1 fooled, 0 not, NaN wrong clean), the variance is
:func:`normrobust.analysis.paired.variance` of the rows' per-image influences weighted as in Δ_s, i.e. the
influence averaged over the targets, treatment − baseline paired image by image. Without them (older tables, an
``error_rate`` claim, rows of different lengths) each rate's binomial variance is summed and divided by the squared
number of targets and groups, as if they saw independent images (which understates it; the fallback of old tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..sampling import rate_se
from . import paired
from .claims import Claim, Frames, Measured, no_data
from .selection import select

SOURCE = ["source_arch", "source_norm", "source_regime"]
TARGET = ["target_arch", "target_norm", "target_regime"]


@dataclass(kw_only=True)
class Transfer(Claim):
    """Mean rate over the targets of the treatment sources − that of the baseline sources, per seed.

    ``treat`` / ``base``: column → value (or list of values) on transfer.csv (source_*, target_*, source_final,
    source_epoch); ``group``: source columns matched between the two sides (Δ_s is the mean over the groups);
    ``shared``: compare over the targets both sides have, neither source's own cell included; ``targets``:
    target regimes to keep; ``value``: success_rate or error_rate."""

    treat: dict[str, Any]
    base: dict[str, Any]
    dataset: str | None = None
    group: tuple[str, ...] = ()
    shared: bool = True
    targets: list[str] | None = None
    value: str = "success_rate"
    tables: ClassVar[tuple[str, ...]] = ("transfer",)

    def _rows(self, transfer: pd.DataFrame, cond: dict[str, Any]) -> pd.DataFrame:
        t = transfer
        for k, v in cond.items():
            if k == "source_epoch":
                t = t[np.isclose(t[k].astype(float), float(v))]
            else:
                t = select(t, **{k: v})
        return t

    def measure(self, frames: Frames) -> Measured:
        transfer = frames.get("transfer")
        if transfer is None:
            return no_data("transfer.csv not available")
        t = select(transfer, study=self.study, dataset=self.dataset, target_regime=self.targets)
        t = t[t[self.value].notna()].assign(_v=lambda d: d[self.value].astype(float))
        t = t.assign(_var=rate_se(t["_v"].to_numpy(), t["n"].to_numpy(dtype=float)) ** 2 if len(t) else 0.0)
        ta, tb = self._rows(t, self.treat), self._rows(t, self.base)
        if ta.empty or tb.empty:
            side, cond = ("treatment", self.treat) if ta.empty else ("baseline", self.base)
            what = ", ".join(f"{k}={v}" for k, v in cond.items())
            return no_data(f"no transfer rows for the {side} sources ({what})")
        group = list(self.group)
        rows = {}
        for seed in sorted(set(ta["seed"]) & set(tb["seed"])):
            a_s, b_s = ta[ta["seed"] == seed], tb[tb["seed"] == seed]
            vals, weights = [], []
            for key in ([tuple(k) for k in a_s[group].drop_duplicates().itertuples(index=False)] if group else [()]):
                ga, gb = (select(x, **dict(zip(group, key))) for x in (a_s, b_s))
                if ga.empty or gb.empty:
                    continue
                ma, mb = _per_target(ga), _per_target(gb)
                keep = ma.index.intersection(mb.index) if self.shared else None
                if self.shared:
                    sources = pd.concat([ga[SOURCE], gb[SOURCE]]).drop_duplicates()
                    own = {tuple(r) for r in sources.itertuples(index=False)}
                    keep = [k for k in keep if tuple(k) not in own]
                    if not keep:
                        continue
                vals.append(_side_mean(ma, keep) + _side_mean(mb, keep))
                weights.append(pd.concat([_row_weights(ga, keep), -_row_weights(gb, keep)]))
            if vals:
                a = np.array(vals)  # columns: treatment mean, its variance, baseline mean, its variance
                g = len(a)
                var = (a[:, 1].sum() + a[:, 3].sum()) / g ** 2
                if self.value == "success_rate":
                    var = _per_image_variance(t, pd.concat(weights) / g, var)
                rows[seed] = (a[:, 0].mean(), a[:, 2].mean(), var)
        if not rows:
            return no_data("no shared targets")
        treat = pd.Series({s: v[0] for s, v in rows.items()}, dtype=float)
        base = pd.Series({s: v[1] for s, v in rows.items()}, dtype=float)
        var = pd.Series({s: v[2] for s, v in rows.items()}, dtype=float)
        return Measured(treat - base, treat, base, var=var)


def _per_target(rows: pd.DataFrame) -> pd.DataFrame:
    """Per target: the mean rate over the rows (sources) and the variance of that mean."""
    g = rows.groupby(TARGET)
    return pd.DataFrame({"v": g["_v"].mean(), "var": g["_var"].sum() / g["_var"].count() ** 2})


def _row_weights(rows: pd.DataFrame, keep) -> pd.Series:
    """Each row's weight in its side's mean over the kept targets (all when ``keep`` is None) of the per-target mean
    over the sources: 1 / (targets · sources of its target); rows of other targets get none."""
    tgt = pd.MultiIndex.from_frame(rows[TARGET])
    kept = tgt.isin(pd.MultiIndex.from_tuples([tuple(k) for k in keep], names=TARGET)) if keep is not None \
        else np.ones(len(rows), dtype=bool)
    r = rows[kept]
    per_target = r.groupby(TARGET)["_v"].transform("count").to_numpy(dtype=float)
    return pd.Series(1.0 / (r.groupby(TARGET).ngroups * per_target), index=r.index)


def _per_image_variance(t: pd.DataFrame, weights: pd.Series, fallback: float) -> float:
    """Var_i(Σ_rows w·φ_row,i) / n over the rows' per-image successes (module docstring); ``fallback`` where a row
    lacks them, they disagree with its rate, or the rows' lengths differ."""
    if "images" not in t.columns or "n_total" not in t.columns:
        return fallback
    w = weights.groupby(level=0).sum()  # a row on both sides (never, by construction) would net out
    infl = []
    for i, wi in w.items():
        v = paired.decoded(t.at[i, "images"], t.at[i, "n_total"])
        if v is None or np.isnan(v).all() or not paired.matches(float(np.nanmean(v)), float(t.at[i, "_v"])):
            return fallback
        infl.append(paired.influence(v))
    var = paired.variance(infl, w.to_numpy())
    return var if np.isfinite(var) else fallback


def _side_mean(per_target: pd.DataFrame, keep) -> tuple[float, float]:
    """Mean rate over the kept targets (all when ``keep`` is None) and the variance of that mean."""
    p = per_target if keep is None else per_target.loc[keep]
    return float(p["v"].mean()), float(p["var"].sum()) / len(p) ** 2
