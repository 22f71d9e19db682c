"""The verdict rule, the claim kinds' generic behaviour, and the claims step on the fixture tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURE_TABLES
from normrobust import claims as claims_cli
from normrobust.analysis import report
from normrobust.analysis.claims import COLUMNS, change_phrase, find_claim, read_claims
from normrobust.analysis.tables import MissingInputError, read_run_info
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS
from normrobust.studies import STUDIES

# the verdict rule itself (intervals, directions, calibration): tests/test_verdicts.py


def test_every_enabled_study_has_claims_on_fixtures() -> None:
    df = report.load_and_evaluate(list(STUDIES.values()), FIXTURE_TABLES)
    assert list(df.columns) == COLUMNS
    assert set(df["study"]) == set(STUDIES)  # the fixtures enable every study
    assert len(df) >= 15 and df["id"].is_unique
    assert (df["rule"].str.len() > 0).all() and df["rule"].str.contains("INCONCLUSIVE").all()
    v = df.set_index("id")["verdict"]
    for cid in ("E1-bn-robust", "E1-ln-robust", "E2-bn-std-robust", "E3-dnonrobust-bn-clean", "E4-bn-t1",
                "E7-bn-advprop-clean", "E8-bn-ligs_w1-robust", "E9-transfer", "E9-robust-source-pgd_small",
                "E10-linear-fgsm-error", "E10-maxout-fgsm-error"):
        assert v[cid] == PASS, cid
    assert v["E9-robust-source-pgd_linf"] == FAIL  # built into the fixtures
    for cid in ("E1-in-clean", "E3-ddet-bn-clean", "E6-bn-depth-ligs", "E9-rf-nrf", "E5-rank"):
        assert v[cid] == INCONCLUSIVE, cid
    ci = df.set_index("id").loc[["E1-bn-robust", "E5-rank"]]
    assert (ci["ci_low"] < ci["mean_diff"]).all() and (ci["mean_diff"] < ci["ci_high"]).all()
    r = df.set_index("id").loc["E1-bn-robust"]
    assert r["treatment_min"] <= r["treatment_mean"] <= r["treatment_max"]
    assert r["mean_diff"] == pytest.approx(r["treatment_mean"] - r["baseline_mean"])


def test_claims_cli_on_fixtures(tmp_path: Path) -> None:
    out = tmp_path / "claims.csv"
    assert claims_cli.main(["--tables", str(FIXTURE_TABLES), "--out", str(out)]) == 0
    df = read_claims(out)
    assert list(df.columns) == COLUMNS
    v = df.set_index("id")["verdict"]
    assert v["E1-bn-robust"] == "PASS" and v["E9-robust-source-pgd_linf"] == "FAIL"
    assert v["E1-in-clean"] == "INCONCLUSIVE"
    assert len(df) == len(report.load_and_evaluate(list(STUDIES.values()), FIXTURE_TABLES))


def test_claims_cli_missing_file(tables_dir: Path, capsys) -> None:
    (tables_dir / "metrics.csv").unlink()
    assert claims_cli.main(["--tables", str(tables_dir), "--out", str(tables_dir / "claims.csv")]) != 0
    assert "metrics.csv" in capsys.readouterr().err


def test_load_reads_only_needed_tables(tables_dir: Path) -> None:
    info = json.loads((tables_dir / "run_info.json").read_text())
    for name, st in info["config"]["studies"].items():
        st["enabled"] = name in ("e1_norms", "e5_synthetic")
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    (tables_dir / "history.csv").unlink()
    (tables_dir / "transfer.csv").unlink()
    modules = list(STUDIES.values())
    assert report.needed_tables(modules, info) == {"metrics"}
    assert set(report.load_and_evaluate(modules, tables_dir)["study"]) == {"e1_norms", "e5_synthetic"}
    info["config"]["studies"]["e10_fgsm"]["enabled"] = True  # now transfer.csv is needed
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(MissingInputError, match="transfer.csv"):
        report.load_and_evaluate(modules, tables_dir)


def test_a_claims_file_from_another_version_is_refused(tmp_path: Path) -> None:
    df = report.load_and_evaluate(list(STUDIES.values()), FIXTURE_TABLES)
    p = tmp_path / "claims.csv"
    df.drop(columns=["rule"]).to_csv(p, index=False)
    with pytest.raises(ValueError, match="lacks column.*rule"):
        read_claims(p)


def test_find_claim_and_change_phrase() -> None:
    df = pd.DataFrame([dict(id="a", metric="clean_acc", mean_diff=-0.248), dict(id="b", metric="ligs", mean_diff=0.1)])
    assert change_phrase(find_claim(df, ["x", "a"]), "clean accuracy") == "lowered clean accuracy by 24.8 points"
    assert change_phrase(find_claim(df, ["b"]), "LIGS") == "raised LIGS by 0.100"
    assert find_claim(df, ["x"]) is None


def test_fixture_run_info_is_current() -> None:
    info = read_run_info(FIXTURE_TABLES)
    assert set(info["config"]["studies"]) == set(STUDIES)
