"""E4: the claims on labels t and t+1, the figure's bars, the table beside [B] Fig. 6."""

from __future__ import annotations

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
from normrobust.analysis.verdicts import INCONCLUSIVE, PASS

DATASETS = {"g": {"kind": "generated"}, "dr": {"kind": "derived", "method": "robust", "base": "g"},
            "dc": {"kind": "derived", "method": "conflict", "base": "dr"}}
E4 = {"e4_conflict": {"dataset": "dc", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]}}


def test_claims_on_labels_t_and_t1():
    rows = []
    for s in (0, 1):
        rows += [("dc", "cnn", "none", "standard", s, "clean_acc", "none", 0, 0.03),
                 ("dc", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.35),
                 ("dc", "cnn", "none", "standard", s, "shifted_acc", "none", 0, 0.74),
                 ("dc", "cnn", "bn", "standard", s, "shifted_acc", "none", 0, 0.18 + 0.7 * s)]  # seed 1: BN higher
    df = study_claims("e4_conflict", run_info(E4, datasets=DATASETS), metrics=metrics_frame(rows))
    assert claim_row(df, "E4-bn-t")["verdict"] == PASS and claim_row(df, "E4-bn-t")["paper"] == "BN 35 vs none 3 (fig)"
    t1 = claim_row(df, "E4-bn-t1")  # treatment is the no-norm model
    assert t1["verdict"] == INCONCLUSIVE and t1["treatment_mean"] == pytest.approx(0.74)
    assert t1["paper"] == "none 74 vs BN 18 (fig)"
    assert claim_row(df, "E4-bn-ligs")["paper"] == "BN 0.37 vs none 0.97 (fig)"


def test_conflict_bars(mini):
    bars, _, _, _ = figure_values("conflict", mini)
    m = read_csv(mini, "metrics")
    assert bars["acc|BN|shifted_acc"] == pytest.approx(seed_mean(m, dataset="d_cf", norm="bn",
                                                                 metric="shifted_acc") * 100)
    assert bars["acc|no norm|clean_acc"] == pytest.approx(seed_mean(m, dataset="d_cf", norm="none",
                                                                    metric="clean_acc") * 100)
    assert bars["ligs|BN"] == pytest.approx(seed_mean(m, dataset="d_cf", norm="bn", metric="ligs"))


def test_table_beside_fig6():
    from normrobust.analysis.study_view import StudyView
    from normrobust.analysis.tables import read_run_info, read_table
    from normrobust.studies.e4_conflict import analysis as e4_conflict

    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e4_conflict")
    e4 = e4_conflict.section(view, {"metrics": read_table(FIXTURE_TABLES, "metrics")}, lambda n, t: t)["tables"]["main"]
    assert "$35$ & $18$ & $0.37$" in e4 and "$3$ & $74$ & $0.97$" in e4
