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
    assert list(df.reset_index().columns[:10]) == C.COLUMNS[:10]
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


def test_claims_cli_on_fixtures(tmp_path: Path) -> None:
    out = tmp_path / "claims.csv"
    assert C.main(["--tables", str(FIXTURES), "--out", str(out)]) == 0
    df = pd.read_csv(out)
    assert list(df.columns[:10]) == ["id", "study", "claim", "metric", "direction", "mean_diff", "min_diff",
                                     "max_diff", "n_seeds", "verdict"]
    v = df.set_index("id")["verdict"]
    assert v["E1-bn-robust"] == "PASS" and v["E1-bn-ligs"] == "PASS" and v["E5-bn-nrf"] == "PASS"
    assert v["E1-gn-robust"] == "FAIL"  # built into the fixture
    assert v["E1-in-clean"] == "INCONCLUSIVE"  # seeds disagree in the fixture
    assert {"E2-bn-std-ligs", "E2-bn-adv-robust", "E9-transfer"} <= set(v.index)


def test_claims_cli_missing_file(tables_dir: Path, capsys) -> None:
    (tables_dir / "metrics.csv").unlink()
    assert C.main(["--tables", str(tables_dir), "--out", str(tables_dir / "claims.csv")]) != 0
    assert "metrics.csv" in capsys.readouterr().err
