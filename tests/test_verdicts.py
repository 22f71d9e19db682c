"""The verdict rule (normrobust.analysis.verdicts): its decisions on known intervals, and its calibration.

Calibration: claims with no effect (for "small": an effect exactly at the tolerance) are simulated the way the
pipeline measures them (a seed-to-seed spread, and test-sampling error common to all seeds because every seed
is evaluated on the same test images, plus an independent part), and the rule must give PASS or FAIL in at
most 5 % of them. The measured rates are printed (pytest -s shows them).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from normrobust.analysis.verdicts import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    decide,
    decisions,
    interval,
    intervals,
    rule_text,
    t975,
    verdict,
)

REPLICATES = 20_000  # per setting; the Monte Carlo standard error of a 5 % rate is 0.15 points
MAX_FALSE = 0.05  # the rule's promise: at most 5 % false verdicts on a null effect
MC_SLACK = 3 * math.sqrt(MAX_FALSE * (1 - MAX_FALSE) / REPLICATES)  # 3 Monte Carlo standard errors


@pytest.mark.parametrize("diffs,direction,tol,expected", [
    ([-0.10, -0.11, -0.12], "decrease", 0.0, PASS),
    ([0.10, 0.11, 0.12], "decrease", 0.0, FAIL),
    ([-0.10, -0.20], "decrease", 0.0, INCONCLUSIVE),  # 2 seeds: t = 12.7, the interval reaches past 0
    ([-0.10, -0.101], "decrease", 0.0, PASS),  # ... unless the two seeds agree closely
    ([-0.10], "decrease", 0.0, INCONCLUSIVE),  # n < 2
    ([], "increase", 0.0, INCONCLUSIVE),
    ([0.0, 0.0, 0.0], "increase", 0.0, INCONCLUSIVE),  # no difference: on neither side
    ([0.3, 0.1, 0.2], "increase", 0.0, INCONCLUSIVE),  # 3 seeds: mean 0.2 ± 4.3 · 0.058
    ([0.3, 0.25, 0.2], "increase", 0.0, PASS),
    ([-0.004, -0.005, -0.006], "increase_or_keep", 0.01, PASS),  # a small drop within tolerance counts as kept
    ([-0.05, -0.05, -0.051], "increase_or_keep", 0.01, FAIL),
    ([-0.02, 0.03, 0.0], "increase_or_keep", 0.01, INCONCLUSIVE),
    ([0.001, -0.001, 0.0], "small", 0.02, PASS),
    ([0.05, 0.051, 0.052], "small", 0.02, FAIL),
    ([-0.05, -0.051, -0.052], "small", 0.02, FAIL),
    ([0.05, -0.05, 0.0], "small", 0.02, INCONCLUSIVE),
    ([float("nan"), -0.1], "decrease", 0.0, INCONCLUSIVE),  # NaN dropped → n = 1
])
def test_verdict_on_seed_differences(diffs, direction, tol, expected) -> None:
    assert verdict(diffs, direction, tol) == expected


def test_the_test_sampling_floor_stops_a_verdict_on_a_tiny_difference() -> None:
    # E2-none-rf-first on the old rule: a LIGS difference of -0.0015 with both seeds below 0 passed; the LIGS of
    # 100 images has a standard error of about 0.01, so the difference is noise
    diffs = [-0.000983, -0.002017]
    assert verdict(diffs + [-0.0015], "decrease") == PASS  # without the floor three close seeds decide
    assert verdict(diffs + [-0.0015], "decrease", variances=[0.01 ** 2] * 3) == INCONCLUSIVE
    # ... and the floor is added in full: more seeds on the same test images do not shrink it
    mean, lo, hi, n = interval([-0.0015] * 10 + [-0.0016], [0.01 ** 2] * 11)
    assert n == 11 and hi - lo == pytest.approx(2 * 1.959964 * 0.01, rel=0.05)


def test_intervals_agree_with_interval() -> None:
    rng = np.random.default_rng(0)
    d, v = rng.normal(size=(5, 3)), rng.uniform(0, 0.01, size=(5, 3))
    mean, lo, hi = intervals(d, v)
    for i in range(5):
        assert (mean[i], lo[i], hi[i]) == pytest.approx(interval(d[i], v[i])[:3])


def test_interval_is_a_t_interval_without_the_floor() -> None:
    d = [0.1, 0.3, 0.2]
    mean, lo, hi, n = interval(d)
    half = t975(2) * np.std(d, ddof=1) / math.sqrt(3)
    assert (mean, n) == (pytest.approx(0.2), 3)
    assert (lo, hi) == (pytest.approx(0.2 - half), pytest.approx(0.2 + half))
    assert t975(1) == pytest.approx(12.7062, abs=1e-3) and t975(2) == pytest.approx(4.3027, abs=1e-3)
    assert t975(40) == pytest.approx(2.0211, abs=1e-3) and t975(120) == pytest.approx(1.9799, abs=1e-3)


@pytest.mark.parametrize("direction,tol,lo,hi,expected", [
    ("increase", 0, 0.01, 0.2, PASS), ("increase", 0, -0.2, -0.01, FAIL), ("increase", 0, -0.01, 0.2, INCONCLUSIVE),
    ("decrease", 0, -0.2, -0.01, PASS), ("decrease", 0, 0.01, 0.2, FAIL),
    ("increase_or_keep", 0.02, -0.01, 0.05, PASS), ("increase_or_keep", 0.02, -0.09, -0.03, FAIL),
    ("increase_or_keep", 0.02, -0.03, 0.05, INCONCLUSIVE),
    ("decrease_or_keep", 0.02, -0.05, 0.01, PASS), ("decrease_or_keep", 0.02, 0.03, 0.09, FAIL),
    ("small", 0.02, -0.01, 0.01, PASS), ("small", 0.02, 0.03, 0.05, FAIL), ("small", 0.02, -0.05, -0.03, FAIL),
    ("small", 0.02, -0.01, 0.03, INCONCLUSIVE), ("increase", 0, float("nan"), float("nan"), INCONCLUSIVE),
])
def test_decide(direction, tol, lo, hi, expected) -> None:
    assert decide(lo, hi, direction, tol) == expected


def test_rule_text_states_delta_interval_and_tolerance() -> None:
    assert rule_text("decrease", 0, "ligs", "x").startswith("Δ = x; PASS if hi < 0; FAIL if lo > 0; else INCONCLUSIVE")
    assert "within ±2 points" in rule_text("small", 0.02, "clean_acc")
    assert "lo > −1 point" in rule_text("increase_or_keep", 0.01, "clean_acc")
    assert "95 % interval" in rule_text("increase", 0, "ligs")
    with pytest.raises(ValueError, match="allowed: increase"):
        rule_text("sideways", 0, "ligs")


def _simulate(rng: np.random.Generator, n_seeds: int, effect: float, seed_sd: float, test_se: float,
              common: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed differences of REPLICATES simulated claims: effect + seed spread + test-sampling error, of which the
    fraction ``common`` (of the variance) is shared by all seeds (the same test images), the rest independent."""
    shared = rng.normal(0, test_se * math.sqrt(common), (REPLICATES, 1))
    own = rng.normal(0, test_se * math.sqrt(1 - common), (REPLICATES, n_seeds))
    d = effect + rng.normal(0, seed_sd, (REPLICATES, n_seeds)) + shared + own
    return d, np.full_like(d, test_se ** 2)


def _false_rate(d: np.ndarray, v: np.ndarray, direction: str, tol: float, wrong: tuple[str, ...]) -> float:
    _, lo, hi = intervals(d, v)
    return float(np.isin(decisions(lo, hi, direction, tol), wrong).mean())


SETTINGS = [  # (seeds, seed sd, test se, common fraction of the test variance)
    (2, 0.02, 0.0, 0.0), (3, 0.02, 0.0, 0.0), (5, 0.02, 0.0, 0.0),  # seed spread only
    (2, 0.0, 0.02, 1.0), (3, 0.0, 0.02, 1.0), (3, 0.0, 0.02, 0.5),  # test sampling only
    (3, 0.01, 0.02, 0.7), (5, 0.02, 0.01, 0.7),  # both
]


@pytest.mark.parametrize("n_seeds,seed_sd,test_se,common", SETTINGS)
def test_calibration_no_effect_gives_at_most_5_percent_pass_or_fail(n_seeds, seed_sd, test_se, common) -> None:
    rng = np.random.default_rng(2026 + n_seeds)
    d, v = _simulate(rng, n_seeds, 0.0, seed_sd, test_se, common)
    rate = _false_rate(d, v, "increase", 0.0, (PASS, FAIL))
    print(f"\ncalibration: null effect, {n_seeds} seeds, seed sd {seed_sd}, test se {test_se} "
          f"({common:.0%} common): PASS+FAIL {rate:.2%}")
    assert rate <= MAX_FALSE + MC_SLACK


@pytest.mark.parametrize("n_seeds,seed_sd,test_se,common", SETTINGS[1::2])
def test_calibration_an_effect_at_the_tolerance_rarely_passes_as_small(n_seeds, seed_sd, test_se, common) -> None:
    rng = np.random.default_rng(7 + n_seeds)
    tol = 0.03
    d, v = _simulate(rng, n_seeds, tol, seed_sd, test_se, common)  # |effect| = tol: "small" is false
    rate = _false_rate(d, v, "small", tol, (PASS,))
    print(f"\ncalibration: effect at the tolerance, {n_seeds} seeds: false PASS of 'small' {rate:.2%}")
    assert rate <= MAX_FALSE + MC_SLACK


def test_a_real_effect_is_found() -> None:
    """Not calibration but power: an effect of 4 seed sd is found with 3 seeds most of the time."""
    rng = np.random.default_rng(1)
    d, v = _simulate(rng, 3, 0.08, 0.02, 0.01, 0.7)
    assert _false_rate(d, v, "increase", 0.0, (PASS,)) > 0.6


def test_calibration_end_to_end_on_simulated_tables() -> None:
    """Null effect through the whole claims path: simulated metrics.csv rows (per-image correctness of two
    equivalent cells on one shared test set, 3 seeds, the evaluation's standard errors) → Pair claims → verdicts."""
    from normrobust.analysis.claims import cell, evaluate, pair
    from normrobust.analysis.metric import CLEAN
    from normrobust.sampling import rate_se

    rng = np.random.default_rng(11)
    n_claims, n_images, seeds = 1000, 300, (0, 1, 2)
    difficulty = rng.beta(2, 1, size=(n_claims, n_images))  # P(correct) per image, shared by every model: the
    verdicts = []  # test set's draw moves all seeds and both cells alike
    for i in range(n_claims):
        rows = []
        for norm in ("bn", "none"):
            skill = rng.normal(0, 0.3, size=len(seeds))  # seed-to-seed variation of the model
            for s, k in zip(seeds, skill):
                p = 1 / (1 + np.exp(-(np.log(difficulty[i] / (1 - difficulty[i] + 1e-9)) + k)))
                acc = float((rng.random(n_images) < p).mean())
                rows.append(dict(dataset=f"d{i}", arch="cnn", norm=norm, regime="standard", seed=s,
                                 metric="clean_acc", attack="none", eps=0, value=acc, n=n_images,
                                 se=float(rate_se(acc, n_images))))
        claim = pair(f"c{i}", "sim", "no effect", CLEAN, cell(f"d{i}", "cnn", "bn", "standard"),
                     cell(f"d{i}", "cnn", "none", "standard"), "increase")
        verdicts.append(evaluate([claim], {"metrics": pd.DataFrame(rows)}).iloc[0])
    out = pd.DataFrame(verdicts)
    rate = float(out["verdict"].isin([PASS, FAIL]).mean())
    print(f"\ncalibration: end to end, {n_claims} simulated null claims (3 seeds, {n_images} shared test images): "
          f"PASS+FAIL {rate:.2%}")
    assert rate <= MAX_FALSE + 3 * math.sqrt(MAX_FALSE * (1 - MAX_FALSE) / n_claims)
    assert out["ci_low"].notna().all() and (out["ci_low"] < out["ci_high"]).all()
