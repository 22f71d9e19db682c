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
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS, rule_text, verdict
from normrobust.studies import STUDIES


@pytest.mark.parametrize("diffs,direction,tol,expected", [
    ([-0.10, -0.20], "decrease", 0.0, PASS),
    ([0.10, 0.20], "decrease", 0.0, FAIL),
    ([-0.10, 0.05], "decrease", 0.0, INCONCLUSIVE),
    ([-0.10], "decrease", 0.0, INCONCLUSIVE),  # n < 2
    ([], "increase", 0.0, INCONCLUSIVE),
    ([0.0, 0.1], "increase", 0.0, INCONCLUSIVE),  # a zero difference is on neither side
    ([0.3, 0.1, 0.2], "increase", 0.0, PASS),
    ([-0.005, 0.02], "increase_or_keep", 0.01, PASS),  # a small drop within tolerance counts as kept
    ([-0.02, -0.03], "increase_or_keep", 0.01, FAIL),
    ([-0.02, 0.03], "increase_or_keep", 0.01, INCONCLUSIVE),
    ([0.005, -0.01], "small", 0.02, PASS),
    ([0.05, 0.03], "small", 0.02, FAIL),
    ([-0.05, -0.03], "small", 0.02, FAIL),
    ([0.05, -0.05], "small", 0.02, INCONCLUSIVE),
    ([float("nan"), -0.1], "decrease", 0.0, INCONCLUSIVE),  # NaN dropped → n = 1
])
def test_verdict_rule(diffs, direction, tol, expected) -> None:
    assert verdict(diffs, direction, tol) == expected


def test_rule_text_states_delta_and_tolerance() -> None:
    assert rule_text("decrease", 0, "ligs", "x") == ("Δ = x; PASS if Δ < 0 on every seed (n ≥ 2); FAIL if Δ > 0 "
                                                      "on every seed; else INCONCLUSIVE")
    assert "|Δ| ≤ 2 points" in rule_text("small", 0.02, "clean_acc")
    assert "|Δ| ≤ 0.05" in rule_text("small", 0.05, "ligs")
    assert "Δ ≥ −1 point" in rule_text("increase_or_keep", 0.01, "clean_acc")
    assert "Δ ≤ 1 point" in rule_text("decrease_or_keep", 0.01, "clean_error")
    with pytest.raises(ValueError, match="allowed: increase"):
        rule_text("sideways", 0, "ligs")


def test_every_enabled_study_has_claims_on_fixtures() -> None:
    df = report.load_and_evaluate(list(STUDIES.values()), FIXTURE_TABLES)
    assert list(df.columns) == COLUMNS
    assert set(df["study"]) == set(STUDIES)  # the fixtures enable every study
    assert len(df) >= 15 and df["id"].is_unique
    assert (df["rule"].str.len() > 0).all() and df["rule"].str.contains("INCONCLUSIVE").all()
    v = df.set_index("id")["verdict"]
    for cid in ("E1-bn-robust", "E1-bn-ligs", "E5-bn-nrf", "E5-rank", "E3-drobust-bn-clean", "E4-bn-t1",
                "E6-bn-vs-norm", "E7-bn-advprop-clean", "E8-bn-ligs_w1-robust", "E9-transfer", "E9-early-stop",
                "E9-robust-source-pgd_small", "E10-linear-fgsm-error", "E10-maxout-fgsm-halves",
                "E10-maxout-transfer-asym"):
        assert v[cid] == PASS, cid
    for cid in ("E1-gn-robust", "E8-bn-ligs_w10-clean", "E9-robust-source-pgd_linf"):  # built into the fixtures
        assert v[cid] == FAIL, cid
    for cid in ("E1-in-clean", "E3-ddet-bn-clean", "E6-bn-depth-ligs", "E9-rf-nrf"):
        assert v[cid] == INCONCLUSIVE, cid
    r = df.set_index("id").loc["E1-bn-robust"]
    assert r["treatment_min"] <= r["treatment_mean"] <= r["treatment_max"]
    assert r["mean_diff"] == pytest.approx(r["treatment_mean"] - r["baseline_mean"])


def test_claims_cli_on_fixtures(tmp_path: Path) -> None:
    out = tmp_path / "claims.csv"
    assert claims_cli.main(["--tables", str(FIXTURE_TABLES), "--out", str(out)]) == 0
    df = read_claims(out)
    assert list(df.columns) == COLUMNS
    v = df.set_index("id")["verdict"]
    assert v["E1-bn-robust"] == "PASS" and v["E1-gn-robust"] == "FAIL" and v["E1-in-clean"] == "INCONCLUSIVE"
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
