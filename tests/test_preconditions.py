"""Preconditions: a comparison of models that learned nothing, of a transfer source that does not fool itself, or of a
derived set that does not carry its feature is NOT TESTABLE, named; the claims step writes the preconditions table."""

from __future__ import annotations

import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, claim_row, run_info, study_claims
from normrobust import claims as claims_cli
from normrobust.analysis import preconditions
from normrobust.analysis.claims import cell, evaluate, pair
from normrobust.analysis.metric import CLEAN, LIGS
from normrobust.analysis.verdicts import INCONCLUSIVE, MANIPULATION_CHECK, NOT_TESTABLE, PASS

E1 = {"e1_norms": {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]}}


def _metrics(clean: dict[str, float], ligs: dict[str, float]) -> pd.DataFrame:
    rows = []
    for norm in ("none", "bn"):
        for s in (0, 1, 2):
            base = dict(dataset="generated", arch="cnn", norm=norm, regime="standard", seed=s, attack="none", eps=0.0)
            rows += [dict(base, metric="clean_acc", value=clean[norm] + 0.001 * s, n=300, se=0.01),
                     dict(base, metric="ligs", value=ligs[norm] + 0.001 * s, n=300, se=0.001)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("clean_bn, verdict", [(0.9, PASS), (0.15, NOT_TESTABLE)])
def test_a_model_that_learned_nothing_makes_a_claim_not_testable(clean_bn, verdict):
    """E1-bn-ligs with BN clearly lower LIGS: PASS when both models learned; NOT TESTABLE, naming the model and the
    condition, when BN sits near chance (15 % with 10 classes, below chance + 20 points)."""
    m = _metrics({"none": 0.9, "bn": clean_bn}, {"none": 0.95, "bn": 0.6})
    info = run_info(E1, datasets={"generated": {"kind": "generated", "num_classes": 10}})
    from normrobust.analysis.claims_step import expand_claims
    from normrobust.studies import analysis

    claims = expand_claims([analysis("e1_norms")], info)
    frames = {"metrics": m}
    judged, table = preconditions.judge_all(claims, frames)
    df = preconditions.apply(evaluate(claims, frames), judged)
    row = claim_row(df, "E1-bn-ligs")
    assert row["verdict"] == verdict
    assert row["mean_diff"] == pytest.approx(-0.35)  # the measurement is kept either way
    if verdict == NOT_TESTABLE:
        assert row["note"].startswith("precondition not shown: generated/cnn/BN/standard learned clean accuracy")
        assert "FAIL" in row["note"] and "30%" in row["note"]
    t = table[table["claim"] == "E1-bn-ligs"]
    assert len(t) == 2 and set(t["verdict"]) == ({PASS} if verdict == PASS else {PASS, "FAIL"})
    assert t["level"].tolist() == pytest.approx([0.3, 0.3])


def test_white_box_carries_any_of_and_similar_are_judged_by_the_interval_rule():
    transfer = pd.DataFrame([dict(study="e9_transfer", dataset="g", seed=s, source_arch="r", source_norm=n,
                                  source_regime="standard", source_final=True, white_box_rate=rate, white_box_n=300)
                             for s in (0, 1) for n, rate in (("none", 0.99), ("bn", 0.5))])
    ok = preconditions.white_box("e9_transfer", {"source_norm": "none", "source_final": True}, 0.9, "none")
    bad = preconditions.white_box("e9_transfer", {"source_norm": "bn", "source_final": True}, 0.9, "bn")
    assert ok.judge({"transfer": transfer}).holds and not bad.judge({"transfer": transfer}).holds
    derived = pd.DataFrame([dict(name="d_nr", n=1000, intended_rate=0.35), dict(name="d_r", n=1000,
                                                                                   intended_rate=0.95)])
    assert preconditions.carries("d_r", 0.8, "x").judge({"derived": derived}).holds
    j = preconditions.carries("d_nr", 0.8, "x").judge({"derived": derived})
    assert j.verdict == "FAIL" and j.hi < 0.8
    assert preconditions.carries("d_x", 0.8, "x").judge({}).verdict == INCONCLUSIVE  # not shown: not testable
    either = preconditions.any_of("one of two", [bad, ok])
    assert either.judge({"transfer": transfer}).holds
    m = _metrics({"none": 0.9, "bn": 0.5}, {"none": 0.9, "bn": 0.9})
    a, b = cell("generated", "cnn", "none", "standard"), cell("generated", "cnn", "bn", "standard")
    assert not preconditions.similar("e1", a, b, CLEAN, 0.05).judge({"metrics": m}).holds
    m2 = _metrics({"none": 0.9, "bn": 0.9}, {"none": 0.9, "bn": 0.9})
    assert preconditions.similar("e1", a, b, CLEAN, 0.05).judge({"metrics": m2}).holds


def test_a_manipulation_check_is_marked_in_the_claims_table():
    m = _metrics({"none": 0.9, "bn": 0.9}, {"none": 0.95, "bn": 0.6})
    c = pair("X-ligs", "e8", "a LIGS penalty raises LIGS", LIGS, cell("generated", "cnn", "none", "standard"),
             cell("generated", "cnn", "bn", "standard"), "increase")
    c.kind = MANIPULATION_CHECK
    df = evaluate([c], {"metrics": m})
    assert df["kind"].tolist() == [MANIPULATION_CHECK]
    e8 = study_claims("e8_ligs_reg", run_info({"e8_ligs_reg": {"dataset": "g", "archs": ["cnn"], "norms": ["bn"],
                                                               "regimes": ["standard", "lg"]}},
                                              regimes={"standard": {"attack": None},
                                                       "lg": {"attack": None, "objective": "ligs_reg"}}),
                      metrics=m)
    kinds = e8.set_index("id")["kind"]
    assert kinds["E8-bn-lg-ligs"] == MANIPULATION_CHECK and kinds["E8-bn-lg-robust"] == "evidence"


def test_the_claims_step_writes_the_preconditions_table(tmp_path):
    out = tmp_path / "claims.csv"
    assert claims_cli.main(["--tables", str(FIXTURE_TABLES), "--out", str(out)]) == 0
    table = pd.read_csv(tmp_path / "preconditions.csv", keep_default_na=False, na_values=[""])
    claims = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == preconditions.COLUMNS and len(table) > len(claims)
    assert set(table["claim"]) <= set(claims["id"])
    failed = set(table[table["verdict"] != PASS]["claim"])
    assert set(claims[claims["verdict"] == NOT_TESTABLE]["id"]) == failed, "NOT TESTABLE exactly where one fails"


def test_a_derived_set_of_real_images_is_held_to_the_held_out_readers_level():
    """By the ground truth (the generated data, through any chain of bases) a set must carry its feature on the
    study's level; by a held-out reader (real images) on chance + the study's reader margin."""
    from normrobust.analysis.preconditions import carries_level

    config = {"datasets": {
        "generated": {"kind": "generated", "num_classes": 10}, "fmnist": {"kind": "fashion_mnist"},
        "d_r": {"kind": "derived", "method": "robust", "base": "generated"},
        "d_c": {"kind": "derived", "method": "conflict", "base": "d_r"},
        "f_r": {"kind": "derived", "method": "robust", "base": "fmnist"},
        "f_c": {"kind": "derived", "method": "conflict", "base": "f_r"}}}
    assert carries_level(config, "d_r", 0.8, 0.2) == carries_level(config, "d_c", 0.8, 0.2) == 0.8
    assert carries_level(config, "f_r", 0.8, 0.2) == carries_level(config, "f_c", 0.8, 0.2) == pytest.approx(0.3)


def test_only_the_generated_data_has_known_features():
    """E9-rf-nrf splits a perturbation by the feature templates: on real images it is NOT TESTABLE, not 'not
    measured' among the INCONCLUSIVE ones."""
    from normrobust.analysis.preconditions import known_features
    from normrobust.analysis.verdicts import FAIL, PASS

    config = {"datasets": {"generated": {"kind": "generated"}, "mnist": {"kind": "mnist"}}}
    assert known_features(config, "generated").judge({}).verdict == PASS
    real = known_features(config, "mnist").judge({})
    assert real.verdict == FAIL and "real images" in real.note


@pytest.mark.parametrize("base_seeds, holds", [((1.0, 1.0, 1.0), False), ((0.63, 0.62, 0.24), True),
                                               ((0.97, 0.96, 0.975), True)])
def test_an_increase_over_a_baseline_at_the_ceiling_is_not_testable(base_seeds, holds):
    """A baseline scoring 100 % on every seed leaves no room for an increase (the claim could only be INCONCLUSIVE);
    one whose seeds vary widely, or that sits just below the ceiling, keeps its claim testable."""
    rows = []
    for norm, values in (("none", (1.0, 1.0, 1.0)), ("bn", base_seeds)):
        for s, v in enumerate(values):
            rows.append(dict(dataset="generated", arch="cnn", norm=norm, regime="standard", seed=s, attack="none",
                             eps=0.0, metric="clean_acc", value=v, n=300, se=(v * (1 - v) / 300) ** 0.5))
    claim = pair("X", "s", "none raises clean accuracy over BN", CLEAN, cell("generated", "cnn", "none", "standard"),
                 cell("generated", "cnn", "bn", "standard"), "increase")
    preconditions.attach_room([claim])
    assert len(claim.requires) == 1
    j = claim.requires[0].judge({"metrics": pd.DataFrame(rows)})
    assert j.holds == holds
    decrease = pair("Y", "s", "x", LIGS, cell("generated", "cnn", "none", "standard"),
                    cell("generated", "cnn", "bn", "standard"), "decrease")
    assert not preconditions.attach_room([decrease])[0].requires, "LIGS is not a fraction: no ceiling"
