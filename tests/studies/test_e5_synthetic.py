"""E5: NRF reliance and the rank correlation of LIGS with it: claims, figures, tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import (
    FIXTURE_TABLES,
    claim_row,
    figure_values,
    metrics_frame,
    read_csv,
    run_info,
    seed_mean,
    study_claims,
)
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS

E5 = {"e5_synthetic": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"],
                       "regimes": ["standard", "pgd_linf"]}}


def _e5(vals: dict) -> pd.DataFrame:
    rows = []
    for (norm, regime), per_seed in vals.items():
        for s, (ligs, nrf) in enumerate(per_seed):
            rows += [("generated", "cnn", norm, regime, s, "ligs", "none", 0.0, ligs),
                     ("generated", "cnn", norm, regime, s, "nrf_reliance", "none", 0.0, nrf)]
    return metrics_frame(rows)


@pytest.mark.parametrize("sign0,sign1,expected", [(-1, -1, PASS), (1, 1, FAIL), (-1, 1, INCONCLUSIVE)])
def test_rank_correlation_claim(sign0, sign1, expected):
    ligs = [0.9, 0.7, 0.99, 0.95]
    cells = [("none", "standard"), ("bn", "standard"), ("none", "pgd_linf"), ("bn", "pgd_linf")]
    # nrf reliance falls (sign −1) or rises (+1) with LIGS, a monotone map: |ρ| = 1
    vals = {c: [(ligs[i], 0.5 + sg * (ligs[i] - 0.8)) for sg in (sign0, sign1)] for i, c in enumerate(cells)}
    r = claim_row(study_claims("e5_synthetic", run_info(E5), metrics=_e5(vals)), "E5-rank")
    assert r["verdict"] == expected and r["n_seeds"] == 2
    # ρ is clipped short of ±1 so its Fisher z stays finite
    assert r["min_diff"] == pytest.approx(-1 if -1 in (sign0, sign1) else 1, abs=1e-3)
    assert np.isnan(r["treatment_mean"]) and "Spearman" in r["rule"]


def test_rank_correlation_needs_four_cells():
    vals = {("none", "standard"): [(0.9, 0.2), (0.9, 0.2)], ("bn", "standard"): [(0.6, 0.5), (0.6, 0.5)]}
    r = claim_row(study_claims("e5_synthetic", run_info(E5), metrics=_e5(vals)), "E5-rank")
    assert r["verdict"] == INCONCLUSIVE and r["n_seeds"] == 0 and "fewer than 4 cells" in r["note"]


def test_ligs_vs_nrf_points_and_spearman(mini):
    from scipy.stats import spearmanr

    _, lines, _, fig = figure_values("ligs_vs_nrf", mini)
    m = read_csv(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "cnn") & m["norm"].isin(["none", "bn", "ln"])
          & m["regime"].isin(["standard", "pgd_linf"])]
    x, y = lines["point|cnn|ln|pgd_linf"]
    assert x[0] == pytest.approx(seed_mean(m, norm="ln", regime="pgd_linf", metric="ligs"))
    assert y[0] == pytest.approx(seed_mean(m, norm="ln", regime="pgd_linf", metric="nrf_reliance"))
    cells = m[m["metric"].isin(["ligs", "nrf_reliance"])].groupby(["norm", "regime", "metric"])["value"].mean()
    cells = cells.unstack("metric")
    rho = spearmanr(cells["ligs"], cells["nrf_reliance"]).statistic
    assert len([k for k in lines if k.startswith("point|")]) == 6
    assert f"Spearman ρ = {rho:.2f} over 6 cells" in fig.axes[0].get_title()


def test_nrf_reliance_bars(mini):
    bars, _, _, _ = figure_values("nrf_reliance", mini)
    m = read_csv(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "cnn")]
    assert bars["nrf_reliance|cnn|ln|pgd_linf"] == pytest.approx(seed_mean(m, norm="ln", regime="pgd_linf",
                                                                           metric="nrf_reliance"))


def test_rank_correlation_table_matches_pandas():
    from normrobust.analysis.study_view import StudyView
    from normrobust.analysis.tables import read_run_info, read_table
    from normrobust.studies.e5_synthetic import analysis as e5_synthetic

    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e5_synthetic")
    m = read_table(FIXTURE_TABLES, "metrics")
    written = {}
    out = e5_synthetic.section(view, {"metrics": m}, lambda n, t: written.setdefault(n, t))
    rows = view.rows(m)
    wide = rows[rows["metric"].isin(["ligs", "nrf_reliance"])].pivot_table(
        index=["dataset", "arch", "norm", "regime", "seed"], columns="metric", values="value").dropna()
    text = written["corr_e5_synthetic"]
    for seed, d in wide.groupby(level="seed"):
        rho = d["ligs"].corr(d["nrf_reliance"], method="spearman")
        assert f"seed {seed} & {len(d)} & ${rho:+.3f}$ \\\\" in text
    means = wide.groupby(level=["dataset", "arch", "norm", "regime"]).mean()
    rho = means["ligs"].corr(means["nrf_reliance"], method="spearman")
    assert f"mean over seeds & {len(means)} & ${rho:+.3f}$ \\\\" in text
    assert out["corr"]["rho_tex"] == f"$\\rho = {rho:+.3f}$" and "agreement" in out["corr"]["agreement"]
