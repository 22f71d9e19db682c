"""Claims from PAPER.md checked against the aggregated tables, with a verdict rule fixed in code.

Usage::

    python -m normrobust claims --tables results/tables --out results/tables/claims.csv

The claims are declared in :data:`CLAIM_SPECS` and expanded, for every *enabled* study of the config
(``run_info.json``), over the study's norms, regimes and architectures (one row per architecture when a
study has several; the id then ends in ``@arch``).

Rule (fixed before any run)
---------------------------
For each claim we compute one paired difference per seed, ``d_s``:

* norm claims (E1, E2, E5): ``d_s = metric(treatment norm) − metric(no norm)`` for the same seed, dataset,
  architecture and regime (final evaluation values from ``metrics.csv``);
* the learning-order claim (E2): ``d_s = LIGS(last epoch) − LIGS(first epoch)`` of one model (history.csv);
* the transfer claim (E9): ``d_s = mean success rate of the no-norm source − that of the BN source`` over the
  targets they share, neither source itself included, same seed, arch and source regime (transfer.csv).

With ``n`` seeds that have a difference:

* **PASS** when ``n ≥ 2``, the mean of ``d_s`` is on the claimed side and *every* ``d_s`` is on the claimed
  side (the seed spread, min to max, excludes zero);
* **FAIL** when ``n ≥ 2`` and every ``d_s`` is on the opposite side;
* **INCONCLUSIVE** otherwise: seeds disagree, ``n < 2``, or the data are missing.

Directions: ``increase`` (claimed side ``d > 0``), ``decrease`` (``d < 0``), ``increase_or_keep`` with a
tolerance ``tol`` (claimed side ``d ≥ −tol``, opposite ``d < −tol``), and ``small`` (claimed side
``|d| ≤ tol``; FAIL when every ``d_s > tol`` or every ``d_s < −tol``). Tolerances are stated in each claim's
text: 1 percentage point for "raises or keeps" and 2 points for "small effect". Differences are in the
metric's own units (accuracies as fractions: 0.01 = 1 point).

Output columns: id, study, claim, metric, direction, mean_diff, min_diff, max_diff, n_seeds, verdict, then
tolerance and note (why a claim is inconclusive for lack of data).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import tables as T
from .studies import STUDIES

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"
TOL_KEEP = 0.01  # "raises or keeps": a drop of up to 1 point still counts as kept
TOL_SMALL = 0.02  # "small effect": |difference| up to 2 points
MIN_SEEDS = 2  # fewer paired seeds than this: INCONCLUSIVE

COLUMNS = ["id", "study", "claim", "metric", "direction", "mean_diff", "min_diff", "max_diff", "n_seeds",
           "verdict", "tolerance", "note"]

STUDY_TAG = {name: s["tag"] for name, s in STUDIES.items()}


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


# ------------------------------------------------------------------------------- claim declarations

@dataclass(frozen=True)
class ClaimSpec:
    """One claim template; expanded per study over norms / regimes / archs."""

    key: str  # id suffix, e.g. "robust"
    study: str  # config study name
    kind: str  # "norm" (treatment vs none), "trajectory" (last − first epoch), "transfer"
    text: str  # with {norm}, {regime}, {metric}, {tol}
    metric: str  # metric name; "headline" → the config's headline robust accuracy
    direction: str
    tol: float = 0.0
    norms: tuple[str, ...] | None = None  # None: every norm of the study other than "none"
    regimes: tuple[str, ...] | str = ("standard",)  # or "adversarial": every non-standard regime of the study
    extra: dict[str, Any] = field(default_factory=dict)


CLAIM_SPECS: list[ClaimSpec] = [
    # E1: each norm vs no norm, standard training ([B], Galloway et al.)
    ClaimSpec("clean", "e1_norms", "norm",
              "{norm} raises clean accuracy or keeps it (drop ≤ {tol}) vs no norm under {regime} training",
              "clean_acc", "increase_or_keep", TOL_KEEP),
    ClaimSpec("robust", "e1_norms", "norm", "{norm} lowers {metric} vs no norm under {regime} training",
              "headline", "decrease"),
    ClaimSpec("ligs", "e1_norms", "norm", "{norm} lowers LIGS vs no norm under {regime} training",
              "ligs", "decrease"),
    # E2: BN vs no BN, standard and adversarial training ([B] Fig. 3)
    ClaimSpec("std-robust", "e2_trajectories", "norm", "{norm} lowers {metric} under {regime} training",
              "headline", "decrease", norms=("bn",)),
    ClaimSpec("std-ligs", "e2_trajectories", "norm", "{norm} lowers LIGS under {regime} training",
              "ligs", "decrease", norms=("bn",)),
    ClaimSpec("adv-robust", "e2_trajectories", "norm",
              "{norm}'s effect on {metric} is small (|Δ| ≤ {tol}) under {regime} training",
              "headline", "small", TOL_SMALL, norms=("bn",), regimes="adversarial"),
    ClaimSpec("rf-first", "e2_trajectories", "trajectory",
              "LIGS falls during {regime} training of the {norm} model (robust features are learnt first)",
              "ligs", "decrease", norms=("none", "bn")),
    # E5: ground truth on the generated data
    ClaimSpec("nrf", "e5_synthetic", "norm", "{norm} raises NRF reliance vs no norm under {regime} training",
              "nrf_reliance", "increase"),
    # E9: transferability
    ClaimSpec("transfer", "e9_transfer", "transfer",
              "Sources without BN transfer better than BN sources ({regime} sources; mean success rate "
              "over shared targets)", "success_rate", "increase"),
]


@dataclass
class Claim:
    """A concrete claim: everything needed to compute it."""

    id: str
    study: str
    text: str
    kind: str
    metric: str  # as written to the CSV, e.g. "robust_acc@pgd_linf:4"
    metric_name: str
    attack: str | None
    eps: float | None
    direction: str
    tol: float
    dataset: str | None
    arch: str | None
    regime: str
    treatment: str
    baseline: str = "none"


def _tol_text(metric_name: str, tol: float) -> str:
    if T.metric_is_percent(metric_name):
        pts = tol * 100
        return f"{T.fmt_num(pts)} point" + ("" if abs(pts - 1) < 1e-9 else "s")
    return T.fmt_num(tol)


def expand_claims(run_info: dict[str, Any]) -> list[Claim]:
    """Concrete claims for the enabled studies of the config, in the order of :data:`CLAIM_SPECS`."""
    head = T.headline(run_info)
    enabled = T.studies(run_info)
    out: list[Claim] = []
    for spec in CLAIM_SPECS:
        st = enabled.get(spec.study)
        if st is None:
            continue
        st_norms = [str(n) for n in st.get("norms", [])]
        st_regimes = [str(r) for r in st.get("regimes", [])]
        archs = [str(a) for a in st.get("archs", [])] or [None]
        if spec.regimes == "adversarial":
            regimes = [r for r in T.sort_regimes(st_regimes) if r != "standard"]
        else:
            regimes = [r for r in spec.regimes if r in st_regimes]
        if spec.kind == "transfer":
            norms = ["none"] if {"none", "bn"} <= set(st_norms) else []
        elif spec.norms is None:
            norms = [n for n in T.sort_norms(st_norms) if n != "none"] if "none" in st_norms else []
        else:
            norms = [n for n in spec.norms if n in st_norms and (spec.kind != "norm" or "none" in st_norms)]
        if spec.metric == "headline":
            metric_name, attack, eps = "robust_acc", head["attack"], head["eps"]
            metric_str = f"robust_acc@{attack}:{T.fmt_num(eps)}"
            metric_text = f"{T.attack_eps_label(attack, eps)} robust accuracy"
        else:
            metric_name, attack, eps, metric_str = spec.metric, None, None, spec.metric
            metric_text = T.METRIC_LABEL.get(spec.metric, spec.metric)
        tag = STUDY_TAG.get(spec.study, spec.study)
        for arch in archs:
            for regime in regimes:
                for norm in norms:
                    parts = [tag]
                    if spec.kind in ("norm", "trajectory"):
                        parts.append(norm)
                    parts.append(spec.key)
                    if len(regimes) > 1 and spec.regimes == "adversarial":
                        parts.append(regime)
                    cid = "-".join(parts) + (f"@{arch}" if len(archs) > 1 else "")
                    nlabel = T.norm_label(norm)
                    if norm == "none" and spec.kind == "trajectory":
                        nlabel = "no-norm"
                    text = spec.text.format(norm=nlabel,
                                            regime=T.regime_label(regime), metric=metric_text,
                                            tol=_tol_text(metric_name, spec.tol))
                    text = text[0].upper() + text[1:]
                    if len(archs) > 1:
                        text += f" ({arch})"
                    out.append(Claim(
                        id=cid, study=spec.study, text=text, kind=spec.kind, metric=metric_str,
                        metric_name=metric_name, attack=attack, eps=eps, direction=spec.direction,
                        tol=spec.tol, dataset=st.get("dataset"), arch=arch, regime=regime,
                        treatment=("bn" if spec.kind == "transfer" else norm)))
    return out


# ------------------------------------------------------------------------------ paired differences

def _metric_values(metrics: pd.DataFrame, c: Claim, norm: str) -> pd.Series:
    m = metrics[(metrics["metric"] == c.metric_name) & (metrics["norm"] == norm)
                & (metrics["regime"] == c.regime)]
    if c.dataset is not None:
        m = m[m["dataset"] == c.dataset]
    if c.arch is not None:
        m = m[m["arch"] == c.arch]
    if c.attack is not None:
        m = m[m["attack"] == c.attack]
    if c.eps is not None:
        m = m[np.isclose(m["eps"].astype(float), float(c.eps))]
    m = m[m["value"].notna()]
    return m.groupby("seed")["value"].mean()


def paired_diffs(c: Claim, metrics: pd.DataFrame | None, history: pd.DataFrame | None,
                 transfer: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """Per-seed differences d_s for a claim, and a note when data are missing."""
    empty = pd.Series(dtype=float)
    if c.kind == "norm":
        if metrics is None:
            return empty, "metrics.csv not available"
        treat = _metric_values(metrics, c, c.treatment)
        base = _metric_values(metrics, c, c.baseline)
        if treat.empty or base.empty:
            missing = [n for n, s in ((c.treatment, treat), (c.baseline, base)) if s.empty]
            return empty, f"no {c.metric} for norm {', '.join(missing)} ({c.regime})"
        d = (treat - base).dropna()
        return d, "" if len(d) else "no seed with both norms"
    if c.kind == "trajectory":
        if history is None:
            return empty, "history.csv not available"
        h = history[(history["norm"] == c.treatment) & (history["regime"] == c.regime)]
        if c.dataset is not None:
            h = h[h["dataset"] == c.dataset]
        if c.arch is not None:
            h = h[h["arch"] == c.arch]
        h = h[h[c.metric_name].notna()].sort_values("epoch")
        if h.empty:
            return empty, f"no history for norm {c.treatment} ({c.regime})"
        g = h.groupby("seed")
        first, last = g["epoch"].min(), g["epoch"].max()
        d = (g[c.metric_name].last() - g[c.metric_name].first())[last > first]
        return d, "" if len(d) else "fewer than two epochs in the history"
    if c.kind == "transfer":
        if transfer is None:
            return empty, "transfer.csv not available"
        t = transfer[(transfer["source_regime"] == c.regime) & transfer["success_rate"].notna()]
        if c.dataset is not None:
            t = t[t["dataset"] == c.dataset]
        if c.arch is not None:
            t = t[t["source_arch"] == c.arch]
        a = t[t["source_norm"] == c.baseline]
        b = t[t["source_norm"] == c.treatment]
        if a.empty or b.empty:
            return empty, f"no transfer rows for source norm {'none' if a.empty else 'bn'} ({c.regime})"
        tk = ["target_arch", "target_norm", "target_regime"]
        sources = {(c.arch if c.arch else sa, n, c.regime) for sa in t["source_arch"].unique()
                   for n in (c.baseline, c.treatment)}
        diffs = {}
        for seed in sorted(set(a["seed"]) & set(b["seed"])):
            ta = a[a["seed"] == seed].groupby(tk)["success_rate"].mean()
            tb = b[b["seed"] == seed].groupby(tk)["success_rate"].mean()
            shared = [k for k in ta.index.intersection(tb.index) if tuple(k) not in sources]
            if shared:
                diffs[seed] = float(ta.loc[shared].mean() - tb.loc[shared].mean())
        d = pd.Series(diffs, dtype=float)
        return d, "" if len(d) else "no shared targets"
    raise ValueError(f"unknown claim kind {c.kind!r}")


def evaluate(run_info: dict[str, Any], metrics: pd.DataFrame | None = None,
             history: pd.DataFrame | None = None, transfer: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims table (columns :data:`COLUMNS`) for the enabled studies."""
    rows = []
    for c in expand_claims(run_info):
        d, note = paired_diffs(c, metrics, history, transfer)
        d = d[np.isfinite(d.astype(float))] if len(d) else d
        n = int(len(d))
        v = verdict(d.values, c.direction, c.tol)
        if v == INCONCLUSIVE and not note:
            note = f"fewer than {MIN_SEEDS} seeds" if n < MIN_SEEDS else "seeds disagree"
        rows.append({
            "id": c.id, "study": c.study, "claim": c.text, "metric": c.metric, "direction": c.direction,
            "mean_diff": float(d.mean()) if n else np.nan, "min_diff": float(d.min()) if n else np.nan,
            "max_diff": float(d.max()) if n else np.nan, "n_seeds": n, "verdict": v,
            "tolerance": c.tol, "note": note,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


def load_and_evaluate(tables_dir: str | Path) -> pd.DataFrame:
    """Read what the enabled studies need from ``tables_dir`` and evaluate the claims.

    Raises :class:`normrobust.tables.MissingInputError` naming the file when a needed table is absent.
    """
    info = T.read_run_info(tables_dir, required=True)
    kinds = {s.kind for s in CLAIM_SPECS if s.study in T.studies(info)}
    metrics = T.read_table(tables_dir, "metrics") if "norm" in kinds else None
    history = T.read_table(tables_dir, "history") if "trajectory" in kinds else None
    transfer = T.read_table(tables_dir, "transfer") if "transfer" in kinds else None
    return evaluate(info, metrics, history, transfer)


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
