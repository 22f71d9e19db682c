"""E10: one FGSM metric for claims, figure and table; the claims; our numbers beside [G]'s."""

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
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.tables import read_run_info, read_table
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS
from normrobust.studies.e10_fgsm import analysis as e10_fgsm

CFG = dict(archs={"softmax": {"kind": "linear"}, "maxout": {"kind": "maxout"}},
           regimes={"standard": {"attack": None},
                    "goodfellow": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8}, "objective": "weighted",
                                   "clean_weight": 0.5}})
E10 = {"e10_fgsm": {"dataset": "g", "archs": ["softmax", "maxout"], "norms": ["none"],
                    "regimes": ["standard", "goodfellow"], "transfer": {"targets": ["standard", "goodfellow"]}}}


def _rows(arch, regime, errors, clean=(0.9, 0.9), wrong_conf=(0.9, 0.9)):
    out = []
    for s, (e, c, w) in enumerate(zip(errors, clean, wrong_conf)):
        out += [("g", arch, "none", regime, s, "robust_acc", "fgsm_linf", 8.0, 1 - e),
                ("g", arch, "none", regime, s, "robust_acc", "fgsm_linf", 2.0, 0.5),  # decoy eps
                ("g", arch, "none", regime, s, "clean_acc", "none", 0.0, c),
                ("g", arch, "none", regime, s, "adv_wrong_confidence", "fgsm_linf", 8.0, w)]
    return out


def test_one_fgsm_metric():
    """Claims, figure and table read the same attack and ε: the headline when it is FGSM, else the config's FGSM
    attack (L∞ first) at its largest ε."""
    view = StudyView.of(run_info(E10, **CFG), "e10_fgsm")
    assert e10_fgsm.fgsm_metric(view).key == "fgsm_error@fgsm_linf:8"
    info = run_info(E10, **CFG)
    info["config"]["evaluation"]["headline"] = {"attack": "fgsm_linf", "eps": 2}
    assert e10_fgsm.fgsm_metric(StudyView.of(info, "e10_fgsm")).key == "fgsm_error@fgsm_linf:2"
    info["config"]["evaluation"]["attacks"] = {"a_l2": {"type": "fgsm", "norm": "l2", "eps": [1.0]},
                                               "z_linf": {"type": "fgsm", "norm": "linf", "eps": [4, 16]}}
    info["config"]["evaluation"]["headline"] = {"attack": "pgd_linf", "eps": 4}
    m = e10_fgsm.fgsm_metric(StudyView.of(info, "e10_fgsm"))
    assert (m.attack, m.eps, m.error) == ("z_linf", 16.0, True)


# two seeds: the verdict's t-interval (t = 12.7) decides only when they agree closely
@pytest.mark.parametrize("treated,expected", [((0.30, 0.301), PASS), ((0.48, 0.481), FAIL),
                                              ((0.32, 0.50), INCONCLUSIVE)])
def test_ratio_claim_lowers_by_more_than_half(treated, expected):
    m = metrics_frame(_rows("maxout", "standard", (0.8, 0.8)) + _rows("maxout", "goodfellow", treated))
    r = claim_row(study_claims("e10_fgsm", run_info(E10, **CFG), metrics=m), "E10-maxout-fgsm-halves")
    assert r["verdict"] == expected and r["metric"] == "fgsm_error@fgsm_linf:8"
    assert r["treatment_mean"] == pytest.approx(np.mean(treated)) and r["baseline_mean"] == pytest.approx(0.8)
    assert r["mean_diff"] == pytest.approx(np.mean(treated) - 0.4)
    assert "0.5 ×" in r["rule"] and r["paper"] == "89.4% → 17.9%"


@pytest.mark.parametrize("errors,expected",
                         [((0.95, 0.951), PASS), ((0.40, 0.401), FAIL), ((0.95, 0.35), INCONCLUSIVE)])
def test_level_claim(errors, expected):
    df = study_claims("e10_fgsm", run_info(E10, **CFG), metrics=metrics_frame(_rows("softmax", "standard", errors)))
    r = claim_row(df, "E10-linear-fgsm-error")  # the softmax is recognised by its kind, not its name
    assert r["verdict"] == expected and r["paper"] == "99.9% error"
    assert r["treatment_mean"] == pytest.approx(np.mean(errors)) and np.isnan(r["baseline_mean"])
    assert r["mean_diff"] == pytest.approx(np.mean(errors) - 0.5) and "− 0.5" in r["rule"]
    assert claim_row(df, "E10-linear-confidence")["verdict"] == PASS  # 0.9 > 0.5 on both seeds
    assert claim_row(df, "E10-linear-confidence")["paper"] == "mean confidence 79.3%"
    assert claim_row(df, "E10-maxout-fgsm-error")["verdict"] == INCONCLUSIVE  # no maxout rows
    assert "no fgsm_error" in claim_row(df, "E10-maxout-fgsm-error")["note"]


def test_clean_error_and_transfer_asymmetry():
    m = metrics_frame(_rows("maxout", "standard", (0.8, 0.8), clean=(0.990, 0.991))
                      + _rows("maxout", "goodfellow", (0.2, 0.2), clean=(0.985, 0.975)))
    tr = []
    base = dict(study="e10_fgsm", dataset="g", source_norm="none", target_norm="none", source_final=True,
                source_epoch=3, success_rate=0.3, n=100, n_total=120)
    for s, (fwd, back) in enumerate([(0.41, 0.20), (0.40, 0.21)]):
        tr += [dict(base, seed=s, source_arch="maxout", source_regime="goodfellow", target_arch="maxout",
                    target_regime="standard", error_rate=fwd),
               dict(base, seed=s, source_arch="maxout", source_regime="standard", target_arch="maxout",
                    target_regime="goodfellow", error_rate=back),
               dict(base, seed=s, source_arch="softmax", source_regime="standard", target_arch="maxout",
                    target_regime="goodfellow", error_rate=0.99)]  # softmax rows must not count
    df = study_claims("e10_fgsm", run_info(E10, **CFG), metrics=m, transfer=pd.DataFrame(tr))
    ce = claim_row(df, "E10-maxout-clean-error")
    # clean error 0.010 → 0.015 (+0.5 point, kept) and 0.009 → 0.025 (+1.6 points, hurt): seeds disagree
    assert ce["verdict"] == INCONCLUSIVE and ce["metric"] == "clean_error" and ce["max_diff"] == pytest.approx(0.016)
    asym = claim_row(df, "E10-maxout-transfer-asym")
    assert asym["verdict"] == PASS and asym["metric"] == "error_rate" and asym["paper"] == "40.9% vs 19.6%"
    assert asym["treatment_mean"] == pytest.approx(0.405) and asym["baseline_mean"] == pytest.approx(0.205)
    assert asym["ci_low"] > 0 and asym["test_se"] > 0  # the transfer rates' binomial floor is in the interval


def test_fgsm_error_confidence_and_transfer(mini):
    bars, lines, _, _ = figure_values("fgsm", mini)
    m = read_csv(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "mx") & (m["regime"] == "fgsm")]
    x, y = lines["error|mx|fgsm|none"]
    np.testing.assert_allclose(x, [0, 2, 8])
    exp = [1 - seed_mean(m, metric="clean_acc")] + [1 - seed_mean(m, metric="robust_acc", attack="fgsm_linf", eps=e)
                                                    for e in (2, 8)]
    np.testing.assert_allclose(y, np.array(exp) * 100)
    _, y = lines["confidence|mx|fgsm|none"]
    np.testing.assert_allclose(y, [seed_mean(m, metric="adv_wrong_confidence", eps=e) * 100 for e in (2, 8)])
    t = read_csv(mini, "transfer")
    t = t[(t["study"] == "e10_fgsm") & (t["source_arch"] == t["target_arch"])]  # soft -> mx rows left out
    for arch in ("mx", "soft"):
        for src, tgt, direction in (("fgsm", "standard", "adv→standard"), ("standard", "fgsm", "standard→adv")):
            d = t[(t["source_arch"] == arch) & (t["source_regime"] == src) & (t["target_regime"] == tgt)]
            assert bars[f"transfer|{arch}|{direction}"] == pytest.approx(d["error_rate"].mean() * 100)
    assert len(bars) == 4


def test_table_beside_goodfellow():
    info = read_run_info(FIXTURE_TABLES)
    view = StudyView.of(info, "e10_fgsm")
    frames = {t: read_table(FIXTURE_TABLES, t) for t in ("metrics", "transfer")}
    written = {}
    out = e10_fgsm.section(view, frames, lambda n, t: written.setdefault(n, t))
    fg = e10_fgsm.fgsm_metric(view)
    mx = view.rows(frames["metrics"])
    mx = mx[(mx["arch"] == "maxout") & (mx["regime"] == "standard")]
    fgsm_err = (1 - fg.rows(mx)["value"]) * 100
    conf = mx[(mx["metric"] == "adv_wrong_confidence") & (mx["attack"] == fg.attack) & np.isclose(mx["eps"], fg.eps)]
    conf = conf["value"] * 100
    ce = (1 - mx[mx["metric"] == "clean_acc"]["value"]) * 100
    row = next(line for line in written["main_e10_fgsm"].splitlines() if line.startswith("maxout & standard"))
    assert f"${ce.mean():.2f} \\pm {ce.std(ddof=1):.2f}$ & $0.94$ & ${ce.mean() - 0.94:+.2f}$" in row
    assert f"${fgsm_err.mean():.1f} \\pm {fgsm_err.std(ddof=1):.1f}$ & $89.4$ & ${fgsm_err.mean() - 89.4:+.1f}$" in row
    assert f"${conf.mean():.1f} \\pm {conf.std(ddof=1):.1f}$ & $97.6$ & ${conf.mean() - 97.6:+.1f}$" in row
    t = frames["transfer"]
    t = t[(t["study"] == "e10_fgsm") & (t["source_arch"] == "maxout") & (t["target_arch"] == "maxout")]
    for src, tgt, g in (("standard", "fgsm", 19.6), ("fgsm", "standard", 40.9)):
        e = t[(t["source_regime"] == src) & (t["target_regime"] == tgt)].groupby("seed")["error_rate"].mean() * 100
        assert f"${e.mean():.1f} \\pm {e.std(ddof=1):.1f}$ & ${g}$ & ${e.mean() - g:+.1f}$" in written[
            "transfer_e10_fgsm"], (src, tgt)
    d = fgsm_err.mean() - 89.4
    assert (f"maxout, standard: FGSM error {fgsm_err.mean():.1f}\\%, {abs(d):.1f} points "
            f"{'above' if d > 0 else 'below'} [G]'s 89.4\\%") in out["g_items"]


def test_claims_table_and_figure_read_the_same_attack_and_eps():
    """The drift it pins: the claims took the headline's ε, the table the largest ε in the tables and the figure the
    first L∞ FGSM attack. A row at an ε the config does not evaluate (a stray 32/255) must change none of them."""
    info = read_run_info(FIXTURE_TABLES)
    view = StudyView.of(info, "e10_fgsm")
    frames = {t: read_table(FIXTURE_TABLES, t) for t in ("metrics", "transfer")}
    fg = e10_fgsm.fgsm_metric(view)
    m = frames["metrics"]
    stray = fg.rows(m).assign(eps=32.0, value=0.0)
    frames["metrics"] = pd.concat([m, stray], ignore_index=True)
    out = e10_fgsm.section(view, frames, lambda n, t: t)
    assert out["eps"].startswith(f"$\\varepsilon = {fg.eps:g}/255$")
    claims = study_claims("e10_fgsm", info, **frames)
    assert set(claims[claims["id"].str.contains("fgsm-error")]["metric"]) == {fg.key}
    f = e10_fgsm.frame(view, frames["metrics"], frames["transfer"])
    err = f[(f["quantity"] == "fgsm_error") & (f["arch"] == "maxout") & (f["regime"] == "standard")]["mean"].iloc[0]
    exp = fg.values(m, dict(dataset=None, arch="maxout", norm="none", regime="standard")).mean() * 100  # an error
    assert err == pytest.approx(exp)
