"""The transfer claim kind: one kind of source transfers better than another (transfer.csv).

See :mod:`normrobust.analysis.claims` for the claim kinds and the claims table; this kind reads ``transfer.csv``,
whose rows are (source, target) pairs with a success or error rate over ``n`` images.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..sampling import rate_se
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
            vals = []
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
            if vals:
                a = np.array(vals)  # columns: treatment mean, its variance, baseline mean, its variance
                g = len(a)
                rows[seed] = (a[:, 0].mean(), a[:, 2].mean(), (a[:, 1].sum() + a[:, 3].sum()) / g ** 2)
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


def _side_mean(per_target: pd.DataFrame, keep) -> tuple[float, float]:
    """Mean rate over the kept targets (all when ``keep`` is None) and the variance of that mean."""
    p = per_target if keep is None else per_target.loc[keep]
    return float(p["v"].mean()), float(p["var"].sum()) / len(p) ** 2
