"""E9: transfer claims, one aggregation of the kinds of source for the figure and the table, the heatmap."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, claim_row, figure_values, read_csv, run_info, study_claims
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.tables import read_run_info, read_table
from normrobust.analysis.verdicts import INCONCLUSIVE, PASS
from normrobust.studies.e9_transfer import analysis as e9_transfer

E9 = {"e9_transfer": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn", "ln"],
                      "regimes": ["standard", "pgd_small"],
                      "transfer": {"targets": ["standard"], "source_epochs": [1]}}}


GENERATED = {"generated": {"kind": "generated"}}


def test_rf_nrf_is_made_only_where_the_features_are_known():
    """E9-rf-nrf splits a perturbation by the generated data's feature templates: on real images it could only be
    NOT TESTABLE, so it is not made there (as E5 is not run there); the other claims are."""
    def ids(dataset: str, kind: str) -> list[str]:
        info = run_info({"e9_transfer": {**E9["e9_transfer"], "dataset": dataset}}, datasets={dataset: {"kind": kind}})
        return [c.id for c in e9_transfer.claims(StudyView.of(info, "e9_transfer"))]

    assert ids("generated", "generated") == ["E9-transfer", "E9-early-stop", "E9-robust-source", "E9-rf-nrf"]
    assert ids("mnist", "mnist") == ["E9-transfer", "E9-early-stop", "E9-robust-source"]


def _tr(rows: list[dict]) -> pd.DataFrame:
    base = dict(study="e9_transfer", dataset="generated", source_arch="cnn", target_arch="cnn",
                target_regime="standard", source_epoch=6, source_final=True, n=10000, n_total=12000, error_rate=0.5)
    return pd.DataFrame([{**base, **r} for r in rows])


def _early_rows(early_bump: dict) -> list[dict]:
    """standard sources none/bn/ln: final and epoch-1 versions, targets the three standard cells."""
    rows = []
    final = {"none": 0.6, "bn": 0.4, "ln": 0.5}
    for seed in (0, 1):
        for src, rate in final.items():
            for tgt in final:
                if tgt != src:
                    rows.append(dict(seed=seed, source_norm=src, source_regime="standard", target_norm=tgt,
                                     success_rate=rate))
                # the epoch-1 source attacks every target, its own final model included (must be left out)
                rows.append(dict(seed=seed, source_norm=src, source_regime="standard", source_epoch=1,
                                 source_final=False, target_norm=tgt,
                                 success_rate=0.99 if tgt == src else rate + early_bump[seed]))
    return rows


# two seeds: the t interval (t = 12.7 at one degree of freedom) needs them to agree closely for a verdict
@pytest.mark.parametrize("bump,expected", [({0: 0.05, 1: 0.048}, PASS), ({0: -0.05, 1: -0.048}, "FAIL"),
                                           ({0: 0.05, 1: -0.02}, INCONCLUSIVE)])
def test_early_stop_claim(bump, expected):
    df = study_claims("e9_transfer", run_info(E9, datasets=GENERATED), transfer=_tr(_early_rows(bump)))
    r = claim_row(df, "E9-early-stop")
    assert r["verdict"] == expected
    assert r["mean_diff"] == pytest.approx(np.mean(list(bump.values())))  # the self target (0.99) left out
    assert r["baseline_mean"] == pytest.approx(0.5)
    t = claim_row(df, "E9-transfer")  # only final sources count: none 0.6 vs bn 0.4 over target ln
    assert t["verdict"] == PASS and t["mean_diff"] == pytest.approx(0.2)
    un = claim_row(df, "E9-rf-nrf")
    assert un["verdict"] == INCONCLUSIVE
    assert un["note"].startswith("not measured: the data has no known feature templates")


def test_robust_source_pooled_over_norms():
    rows = []
    std = {"none": 0.6, "bn": 0.4, "ln": 0.5}
    small = {0: {"none": 0.65, "bn": 0.45, "ln": 0.49}, 1: {"none": 0.645, "bn": 0.445, "ln": 0.495}}
    for seed in (0, 1):
        for src in std:
            for tgt in std:
                if tgt != src:
                    rows.append(dict(seed=seed, source_norm=src, source_regime="standard", target_norm=tgt,
                                     success_rate=std[src]))
                rows.append(dict(seed=seed, source_norm=src, source_regime="pgd_small", target_norm=tgt,
                                 success_rate=small[seed][src]))
        # rows of another study and of another target regime are ignored
        rows.append(dict(seed=seed, study="e10_fgsm", source_norm="ln", source_regime="pgd_small",
                         target_norm="none", success_rate=0.0))
        rows.append(dict(seed=seed, source_norm="ln", source_regime="pgd_small", target_norm="none",
                         target_regime="pgd_small", success_rate=0.0))
    r = claim_row(study_claims("e9_transfer", run_info(E9), transfer=_tr(rows)), "E9-robust-source")
    # per norm the targets other than the standard source's own cell; then the mean over norms
    assert r["mean_diff"] == pytest.approx(np.mean([np.mean([v - std[n] for n, v in small[s].items()])
                                                    for s in (0, 1)]))
    assert r["verdict"] == PASS


def test_kinds_of_source_one_aggregation_for_figure_and_table(mini):
    """The drift it pins: the table averaged an early-stopped source over its own final model and over every target
    regime, the figure did not. Both read source_kinds now: the same numbers."""
    t = read_csv(mini, "transfer")
    # an early-stopped source attacking its own final model, and a target of another regime: both left out
    extra = t[(t["study"] == "e9_transfer") & ~t["source_final"]].head(1).copy()
    extra["target_norm"], extra["success_rate"] = extra["source_norm"], 1.0
    other = t[t["study"] == "e9_transfer"].head(1).copy()
    other["target_regime"], other["success_rate"] = "pgd_small", 1.0
    pd.concat([t, extra, other]).to_csv(mini / "transfer.csv", index=False)
    t = read_csv(mini, "transfer")
    bars, _, _, _ = figure_values("transfer_sources", mini)
    from mini_tables import MINI_CONFIG

    view = StudyView.of({"config": MINI_CONFIG}, "e9_transfer")
    table = e9_transfer.kinds_table(read_table(mini, "transfer"), view)
    e9 = t[(t["study"] == "e9_transfer") & (t["target_regime"] == "standard")
           & ~((t["target_norm"] == t["source_norm"]) & (t["target_regime"] == t["source_regime"]))]

    def exp(norm, regime, final):
        d = e9[(e9["source_norm"] == norm) & (e9["source_regime"] == regime) & (e9["source_final"] == final)]
        return float(d.groupby("seed")["success_rate"].mean().mean()) * 100

    for gid, (norm, regime, final), row in (("success|cnn|standard (final)|bn", ("bn", "standard", True),
                                             "standard (final)"),
                                            ("success|cnn|epoch 1|none", ("none", "standard", False), "epoch 1"),
                                            ("success|cnn|PGD-L∞ AT ε=1/255 (final)|bn", ("bn", "pgd_small", True),
                                             "PGD-$L_\\infty$ AT $\\varepsilon$=1/255 (final)")):
        assert bars[gid] == pytest.approx(exp(norm, regime, final)), gid
        line = next(ln for ln in table.splitlines() if ln.startswith(row))
        col = 2 if norm == "bn" else 1  # columns: no norm, BN
        assert re.split(r" & ", line)[col].startswith(f"${exp(norm, regime, final):.1f}"), (line, gid)
    assert len(bars) == 3 * 2


def test_heatmap_uses_final_e9_rows_only(mini):
    t = read_csv(mini, "transfer")
    t.loc[~t["source_final"].astype(bool), "success_rate"] = 1.0  # early-stopped and E10 rows must not show up
    t.to_csv(mini / "transfer.csv", index=False)
    _, _, _, fig = figure_values("transfer_heatmap", mini)
    grid = fig.axes[0].get_images()[0].get_array()
    e9 = t[(t["study"] == "e9_transfer") & t["source_final"].astype(bool)]
    exp = e9.groupby(["source_norm", "source_regime", "target_norm"])["success_rate"].mean() * 100
    assert sorted(np.round(grid.compressed(), 6)) == sorted(np.round(exp.to_numpy(), 6))


def test_matrix_table_on_the_fixtures():
    t = read_table(FIXTURE_TABLES, "transfer")
    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e9_transfer")
    text = e9_transfer.matrix_table(t, view)
    s = t[(t["study"] == "e9_transfer") & t["source_final"] & (t["source_norm"] == "none")
          & (t["source_regime"] == "standard") & (t["target_norm"] == "bn")]
    assert f"${s['success_rate'].mean() * 100:.1f}$" in text


def test_an_excluded_cell_is_no_source_a_claim_waits_for():
    """E9 excluding LN's slightly robust cell: the robust-source claim asks only the trained sources to fool
    themselves (an excluded cell has no white-box success to show, so it must not hold the claim back)."""
    spec = {**E9["e9_transfer"], "exclude": [{"norm": "ln", "regime": "pgd_small"}]}
    view = StudyView.of(run_info({"e9_transfer": spec}), "e9_transfer")
    claim = next(c for c in e9_transfer.claims(view) if c.id == "E9-robust-source")
    texts = [p.text for p in claim.requires]
    assert any("cnn/BN/pgd_small" in t for t in texts) and any("cnn/LN/standard" in t for t in texts)
    assert not any("LN/pgd_small" in t for t in texts), texts

