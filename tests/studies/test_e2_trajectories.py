"""E2: the trajectory claims, the per-epoch figure and the last-epoch table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, claim_row, figure_values, metrics_frame, read_csv, run_info, study_claims
from normrobust.analysis.reproduction import reproduction_frame
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS
from normrobust.studies import analysis

E2 = {"e2_trajectories": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"],
                          "regimes": ["standard", "pgd_l2t"]}}


def _history(ligs) -> pd.DataFrame:
    return pd.DataFrame([dict(dataset="generated", arch="cnn", norm=n, regime="standard", seed=s, epoch=e, lr=0.1,
                              train_loss=1.0, clean_acc=0.5, robust_acc=0.3, ligs=ligs(n, s, e), seconds=1.0)
                         for n in ("none", "bn") for s in (0, 1) for e in (1, 2, 3)])


def test_rf_first_is_the_ligs_trajectory():
    hist = _history(lambda n, s, e: 0.95 - 0.1 * e if n == "bn" else 0.9 + 0.01 * e * (1 if s else -1))
    df = study_claims("e2_trajectories", run_info(E2), metrics=metrics_frame([]), history=hist)
    bn = claim_row(df, "E2-bn-rf-first")
    assert bn["verdict"] == PASS and bn["mean_diff"] == pytest.approx(-0.2)
    assert bn["paper"] == "LIGS ~1.0 → 0.59 (fig)"  # [B] Fig. 3's final BN LIGS, from E2's published numbers
    assert claim_row(df, "E2-none-rf-first")["verdict"] == INCONCLUSIVE  # one seed rises, one falls


def test_fig3_numbers_stand_beside_the_targeted_l2_training():
    """[B] trained its adversarial models with targeted PGD-L2: among adversarial regimes, E2's reproduction rows
    read that one (E2's own ``Published.prefer``), whatever the regimes are called; standard rows are unaffected."""
    cfg = {"datasets": {"cifar10": {"kind": "cifar10"}}, "archs": {"r18": {"kind": "resnet", "blocks": [2, 2, 2, 2]}},
           "regimes": {"standard": {"attack": None}, "a_linf": {"attack": {"type": "pgd", "norm": "linf", "eps": 8}},
                       "b_l2": {"attack": {"type": "pgd", "norm": "l2", "eps": 0.5}},
                       "z_l2t": {"attack": {"type": "pgd", "norm": "l2", "eps": 0.5, "targeted": True}}}}
    acc = {"standard": 0.9, "a_linf": 0.7, "b_l2": 0.75, "z_l2t": 0.8}
    rows = pd.DataFrame([dict(dataset="cifar10", arch="r18", norm=n, regime=r, seed=s, metric="clean_acc",
                              attack="none", eps=0.0, value=v) for n in ("bn", "none") for r, v in acc.items()
                         for s in (0, 1)])
    e2 = analysis("e2_trajectories")
    f = reproduction_frame({"config": cfg}, rows, None, e2.PUBLISHED).set_index("quantity")
    for norm in ("BN", "no norm"):
        adv = f.loc[f"adversarial, {norm}: clean accuracy (%)"]
        assert adv["ours_setting"] == "cifar10, r18, z_l2t" and adv["ours"] == pytest.approx(80.0)
        assert adv["match"] == "same"
        assert f.loc[f"standard, {norm}: clean accuracy (%)", "ours"] == pytest.approx(90.0)
    assert e2.targeted_l2(cfg["regimes"]["z_l2t"]) and not e2.targeted_l2(cfg["regimes"]["b_l2"])


B_REGIMES = {"standard": {"attack": None},
             "pgd_l2t": {"attack": {"type": "pgd", "norm": "l2", "eps": 0.5, "step": 0.1, "steps": 7,
                                    "targeted": True}}}


def test_claims_quote_fig3_and_test_each_adversarial_regime():
    df = study_claims("e2_trajectories", run_info(E2, regimes=B_REGIMES), metrics=metrics_frame([]),
                      history=_history(lambda *a: 0.5))
    assert claim_row(df, "E2-bn-std-robust")["paper"] == "BN 10 vs none 40, PGD-L2 0.25 (fig)"
    assert claim_row(df, "E2-bn-std-ligs")["paper"] == "BN 0.59 vs none 0.79 (fig)"
    adv = claim_row(df, "E2-bn-adv-robust")
    # [B]'s claim is one-sided (BN no longer hurts), on the metric Fig. 3 quotes when the run evaluates it
    assert adv["paper"] == "BN 79.5 vs none 77, PGD-L2 0.25 (fig)" and adv["direction"] == "increase_or_keep"
    assert adv["tolerance"] == 0.02 and "pgd_l2t" in adv["claim"]  # the claim names the regime it tests
    ligs = claim_row(df, "E2-bn-adv-ligs")  # BN vs no norm LIGS under adversarial training, [B]: 0.98 vs 0.98
    assert ligs["direction"] == "small" and ligs["tolerance"] == 0.03 and ligs["paper"] == "BN 0.98 vs none 0.98 (fig)"


def test_claims_under_another_adversarial_regime_quote_b_as_an_analogue():
    linf = {**B_REGIMES, "pgd_l2t": {"attack": {"type": "pgd", "norm": "linf", "eps": 8, "step": 2, "steps": 3}}}
    df = study_claims("e2_trajectories", run_info(E2, regimes=linf), metrics=metrics_frame([]),
                      history=_history(lambda *a: 0.5))
    for cid in ("E2-bn-adv-robust", "E2-bn-adv-ligs"):
        assert claim_row(df, cid)["paper"].endswith("[B] trains with targeted PGD-L2 ε=0.5, this regime differs: "
                                                    "analogue"), cid


def test_robust_claims_use_fig3s_pgd_l2_025_when_evaluated():
    from normrobust.analysis.study_view import StudyView
    from normrobust.studies.e2_trajectories import analysis as e2_trajectories

    info = run_info(E2)
    info["config"]["evaluation"]["attacks"]["l2"] = {"type": "pgd", "norm": "l2", "eps": [0.25, 0.5], "steps": 3,
                                                     "rel_step": 0.5}
    assert e2_trajectories.robust_metric(StudyView.of(info, "e2_trajectories")).key == "robust_acc@l2:0.25"
    del info["config"]["evaluation"]["attacks"]["l2"]
    view = StudyView.of(info, "e2_trajectories")
    assert e2_trajectories.robust_metric(view) == view.head  # else the headline


def test_trajectories_panel_per_history_attack(mini):
    bars, lines, text, fig = figure_values("trajectories", mini)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and "PGD-L∞" in titles[1] and "PGD-L2" in titles[2] and "ε=0.25" in titles[2]
    assert titles[3] == "LIGS"
    h = read_csv(mini, "history")
    x, y = lines["robust_acc_pgd_l2|cnn|pgd_linf|bn"]
    d = h[(h["norm"] == "bn") & (h["regime"] == "pgd_linf")].groupby("epoch")["robust_acc_pgd_l2"].mean()
    np.testing.assert_allclose(x, d.index.to_numpy(float))
    np.testing.assert_allclose(y, d.to_numpy() * 100)


def test_trajectories_on_the_fixtures():
    _, lines, _, _ = figure_values("trajectories", FIXTURE_TABLES)
    h = read_csv(FIXTURE_TABLES, "history")
    d = h[(h["dataset"] == "generated") & (h["norm"] == "none") & (h["regime"] == "standard") & (h["arch"] == "cnn")]
    exp = d.groupby("epoch")["robust_acc_pgd_l2"].mean().to_numpy() * 100
    np.testing.assert_allclose(lines["robust_acc_pgd_l2|cnn|standard|none"][1], exp)


def test_last_epoch_table():
    from normrobust.analysis.study_view import StudyView
    from normrobust.analysis.tables import read_run_info, read_table
    from normrobust.studies.e2_trajectories import analysis as e2_trajectories

    frames = {t: read_table(FIXTURE_TABLES, t) for t in ("metrics", "history")}
    view = StudyView.of(read_run_info(FIXTURE_TABLES), "e2_trajectories")
    written = {}
    out = e2_trajectories.section(view, frames, lambda name, tex: written.setdefault(name, tex))
    h = frames["history"]
    h = h[(h["dataset"] == "generated") & (h["arch"] == "cnn") & (h["norm"] == "bn") & (h["regime"] == "standard")]
    last = h[h["epoch"] == h["epoch"].max()]["robust_acc_pgd_l2"]
    text = written["history_e2_trajectories"]
    row = next(line for line in text.splitlines() if line.startswith(" & BN"))  # standard, BN
    assert f"${last.mean() * 100:.1f} \\pm {last.std(ddof=1) * 100:.1f}$" in row
    assert "PGD-L2 $\\varepsilon$=0.25" in text and out["n_epochs"] == int(h["epoch"].max())


@pytest.mark.parametrize("ligs,expected", [((0.97, 0.975), PASS), ((0.6, 0.62), FAIL), ((0.97, 0.5), INCONCLUSIVE)])
def test_adversarially_trained_models_keep_ligs_near_one(ligs, expected):
    """A level claim per norm and adversarial regime: LIGS above 0.9 ([B] Fig. 3: 0.98 for both)."""
    rows = [("generated", "cnn", n, "pgd_l2t", s, "ligs", "none", 0.0, ligs[s]) for n in ("none", "bn") for s in (0, 1)]
    df = study_claims("e2_trajectories", run_info(E2), metrics=metrics_frame(rows), history=_history(lambda *a: 0.5))
    for norm in ("none", "bn"):
        r = claim_row(df, f"E2-{norm}-adv-ligs-high")
        assert r["verdict"] == expected and r["paper"] == "LIGS 0.98 (fig)" and "pgd_l2t" in r["claim"]
