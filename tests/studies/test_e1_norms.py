"""E1: claims on hand-built tables, the figures' values, the section's table."""

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

E1 = {"e1_norms": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn", "ln", "gn"],
                   "regimes": ["standard"]}}


def test_claims_each_norm_against_no_norm():
    rows = []
    # robust acc: BN lower on both seeds (PASS), LN lower on one seed only (INCONCLUSIVE), GN higher on both
    # (FAIL); the headline eps must be matched (eps 8 rows are decoys)
    for norm, vals in {"none": (0.40, 0.42), "bn": (0.10, 0.15), "ln": (0.30, 0.45), "gn": (0.50, 0.52)}.items():
        for s, v in enumerate(vals):
            rows.append(("generated", "cnn", norm, "standard", s, "robust_acc", "pgd_linf", 4, v))
            rows.append(("generated", "cnn", norm, "standard", s, "robust_acc", "pgd_linf", 8, 0.0))
    # LIGS: BN has one seed only (n < 2)
    rows += [("generated", "cnn", "none", "standard", 0, "ligs", "none", 0, 0.8),
             ("generated", "cnn", "none", "standard", 1, "ligs", "none", 0, 0.82),
             ("generated", "cnn", "bn", "standard", 0, "ligs", "none", 0, 0.6)]
    df = study_claims("e1_norms", run_info(E1), metrics=metrics_frame(rows))
    r = claim_row(df, "E1-bn-robust")
    assert r["verdict"] == PASS and r["n_seeds"] == 2
    assert r["mean_diff"] == pytest.approx(-0.285) and r["min_diff"] == pytest.approx(-0.30)
    assert r["max_diff"] == pytest.approx(-0.27)
    assert claim_row(df, "E1-ln-robust")["verdict"] == INCONCLUSIVE
    assert claim_row(df, "E1-gn-robust")["verdict"] == FAIL
    assert claim_row(df, "E1-bn-ligs")["verdict"] == INCONCLUSIVE and claim_row(df, "E1-bn-ligs")["n_seeds"] == 1
    ln = claim_row(df, "E1-ln-ligs")
    assert ln["verdict"] == INCONCLUSIVE and ln["n_seeds"] == 0 and "no ligs" in ln["note"]
    assert claim_row(df, "E1-bn-clean")["verdict"] == INCONCLUSIVE  # no clean_acc rows at all
    assert "drop ≤ 1 point" in claim_row(df, "E1-bn-clean")["claim"]


def test_no_claims_without_a_no_norm_cell():
    study = {"e1_norms": {**E1["e1_norms"], "norms": ["bn", "ln"]}}
    assert study_claims("e1_norms", run_info(study), metrics=metrics_frame([])).empty


def test_robust_vs_eps_lines_start_at_clean_accuracy(mini):
    _, lines, _, _ = figure_values("robust_vs_eps", mini)
    m = read_csv(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "cnn") & (m["regime"] == "standard")]
    x, y = lines["pgd_linf|cnn|standard|bn"]
    np.testing.assert_allclose(x, [0, 1, 4])
    exp = [seed_mean(m, norm="bn", metric="clean_acc")] + [
        seed_mean(m, norm="bn", metric="robust_acc", attack="pgd_linf", eps=e) for e in (1, 4)]
    np.testing.assert_allclose(y, np.array(exp) * 100)


def test_ligs_per_norm_bars(mini):
    bars, _, _, _ = figure_values("ligs_per_norm", mini)
    m = read_csv(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "cnn")]
    assert bars["ligs|cnn|bn|standard"] == pytest.approx(seed_mean(m, norm="bn", regime="standard", metric="ligs"))
    assert len(bars) == 2  # E1 of the mini config: none and BN, standard only


def test_section_table_numbers_match_the_csv(tmp_path):
    from normrobust.analysis.metric import headline
    from normrobust.analysis.study_view import StudyView
    from normrobust.analysis.tables import read_run_info, read_table
    from normrobust.studies.e1_norms import analysis as e1_norms

    m = read_table(FIXTURE_TABLES, "metrics")
    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e1_norms")
    out = e1_norms.section(view, {"metrics": m}, lambda name, tex: tex)
    text = out["tables"]["main"]
    sel = m[(m["norm"] == "bn") & (m["regime"] == "standard") & (m["dataset"] == "generated")
            & (m["arch"] == view.archs[0])]

    def expected(v: pd.Series, pct: bool) -> str:
        k, d = (100, 1) if pct else (1, 3)
        return f"${v.mean() * k:.{d}f} \\pm {v.std(ddof=1) * k:.{d}f}$"

    h = headline(read_run_info(FIXTURE_TABLES))
    row = next(line for line in text.splitlines() if line.startswith(" & BN"))  # the first BN row: standard
    for cell in (expected(sel[sel["metric"] == "clean_acc"]["value"], True),
                 expected(h.rows(sel)["value"], True),
                 expected(sel[(sel["metric"] == "robust_acc") & (sel["attack"] == "pgd_l2") & (sel["eps"] == 0.5)]
                          ["value"], True),
                 expected(sel[sel["metric"] == "ligs"]["value"], False)):
        assert cell in row, (cell, row)
    assert r"$L_\infty$" in text  # the headline header, escaped
