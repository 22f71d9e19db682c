"""E6: what each variant changes (one definition for claims, figure and table), the claims, the figure."""

from __future__ import annotations

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
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS
from normrobust.studies.e6_factors import analysis as e6_factors

CFG = dict(
    archs={"cnn": {"kind": "cnn", "widths": [16, 32]}, "wide": {"kind": "cnn", "widths": [16, 32], "width": 2},
           "deep": {"kind": "cnn", "widths": [16, 32], "depth": 2},
           "act": {"kind": "cnn", "widths": [16, 32], "activation": "selu"}},
    regimes={"standard": {"attack": None}, "a": {"attack": None, "training": {"optimizer": "adam", "lr": 0.001}},
             "b": {"attack": None, "training": {"weight_decay": 0.01}}},
    training={"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4})
E6 = {"e6_factors": {"dataset": "generated", "design": "one_at_a_time", "archs": ["cnn", "wide", "deep", "act"],
                     "norms": ["bn"], "regimes": ["standard", "a", "b"]}}


def test_variants_say_what_they_change():
    vs = e6_factors.variants(StudyView.of(run_info(E6, **CFG), "e6_factors"))
    assert [(v.arch, v.regime, v.label) for v in vs] == [
        ("cnn", "standard", "base"), ("wide", "standard", "width ×2"), ("deep", "standard", "depth ×2"),
        ("act", "standard", "SELU"), ("cnn", "a", "Adam, lr 1e-3"), ("cnn", "b", "wd 0.01")]
    assert vs[4].factors == {"optimizer": ("adam", "sgd"), "lr": (0.001, 0.1)}
    assert vs[5].factors == {"wd": (0.01, 5e-4)}


def test_variants_dominance_and_history_claims():
    ligs = {("cnn", "bn", "standard"): (0.60, 0.62), ("cnn", "none", "standard"): (0.80, 0.81),
            ("wide", "bn", "standard"): (0.61, 0.63), ("deep", "bn", "standard"): (0.70, 0.72),
            ("act", "bn", "standard"): (0.65, 0.665), ("cnn", "bn", "a"): (0.64, 0.65),
            ("cnn", "bn", "b"): (0.58, 0.59)}
    rows = [("generated", a, n, r, s, "ligs", "none", 0.0, v[s]) for (a, n, r), v in ligs.items() for s in (0, 1)]
    rows += [("generated", a, "bn", "standard", s, "clean_acc", "none", 0.0, c)
             for a, c in (("cnn", 0.85), ("act", 0.83)) for s in (0, 1)]
    hist = pd.DataFrame([dict(dataset="generated", arch="cnn", norm="bn", regime=r, seed=s, epoch=e,
                              ligs=(l0 if e == 1 else 0.6)) for r, l0 in (("standard", 0.86), ("b", 0.9))
                         for s in (0, 1) for e in (1, 2)])
    info = run_info(E6, **CFG)
    df = study_claims("e6_factors", info, metrics=metrics_frame(rows), history=hist)
    ids = set(df["id"])
    assert {"E6-bn-width-ligs", "E6-bn-depth-ligs", "E6-bn-selu-ligs", "E6-bn-selu-clean", "E6-bn-adam-ligs",
            "E6-bn-wd-ligs-early", "E6-bn-wd-ligs-late", "E6-bn-vs-norm"} <= ids
    assert not any("-lr-" in i for i in ids)  # the lr comes with Adam: no lr claim
    # two seeds (t = 12.7): the seeds' differences agree closely, so the interval decides
    assert claim_row(df, "E6-bn-width-ligs")["verdict"] == PASS  # +0.01, +0.01: within ±0.05
    assert claim_row(df, "E6-bn-depth-ligs")["verdict"] == FAIL  # +0.10, +0.10
    assert claim_row(df, "E6-bn-selu-ligs")["verdict"] == PASS
    assert claim_row(df, "E6-bn-selu-clean")["verdict"] == PASS
    assert claim_row(df, "E6-bn-wd-ligs-early")["verdict"] == PASS  # 0.9 > 0.86 at the first epoch
    dom = claim_row(df, "E6-bn-vs-norm")
    # max factor move (depth: 0.10 / 0.10) vs the norm effect (0.20 / 0.19)
    assert dom["treatment_mean"] == pytest.approx(0.10) and dom["baseline_mean"] == pytest.approx(0.195)
    assert dom["verdict"] == PASS
    df2 = study_claims("e6_factors", info, metrics=metrics_frame([r for r in rows if r[2] != "none"]), history=hist)
    assert claim_row(df2, "E6-bn-vs-norm")["verdict"] == INCONCLUSIVE
    assert "no norm" in claim_row(df2, "E6-bn-vs-norm")["note"]


def test_factors_figure_and_table_use_the_same_labels(mini):
    bars, lines, text, _ = figure_values("factors", mini)
    for label in ("base (cnn, std)", "width ×2", "depth ×2", "SELU", "wd 5e-3", "lr 0.2", "Adam"):
        assert label in text, label
    m = read_csv(mini, "metrics")
    m = m[m["dataset"] == "gen"]
    assert bars["ligs|width ×2|bn"] == pytest.approx(seed_mean(m, arch="cnn_w", norm="bn", regime="standard",
                                                               metric="ligs"))
    assert bars["clean_acc|Adam|bn"] == pytest.approx(
        seed_mean(m, arch="cnn", norm="bn", regime="adam", metric="clean_acc") * 100)
    assert lines["ref|ligs"][1][0] == pytest.approx(seed_mean(m, arch="cnn", norm="none", regime="standard",
                                                              metric="ligs"))
    assert len(bars) == 14  # only the one-at-a-time cells: 7 variants × 1 norm × 2 panels
    from mini_tables import MINI_CONFIG

    view = StudyView.of({"config": MINI_CONFIG}, "e6_factors")
    table = e6_factors.section(view, {"metrics": read_csv(mini, "metrics")}, lambda n, t: t)["tables"]["main"]
    for label in ("width $\\times$2", "depth $\\times$2", "SELU", "wd 5e-3", "lr 0.2", "Adam"):
        assert label in table, label


def test_factors_on_the_fixtures():
    bars, _, text, _ = figure_values("factors", FIXTURE_TABLES)
    assert "SELU" in text and "wd 5e-3" in text and "Adam, lr 2e-3" in text
    m = read_csv(FIXTURE_TABLES, "metrics")
    assert bars["ligs|depth ×2|bn"] == pytest.approx(seed_mean(m, dataset="generated", arch="cnn_deep", norm="bn",
                                                               metric="ligs"))
