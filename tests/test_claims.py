"""The verdict rule, the claim kinds' generic behaviour, and the claims step on the fixture tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_TABLES
from normrobust import claims as claims_cli
from normrobust.analysis import claims_step
from normrobust.analysis.claims import COLUMNS, change_phrase, find_claim, read_claims
from normrobust.analysis.tables import MissingInputError, read_run_info
from normrobust.analysis.verdicts import FAIL, INCONCLUSIVE, PASS, VERDICTS
from normrobust.studies import STUDIES, analyses

# the verdict rule itself (intervals, directions, calibration): tests/test_verdicts.py


def _with_effect(tables: Path, norm: str, robust: float) -> Path:
    """The tables with E1's headline robust accuracy of ``norm`` set ``robust`` below no norm's, seed by seed (its
    test-sampling error kept small): an effect no seed disagrees on."""
    m = pd.read_csv(tables / "metrics.csv")
    info = read_run_info(tables)
    head = info["config"]["evaluation"]["headline"]
    at = (m["metric"] == "robust_acc") & (m["attack"] == head["attack"]) & (m["eps"] == head["eps"]) & (
        m["arch"] == info["config"]["studies"]["e1_norms"]["archs"][0]) & (m["regime"] == "standard") & (
        m["dataset"] == "generated")
    none = m[at & (m["norm"] == "none")].set_index("seed")["value"]
    m.loc[at & (m["norm"] == "none"), "value"] = 0.6
    m.loc[at & (m["norm"] == norm), "value"] = [0.6 - robust + 0.001 * s for s in m[at & (m["norm"] == norm)]["seed"]]
    m.loc[at, "se"] = 0.005
    learned = (m["metric"] == "clean_acc") & (m["arch"] == info["config"]["studies"]["e1_norms"]["archs"][0]) & (
        m["regime"] == "standard") & (m["dataset"] == "generated") & m["norm"].isin(["none", norm])
    m.loc[learned, ["value", "se"]] = [0.9, 0.01]  # both models learned their task: the claim is testable
    assert len(none)
    m.to_csv(tables / "metrics.csv", index=False)
    return tables


def test_every_enabled_study_has_claims_on_fixtures() -> None:
    df = claims_step.load_and_evaluate(analyses(), FIXTURE_TABLES)
    assert list(df.columns) == COLUMNS
    assert set(df["study"]) == set(STUDIES)  # the fixtures run every study
    assert len(df) >= 15 and df["id"].is_unique
    assert (df["rule"].str.len() > 0).all() and df["rule"].str.contains("INCONCLUSIVE").all()
    assert set(df["verdict"]) <= set(VERDICTS)
    measured = df[df["n_seeds"] >= 2]
    assert len(measured) >= 15
    ok = measured[["ci_low", "ci_high"]].notna().all(axis=1)
    assert ((measured["ci_low"] <= measured["mean_diff"]) & (measured["mean_diff"] <= measured["ci_high"]))[ok].all()
    r = df.set_index("id").loc["E1-bn-robust"]
    assert r["treatment_min"] <= r["treatment_mean"] <= r["treatment_max"]
    assert r["mean_diff"] == pytest.approx(r["treatment_mean"] - r["baseline_mean"])


@pytest.mark.parametrize("robust, verdict", [(0.3, PASS), (-0.3, FAIL), (0.0, INCONCLUSIVE)])
def test_a_known_effect_gets_its_verdict_through_the_claims_step(tables_dir: Path, tmp_path: Path, robust, verdict):
    """BN below no norm by 30 points on every seed: E1-bn-robust PASSes; above: FAILs; equal: INCONCLUSIVE."""
    out = tmp_path / "claims.csv"
    assert claims_cli.main(["--tables", str(_with_effect(tables_dir, "bn", robust)), "--out", str(out)]) == 0
    df = read_claims(out)
    assert list(df.columns) == COLUMNS
    row = df.set_index("id").loc["E1-bn-robust"]
    assert row["verdict"] == verdict
    seeds = read_run_info(tables_dir)["config"]["seeds"]
    assert row["mean_diff"] == pytest.approx(-robust + 0.001 * np.mean(seeds), abs=1e-9)
    assert len(df) == len(claims_step.load_and_evaluate(analyses(), FIXTURE_TABLES))


def test_claims_cli_missing_file(tables_dir: Path, capsys) -> None:
    (tables_dir / "metrics.csv").unlink()
    assert claims_cli.main(["--tables", str(tables_dir), "--out", str(tables_dir / "claims.csv")]) != 0
    assert "metrics.csv" in capsys.readouterr().err


def test_load_reads_only_needed_tables(tables_dir: Path) -> None:
    info = json.loads((tables_dir / "run_info.json").read_text())
    info["config"]["run"] = ["e1_norms", "e5_synthetic"]
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    (tables_dir / "history.csv").unlink()
    (tables_dir / "transfer.csv").unlink()
    modules = analyses()
    assert claims_step.needed_tables(modules, info) == {"metrics", "images"}  # images.csv optional: absent here
    assert set(claims_step.load_and_evaluate(modules, tables_dir)["study"]) == {"e1_norms", "e5_synthetic"}
    info["config"]["run"].append("e10_fgsm")  # now transfer.csv is needed
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(MissingInputError, match="transfer.csv"):
        claims_step.load_and_evaluate(modules, tables_dir)


def test_a_claims_file_from_another_version_is_refused(tmp_path: Path) -> None:
    df = claims_step.load_and_evaluate(analyses(), FIXTURE_TABLES)
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
