"""Claims checked against the small synthetic tables in tests/fixtures/tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normrobust import claims as C
from normrobust import tables as T

from conftest import FIXTURE_TABLES as FIXTURES, is_pdf as _is_pdf  # noqa: F401

# ------------------------------------------------------------------------------------------- claims

@pytest.mark.parametrize("diffs,direction,tol,expected", [
    ([-0.10, -0.20], "decrease", 0.0, C.PASS),
    ([0.10, 0.20], "decrease", 0.0, C.FAIL),
    ([-0.10, 0.05], "decrease", 0.0, C.INCONCLUSIVE),
    ([-0.10], "decrease", 0.0, C.INCONCLUSIVE),  # n < 2
    ([], "increase", 0.0, C.INCONCLUSIVE),
    ([0.0, 0.1], "increase", 0.0, C.INCONCLUSIVE),  # a zero difference is on neither side
    ([0.3, 0.1, 0.2], "increase", 0.0, C.PASS),
    ([-0.005, 0.02], "increase_or_keep", 0.01, C.PASS),  # a small drop within tolerance counts as kept
    ([-0.02, -0.03], "increase_or_keep", 0.01, C.FAIL),
    ([-0.02, 0.03], "increase_or_keep", 0.01, C.INCONCLUSIVE),
    ([0.005, -0.01], "small", 0.02, C.PASS),
    ([0.05, 0.03], "small", 0.02, C.FAIL),
    ([-0.05, -0.03], "small", 0.02, C.FAIL),
    ([0.05, -0.05], "small", 0.02, C.INCONCLUSIVE),
    ([float("nan"), -0.1], "decrease", 0.0, C.INCONCLUSIVE),  # NaN dropped → n = 1
])
def test_verdict_rule(diffs, direction, tol, expected) -> None:
    assert C.verdict(diffs, direction, tol) == expected


def _run_info(**studies) -> dict:
    return {"config": {"evaluation": {"headline": {"attack": "pgd_linf", "eps": 4}}, "studies": studies}}


def _metrics(rows: list[tuple]) -> pd.DataFrame:
    """rows of (norm, seed, metric, attack, eps, value) on generated/cnn/standard."""
    return pd.DataFrame([dict(dataset="generated", arch="cnn", norm=n, regime="standard", seed=s, metric=m,
                              attack=a, eps=float(e), value=v) for n, s, m, a, e, v in rows],
                        columns=T.TABLE_COLUMNS["metrics"])


def test_claims_on_hand_built_tables() -> None:
    info = _run_info(e1_norms={"enabled": True, "dataset": "generated", "archs": ["cnn"],
                               "norms": ["none", "bn", "ln", "gn"], "regimes": ["standard"]},
                     e5_synthetic={"enabled": False, "dataset": "generated", "archs": ["cnn"],
                                   "norms": ["none", "bn"], "regimes": ["standard"]})
    rows = []
    # robust acc: BN lower on both seeds (PASS), LN lower on one seed only (INCONCLUSIVE),
    # GN higher on both (FAIL); the headline eps must be matched (eps 8 rows are decoys)
    for norm, vals in {"none": (0.40, 0.42), "bn": (0.10, 0.15), "ln": (0.30, 0.45), "gn": (0.50, 0.52)}.items():
        for s, v in enumerate(vals):
            rows.append((norm, s, "robust_acc", "pgd_linf", 4, v))
            rows.append((norm, s, "robust_acc", "pgd_linf", 8, 0.0))
    # LIGS: BN has one seed only (n < 2)
    rows += [("none", 0, "ligs", "none", 0, 0.8), ("none", 1, "ligs", "none", 0, 0.82),
             ("bn", 0, "ligs", "none", 0, 0.6)]
    df = C.evaluate(info, _metrics(rows)).set_index("id")
    assert list(df.reset_index().columns) == C.COLUMNS
    assert set(df["study"]) == {"e1_norms"}  # the disabled study has no claims
    r = df.loc["E1-bn-robust"]
    assert r["verdict"] == C.PASS and r["n_seeds"] == 2
    assert r["mean_diff"] == pytest.approx(-0.285) and r["min_diff"] == pytest.approx(-0.30)
    assert r["max_diff"] == pytest.approx(-0.27)
    assert df.loc["E1-ln-robust", "verdict"] == C.INCONCLUSIVE
    assert df.loc["E1-gn-robust", "verdict"] == C.FAIL
    assert df.loc["E1-bn-ligs", "verdict"] == C.INCONCLUSIVE and df.loc["E1-bn-ligs", "n_seeds"] == 1
    assert df.loc["E1-ln-ligs", "verdict"] == C.INCONCLUSIVE and df.loc["E1-ln-ligs", "n_seeds"] == 0
    assert "no ligs" in df.loc["E1-ln-ligs", "note"]
    assert df.loc["E1-bn-clean", "verdict"] == C.INCONCLUSIVE  # no clean_acc rows at all


def test_transfer_and_trajectory_claims() -> None:
    info = _run_info(e2_trajectories={"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"],
                                      "regimes": ["standard"]},
                     e9_transfer={"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn", "ln"],
                                  "regimes": ["standard"]})
    tr = []
    for seed in (0, 1):
        for src, rate in (("none", 0.6), ("bn", 0.4)):
            for tgt in ("none", "bn", "ln"):
                if tgt != src:
                    tr.append(dict(dataset="generated", seed=seed, source_arch="cnn", source_norm=src,
                                   source_regime="standard", target_arch="cnn", target_norm=tgt,
                                   target_regime="standard", success_rate=rate + 0.01 * seed, n=100))
    hist = pd.DataFrame([dict(dataset="generated", arch="cnn", norm=n, regime="standard", seed=s, epoch=e,
                              lr=0.1, train_loss=1.0, clean_acc=0.5, robust_acc=0.3,
                              ligs=(0.95 - 0.1 * e if n == "bn" else 0.9 + 0.01 * e * (1 if s else -1)),
                              seconds=1.0)
                         for n in ("none", "bn") for s in (0, 1) for e in (1, 2, 3)])
    df = C.evaluate(info, _metrics([]), hist, pd.DataFrame(tr)).set_index("id")
    t = df.loc["E9-transfer"]
    # shared targets excluding both sources: only ln → 0.6 − 0.4 on both seeds
    assert t["verdict"] == C.PASS and t["mean_diff"] == pytest.approx(0.2) and t["n_seeds"] == 2
    assert df.loc["E2-bn-rf-first", "verdict"] == C.PASS
    assert df.loc["E2-bn-rf-first", "mean_diff"] == pytest.approx(-0.2)
    assert df.loc["E2-none-rf-first", "verdict"] == C.INCONCLUSIVE  # one seed rises, one falls


def test_claims_cli_missing_file(tables_dir: Path, capsys) -> None:
    (tables_dir / "metrics.csv").unlink()
    assert C.main(["--tables", str(tables_dir), "--out", str(tables_dir / "claims.csv")]) != 0
    assert "metrics.csv" in capsys.readouterr().err


# ------------------------------------------------------------------------------- claim kinds (hand-built)

ATTACKS = {"pgd_linf": {"type": "pgd", "norm": "linf", "eps": [4]},
           "fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [2, 8]}}


def _config(studies: dict, **extra) -> dict:
    cfg = {"evaluation": {"headline": {"attack": "pgd_linf", "eps": 4}, "attacks": ATTACKS},
           "studies": studies, "seeds": [0, 1]}
    cfg.update(extra)
    return {"config": cfg}


def _m(rows: list[tuple]) -> pd.DataFrame:
    """rows of (dataset, arch, norm, regime, seed, metric, attack, eps, value)."""
    return pd.DataFrame([dict(zip(T.TABLE_COLUMNS["metrics"], r)) for r in rows],
                        columns=T.TABLE_COLUMNS["metrics"])


def _tr(rows: list[dict]) -> pd.DataFrame:
    base = dict(study="e9_transfer", dataset="generated", source_arch="cnn", target_arch="cnn",
                target_regime="standard", source_epoch=6, source_final=True, n=100, n_total=120)
    return pd.DataFrame([{**base, **r} for r in rows])


def _row(df: pd.DataFrame, cid: str) -> pd.Series:
    hit = df[df["id"] == cid]
    assert len(hit) == 1, (cid, list(df["id"]))
    return hit.iloc[0]


E10_CFG = dict(archs={"softmax": {"kind": "linear"}, "maxout": {"kind": "maxout"}},
               regimes={"standard": {"attack": None},
                        "goodfellow": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8},
                                       "objective": "weighted", "clean_weight": 0.5}})
E10_STUDY = {"e10_fgsm": {"dataset": "g", "archs": ["softmax", "maxout"], "norms": ["none"],
                          "regimes": ["standard", "goodfellow"], "transfer": {"targets": ["standard", "goodfellow"]}}}


def _fgsm_rows(arch: str, regime: str, errors: tuple, clean: tuple = (0.9, 0.9), wrong_conf=(0.9, 0.9)):
    out = []
    for s, (e, c, w) in enumerate(zip(errors, clean, wrong_conf)):
        out += [("g", arch, "none", regime, s, "robust_acc", "fgsm_linf", 8.0, 1 - e),
                ("g", arch, "none", regime, s, "robust_acc", "fgsm_linf", 2.0, 0.5),  # decoy eps
                ("g", arch, "none", regime, s, "clean_acc", "none", 0.0, c),
                ("g", arch, "none", regime, s, "adv_wrong_confidence", "fgsm_linf", 8.0, w)]
    return out


@pytest.mark.parametrize("treated,expected", [((0.32, 0.30), C.PASS),  # 0.4× the standard error
                                              ((0.48, 0.50), C.FAIL),  # 0.6×
                                              ((0.32, 0.50), C.INCONCLUSIVE)])
def test_ratio_claim_lowers_by_more_than_half(treated, expected) -> None:
    info = _config(E10_STUDY, **E10_CFG)
    m = _m(_fgsm_rows("maxout", "standard", (0.8, 0.8)) + _fgsm_rows("maxout", "goodfellow", treated))
    r = _row(C.evaluate(info, m), "E10-maxout-fgsm-halves")
    assert r["verdict"] == expected
    assert r["metric"] == "fgsm_error@fgsm_linf:8"  # the largest eps of the fgsm attack (headline is PGD)
    assert r["treatment_mean"] == pytest.approx(np.mean(treated)) and r["baseline_mean"] == pytest.approx(0.8)
    assert r["mean_diff"] == pytest.approx(np.mean(treated) - 0.4)
    assert "0.5 ×" in r["rule"] and r["paper"] == "89.4% → 17.9%"


@pytest.mark.parametrize("errors,expected", [((0.95, 0.99), C.PASS), ((0.85, 0.80), C.FAIL),
                                             ((0.95, 0.85), C.INCONCLUSIVE)])
def test_level_claim(errors, expected) -> None:
    info = _config(E10_STUDY, **E10_CFG)
    m = _m(_fgsm_rows("softmax", "standard", errors))
    df = C.evaluate(info, m)
    r = _row(df, "E10-linear-fgsm-error")  # the softmax is recognised by its kind, not its name
    assert r["verdict"] == expected
    assert r["treatment_mean"] == pytest.approx(np.mean(errors)) and np.isnan(r["baseline_mean"])
    assert r["mean_diff"] == pytest.approx(np.mean(errors) - 0.9)
    assert "− 0.9" in r["rule"] and r["paper"]
    assert _row(df, "E10-linear-confidence")["verdict"] == C.PASS  # 0.9 > 0.5 on both seeds
    assert _row(df, "E10-maxout-fgsm-error")["verdict"] == C.INCONCLUSIVE  # no maxout rows
    assert "no fgsm_error" in _row(df, "E10-maxout-fgsm-error")["note"]


def test_e10_clean_error_and_transfer_asymmetry() -> None:
    info = _config(E10_STUDY, **E10_CFG)
    m = _m(_fgsm_rows("maxout", "standard", (0.8, 0.8), clean=(0.990, 0.991))
           + _fgsm_rows("maxout", "goodfellow", (0.2, 0.2), clean=(0.985, 0.975)))
    tr = []
    for s, (fwd, back) in enumerate([(0.41, 0.20), (0.39, 0.22)]):
        tr += [dict(study="e10_fgsm", dataset="g", seed=s, source_arch="maxout", source_norm="none",
                    source_regime="goodfellow", target_arch="maxout", target_norm="none", target_regime="standard",
                    error_rate=fwd, success_rate=0.3),
               dict(study="e10_fgsm", dataset="g", seed=s, source_arch="maxout", source_norm="none",
                    source_regime="standard", target_arch="maxout", target_norm="none", target_regime="goodfellow",
                    error_rate=back, success_rate=0.3),
               # softmax rows must not count
               dict(study="e10_fgsm", dataset="g", seed=s, source_arch="softmax", source_norm="none",
                    source_regime="standard", target_arch="maxout", target_norm="none", target_regime="goodfellow",
                    error_rate=0.99, success_rate=0.9)]
    df = C.evaluate(info, m, transfer=_tr(tr))
    ce = _row(df, "E10-maxout-clean-error")
    # clean error 0.010 → 0.015 (+0.5 point, kept) and 0.009 → 0.025 (+1.6 points, hurt): seeds disagree
    assert ce["verdict"] == C.INCONCLUSIVE and ce["metric"] == "clean_error"
    assert ce["max_diff"] == pytest.approx(0.016)
    asym = _row(df, "E10-maxout-transfer-asym")
    assert asym["verdict"] == C.PASS and asym["metric"] == "error_rate"
    assert asym["treatment_mean"] == pytest.approx(0.40) and asym["baseline_mean"] == pytest.approx(0.21)


def _e5(norms_vals: dict) -> pd.DataFrame:
    rows = []
    for (norm, regime), per_seed in norms_vals.items():
        for s, (ligs, nrf) in enumerate(per_seed):
            rows += [("generated", "cnn", norm, regime, s, "ligs", "none", 0.0, ligs),
                     ("generated", "cnn", norm, regime, s, "nrf_reliance", "none", 0.0, nrf)]
    return _m(rows)


E5_STUDY = {"e5_synthetic": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"],
                             "regimes": ["standard", "pgd_linf"]}}


@pytest.mark.parametrize("sign0,sign1,expected", [(-1, -1, C.PASS), (1, 1, C.FAIL), (-1, 1, C.INCONCLUSIVE)])
def test_rank_correlation_claim(sign0, sign1, expected) -> None:
    ligs = [0.9, 0.7, 0.99, 0.95]
    cells = [("none", "standard"), ("bn", "standard"), ("none", "pgd_linf"), ("bn", "pgd_linf")]
    vals = {}
    for i, cell in enumerate(cells):
        # nrf reliance falls (sign −1) or rises (+1) with LIGS, a monotone map: |ρ| = 1
        vals[cell] = [(ligs[i], 0.5 + sg * (ligs[i] - 0.8)) for sg in (sign0, sign1)]
    r = _row(C.evaluate(_config(E5_STUDY), _e5(vals)), "E5-rank")
    assert r["verdict"] == expected and r["n_seeds"] == 2
    assert r["min_diff"] == pytest.approx(-1 if -1 in (sign0, sign1) else 1)
    assert np.isnan(r["treatment_mean"]) and "Spearman" in r["rule"]


def test_rank_correlation_needs_three_cells() -> None:
    vals = {("none", "standard"): [(0.9, 0.2), (0.9, 0.2)], ("bn", "standard"): [(0.6, 0.5), (0.6, 0.5)]}
    r = _row(C.evaluate(_config(E5_STUDY), _e5(vals)), "E5-rank")
    assert r["verdict"] == C.INCONCLUSIVE and r["n_seeds"] == 0 and "3 cells" in r["note"]


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


E9_STUDY = {"e9_transfer": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn", "ln"],
                            "regimes": ["standard", "pgd_small"],
                            "transfer": {"targets": ["standard"], "source_epochs": [1]}}}


@pytest.mark.parametrize("bump,expected", [({0: 0.05, 1: 0.03}, C.PASS), ({0: -0.05, 1: -0.02}, C.FAIL),
                                           ({0: 0.05, 1: -0.02}, C.INCONCLUSIVE)])
def test_transfer_early_stop_claim(bump, expected) -> None:
    df = C.evaluate(_config(E9_STUDY), transfer=_tr(_early_rows(bump)))
    r = _row(df, "E9-early-stop")
    assert r["verdict"] == expected
    assert r["mean_diff"] == pytest.approx(np.mean(list(bump.values())))  # the self target (0.99) left out
    assert r["baseline_mean"] == pytest.approx(0.5)
    t = _row(df, "E9-transfer")  # only final sources count: none 0.6 vs bn 0.4 over target ln
    assert t["verdict"] == C.PASS and t["mean_diff"] == pytest.approx(0.2)
    un = _row(df, "E9-rf-nrf")
    assert un["verdict"] == C.INCONCLUSIVE and un["note"] == "not measured by this pipeline"


def test_transfer_robust_source_pooled_over_norms() -> None:
    rows = []
    std = {"none": 0.6, "bn": 0.4, "ln": 0.5}
    small = {0: {"none": 0.65, "bn": 0.45, "ln": 0.49}, 1: {"none": 0.62, "bn": 0.41, "ln": 0.52}}
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
    r = _row(C.evaluate(_config(E9_STUDY), transfer=_tr(rows)), "E9-robust-source")
    # per norm the targets other than the standard source's own cell; then the mean over norms
    assert r["mean_diff"] == pytest.approx(np.mean([np.mean([v - std[n] for n, v in small[s].items()])
                                                    for s in (0, 1)]))
    assert r["verdict"] == C.PASS  # +0.03 and +0.017 (ln alone is lower on seed 0: pooled over norms)


E6_CFG = dict(
    archs={"cnn": {"kind": "cnn", "widths": [16, 32]}, "wide": {"kind": "cnn", "widths": [16, 32], "width": 2},
           "deep": {"kind": "cnn", "widths": [16, 32], "depth": 2},
           "act": {"kind": "cnn", "widths": [16, 32], "activation": "selu"}},
    regimes={"standard": {"attack": None}, "a": {"attack": None, "training": {"optimizer": "adam", "lr": 0.001}},
             "b": {"attack": None, "training": {"weight_decay": 0.01}}},
    training={"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4})


def test_e6_variants_dominance_and_history_claims() -> None:
    study = {"e6_factors": {"dataset": "generated", "design": "one_at_a_time", "archs": ["cnn", "wide", "deep", "act"],
                            "norms": ["bn"], "regimes": ["standard", "a", "b"]}}
    ligs = {("cnn", "bn", "standard"): (0.60, 0.62), ("cnn", "none", "standard"): (0.80, 0.81),
            ("wide", "bn", "standard"): (0.62, 0.60), ("deep", "bn", "standard"): (0.70, 0.74),
            ("act", "bn", "standard"): (0.65, 0.66), ("cnn", "bn", "a"): (0.64, 0.65),
            ("cnn", "bn", "b"): (0.58, 0.59)}
    rows = [("generated", a, n, r, s, "ligs", "none", 0.0, v[s]) for (a, n, r), v in ligs.items() for s in (0, 1)]
    rows += [("generated", a, "bn", "standard", s, "clean_acc", "none", 0.0, c)
             for a, c in (("cnn", 0.85), ("act", 0.83)) for s in (0, 1)]
    hist = pd.DataFrame([dict(dataset="generated", arch="cnn", norm="bn", regime=r, seed=s, epoch=e,
                              ligs=(l0 if e == 1 else 0.6)) for r, l0 in (("standard", 0.86), ("b", 0.9))
                         for s in (0, 1) for e in (1, 2)])
    df = C.evaluate(_config(study, **E6_CFG), _m(rows), hist)
    ids = set(df["id"])
    assert {"E6-bn-width-ligs", "E6-bn-depth-ligs", "E6-bn-selu-ligs", "E6-bn-selu-clean", "E6-bn-adam-ligs",
            "E6-bn-wd-ligs-early", "E6-bn-wd-ligs-late", "E6-bn-vs-norm"} <= ids
    assert not any("-lr-" in i for i in ids)  # no lr variant in this study: no lr claim
    assert _row(df, "E6-bn-width-ligs")["verdict"] == C.PASS  # |Δ| 0.02 ≤ 0.05
    assert _row(df, "E6-bn-depth-ligs")["verdict"] == C.FAIL  # +0.10, +0.12
    assert _row(df, "E6-bn-selu-ligs")["verdict"] == C.PASS
    assert _row(df, "E6-bn-selu-clean")["verdict"] == C.PASS
    assert _row(df, "E6-bn-wd-ligs-early")["verdict"] == C.PASS  # 0.9 > 0.86 at the first epoch
    dom = _row(df, "E6-bn-vs-norm")
    # max factor move (depth: 0.10 / 0.12) vs the norm effect (0.20 / 0.19)
    assert dom["treatment_mean"] == pytest.approx(0.11) and dom["baseline_mean"] == pytest.approx(0.195)
    assert dom["verdict"] == C.PASS
    # the no-norm reference cell missing: inconclusive, with a note naming it
    df2 = C.evaluate(_config(study, **E6_CFG), _m([r for r in rows if r[2] != "none"]), hist)
    assert _row(df2, "E6-bn-vs-norm")["verdict"] == C.INCONCLUSIVE
    assert "no norm" in _row(df2, "E6-bn-vs-norm")["note"]


def test_e7_regimes_recognised_by_objective() -> None:
    pgd = {"type": "pgd", "norm": "linf", "eps": 4}
    regimes = {"plain": {"attack": None}, "shared": {"attack": pgd, "objective": "mixed"},
               "aux": {"attack": pgd, "objective": "advprop"}, "madry": {"attack": pgd},
               "gw": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8}, "objective": "weighted"}}
    study = {"e7_adv_training": {"dataset": "g", "archs": ["cnn"], "norms": ["none", "bn"],
                                 "regimes": list(regimes)}}
    clean = {"plain": 0.85, "shared": 0.80, "aux": 0.86, "madry": 0.7, "gw": 0.78}
    rob = {("none", "plain"): 0.4, ("bn", "plain"): 0.15, ("none", "madry"): 0.55, ("bn", "madry"): 0.56,
           ("none", "gw"): 0.35, ("bn", "gw"): 0.4}
    rows = [("g", "cnn", "bn", r, s, "clean_acc", "none", 0.0, c + 0.001 * s) for r, c in clean.items()
            for s in (0, 1)]
    rows += [("g", "cnn", n, r, s, "robust_acc", "pgd_linf", 4.0, v) for (n, r), v in rob.items() for s in (0, 1)]
    df = C.evaluate(_config(study, regimes=regimes), _m(rows))
    v = df.set_index("id")["verdict"]
    assert v["E7-bn-mixed-clean"] == C.PASS and v["E7-bn-advprop-clean"] == C.PASS
    assert v["E7-bn-advprop-std"] == C.PASS and v["E7-bn-adv-robust"] == C.PASS
    assert v["E7-bn-fgsm-robust"] == C.PASS
    assert v["E7-none-fgsm-robust"] == C.FAIL  # 0.35 < 0.40 on both seeds
    assert "84.5 → 85.2" in _row(df, "E7-bn-advprop-clean")["paper"]


def test_e3_e4_e8_claims() -> None:
    datasets = {"g": {"kind": "generated"},
                "dr": {"kind": "derived", "method": "robust", "base": "g"},
                "drand": {"kind": "derived", "method": "rand", "base": "g"},
                "dnr": {"kind": "derived", "method": "nonrobust", "base": "g"},
                "dc": {"kind": "derived", "method": "conflict", "base": "dr"}}
    regimes = {"standard": {"attack": None}, "reg1": {"attack": None, "objective": "ligs_reg", "ligs_weight": 1}}
    studies = {"e3_disentangled": {"dataset": ["dr", "drand", "dnr"], "archs": ["cnn"], "norms": ["none", "bn"],
                                   "regimes": ["standard"]},
               "e4_conflict": {"dataset": "dc", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]},
               "e8_ligs_reg": {"dataset": "g", "archs": ["cnn"], "norms": ["bn"], "regimes": ["standard", "reg1"]}}
    rows = []
    for s in (0, 1):
        rows += [("dr", "cnn", "none", "standard", s, "clean_acc", "none", 0, 0.81),
                 ("dr", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.84),
                 ("dr", "cnn", "none", "standard", s, "robust_acc", "pgd_linf", 4, 0.50),
                 ("dr", "cnn", "bn", "standard", s, "robust_acc", "pgd_linf", 4, 0.45),
                 ("drand", "cnn", "none", "standard", s, "clean_acc", "none", 0, 0.05),
                 ("drand", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.68),
                 ("dc", "cnn", "none", "standard", s, "clean_acc", "none", 0, 0.03),
                 ("dc", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.35),
                 ("dc", "cnn", "none", "standard", s, "shifted_acc", "none", 0, 0.74),
                 ("dc", "cnn", "bn", "standard", s, "shifted_acc", "none", 0, 0.18 + 0.7 * s),  # seed 1: BN higher
                 ("g", "cnn", "bn", "standard", s, "clean_acc", "none", 0, 0.85),
                 ("g", "cnn", "bn", "reg1", s, "clean_acc", "none", 0, 0.84),
                 ("g", "cnn", "bn", "standard", s, "robust_acc", "pgd_linf", 4, 0.15),
                 ("g", "cnn", "bn", "reg1", s, "robust_acc", "pgd_linf", 4, 0.25)]
    df = C.evaluate(_config(studies, datasets=datasets, regimes=regimes), _m(rows))
    v = df.set_index("id")["verdict"]
    assert v["E3-drobust-bn-clean"] == C.PASS and v["E3-drobust-bn-robust"] == C.PASS
    assert v["E3-drand-bn-clean"] == C.PASS
    assert not any(i.startswith("E3-dnonrobust") for i in v.index)  # D_NR: no claim in the paper
    assert v["E4-bn-t"] == C.PASS and v["E4-bn-t1"] == C.INCONCLUSIVE
    t1 = _row(df, "E4-bn-t1")  # treatment is the no-norm model
    assert t1["treatment_mean"] == pytest.approx(0.74) and t1["paper"] == "none 74 vs BN 18 (fig)"
    assert v["E8-bn-reg1-robust"] == C.PASS and v["E8-bn-reg1-clean"] == C.PASS
    assert v["E8-bn-reg1-ligs"] == C.INCONCLUSIVE  # no LIGS rows
    assert "BN 84 vs none 81" in _row(df, "E3-drobust-bn-clean")["paper"]


def test_rule_text_states_delta_and_tolerance() -> None:
    assert C.rule_text("decrease", 0, "ligs", "x") == ("Δ = x; PASS if Δ < 0 on every seed (n ≥ 2); FAIL if Δ > 0 "
                                                        "on every seed; else INCONCLUSIVE")
    assert "|Δ| ≤ 2 points" in C.rule_text("small", 0.02, "clean_acc")
    assert "|Δ| ≤ 0.05" in C.rule_text("small", 0.05, "ligs")
    assert "Δ ≥ −1 point" in C.rule_text("increase_or_keep", 0.01, "clean_acc")
    assert "Δ ≤ 1 point" in C.rule_text("decrease_or_keep", 0.01, "clean_error")
    with pytest.raises(ValueError):
        C.rule_text("sideways", 0, "ligs")


# ------------------------------------------------------------------------------------- on the fixtures

def test_every_enabled_study_has_claims_on_fixtures() -> None:
    df = C.load_and_evaluate(FIXTURES)
    assert list(df.columns) == C.COLUMNS
    enabled = T.studies(T.read_run_info(FIXTURES))
    assert set(enabled) == set(C.STUDY_ORDER)  # the fixtures enable every study
    assert set(df["study"]) == set(enabled)
    assert len(df) >= 15 and df["id"].is_unique
    assert (df["rule"].str.len() > 0).all() and df["rule"].str.contains("INCONCLUSIVE").all()
    assert set(df["verdict"]) <= {C.PASS, C.FAIL, C.INCONCLUSIVE}
    v = df.set_index("id")["verdict"]
    paper = df.set_index("id")["paper"]
    for cid in ("E1-bn-clean", "E2-bn-std-ligs", "E3-drand-bn-clean", "E4-bn-t", "E7-bn-advprop-clean",
                "E10-maxout-fgsm-halves", "E10-maxout-transfer-asym"):
        assert paper[cid], cid
    assert paper["E5-bn-nrf"] == ""  # ours: no number in the papers
    for cid in ("E1-bn-robust", "E1-bn-ligs", "E5-bn-nrf", "E5-rank", "E3-drobust-bn-clean", "E4-bn-t1",
                "E6-bn-vs-norm", "E7-bn-advprop-clean", "E8-bn-ligs_w1-robust", "E9-transfer", "E9-early-stop",
                "E9-robust-source-pgd_small", "E10-linear-fgsm-error", "E10-maxout-fgsm-halves",
                "E10-maxout-transfer-asym"):
        assert v[cid] == C.PASS, cid
    # disagreements built into the fixtures
    for cid in ("E1-gn-robust", "E8-bn-ligs_w10-clean", "E9-robust-source-pgd_linf"):
        assert v[cid] == C.FAIL, cid
    for cid in ("E1-in-clean", "E3-ddet-bn-clean", "E6-bn-depth-ligs", "E9-rf-nrf"):
        assert v[cid] == C.INCONCLUSIVE, cid
    r = _row(df, "E1-bn-robust")
    assert r["treatment_min"] <= r["treatment_mean"] <= r["treatment_max"]
    assert r["mean_diff"] == pytest.approx(r["treatment_mean"] - r["baseline_mean"])


def test_claims_cli_on_fixtures(tmp_path: Path) -> None:
    out = tmp_path / "claims.csv"
    assert C.main(["--tables", str(FIXTURES), "--out", str(out)]) == 0
    df = pd.read_csv(out, keep_default_na=False, na_values=["", "nan", "NaN"])
    assert list(df.columns) == C.COLUMNS == [
        "id", "study", "claim", "rule", "metric", "direction", "tolerance", "treatment_mean", "treatment_min",
        "treatment_max", "baseline_mean", "baseline_min", "baseline_max", "mean_diff", "min_diff", "max_diff",
        "n_seeds", "paper", "verdict", "note"]
    v = df.set_index("id")["verdict"]
    assert v["E1-bn-robust"] == "PASS" and v["E1-bn-ligs"] == "PASS" and v["E5-bn-nrf"] == "PASS"
    assert v["E1-gn-robust"] == "FAIL"  # built into the fixture
    assert v["E1-in-clean"] == "INCONCLUSIVE"  # seeds disagree in the fixture
    assert {"E2-bn-std-ligs", "E2-bn-adv-robust", "E9-transfer"} <= set(v.index)
    assert len(df) == len(C.load_and_evaluate(FIXTURES))


def test_load_reads_only_needed_tables(tables_dir: Path) -> None:
    import json

    info = json.loads((tables_dir / "run_info.json").read_text())
    for name, st in info["config"]["studies"].items():
        st["enabled"] = name in ("e1_norms", "e5_synthetic")
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    (tables_dir / "history.csv").unlink()
    (tables_dir / "transfer.csv").unlink()
    assert C.needed_tables(info) == {"metrics"}
    df = C.load_and_evaluate(tables_dir)
    assert set(df["study"]) == {"e1_norms", "e5_synthetic"}
    info["config"]["studies"]["e10_fgsm"]["enabled"] = True  # now transfer.csv is needed
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(T.MissingInputError, match="transfer.csv"):
        C.load_and_evaluate(tables_dir)
