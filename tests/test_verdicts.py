"""The verdict rule (normrobust.analysis.verdicts): its decisions on known intervals, and its calibration.

Calibration, first on Δ directly: claims with no effect (for "small": an effect exactly at the tolerance) are
simulated the way the pipeline measures them (a seed-to-seed spread, and test-sampling error common to all seeds
because every seed is evaluated on the same test images, plus an independent part), and the rule must give PASS or
FAIL in at most 5 % of them. Then with shared per-image structure, through the claims' own estimator (below the
second rule of dashes): paired cells on the same images, transfer averages over K targets that see the same
adversarial images, and the rank claim: a directional claim's false PASS (and false FAIL) in at most 2.5 % of
claims each. The measured rates are printed (pytest -s shows them).
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


def test_an_independent_floor_is_divided_by_the_seeds() -> None:
    """shared=False (the rank claim: sampling each seed draws afresh): the floor is mean(v) / n, not mean(v)."""
    d, v = [0.1, 0.3, 0.2, 0.25], [0.01, 0.012, 0.008, 0.01]
    mean, lo, hi, n = interval(d, v, shared=False)
    seed = t975(3) * np.std(d, ddof=1) / 2
    assert hi - mean == pytest.approx(math.hypot(seed, 1.959964 * math.sqrt(0.01 / 4)))
    assert interval(d, v)[2] - mean == pytest.approx(math.hypot(seed, 1.959964 * math.sqrt(0.01)))
    assert verdict(d, "increase", variances=v, shared=False) == PASS and verdict(d, "increase", variances=v) != PASS


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
    """Null effect through the whole claims path: simulated metrics.csv and images.csv rows (per-image correctness of
    two equivalent cells on one shared test set, 3 seeds, the evaluation's standard errors) → Pair claims → verdicts;
    the paired variance is used (the test_se column is below the independent one)."""
    from normrobust.analysis.claims import cell, evaluate, pair
    from normrobust.analysis.metric import CLEAN
    from normrobust.perimage import encode
    from normrobust.sampling import rate_se

    rng = np.random.default_rng(11)
    n_claims, n_images, seeds = 300, 300, (0, 1, 2)
    difficulty = rng.beta(2, 1, size=(n_claims, n_images))  # P(correct) per image, shared by every model: the
    rows, images, claims, independent = [], [], [], []  # test set's draw moves all seeds and both cells alike
    for i in range(n_claims):
        for norm in ("bn", "none"):
            skill = rng.normal(0, 0.3, size=len(seeds))  # seed-to-seed variation of the model
            for s, k in zip(seeds, skill):
                p = 1 / (1 + np.exp(-(np.log(difficulty[i] / (1 - difficulty[i] + 1e-9)) + k)))
                right = (rng.random(n_images) < p).astype(float)
                acc = float(right.mean())
                keys = dict(dataset=f"d{i}", arch="cnn", norm=norm, regime="standard", seed=s, metric="clean_acc",
                            attack="none", eps=0)
                rows.append({**keys, "value": acc, "n": n_images, "se": float(rate_se(acc, n_images))})
                images.append({**keys, "n": n_images, "values": encode(right)})
                independent.append(rate_se(acc, n_images) ** 2)
        claims.append(pair(f"c{i}", "sim", "no effect", CLEAN, cell(f"d{i}", "cnn", "bn", "standard"),
                           cell(f"d{i}", "cnn", "none", "standard"), "increase"))
    out = evaluate(claims, {"metrics": pd.DataFrame(rows), "images": pd.DataFrame(images)})
    rate = float(out["verdict"].isin([PASS, FAIL]).mean())
    old_se = np.sqrt(np.asarray(independent).reshape(n_claims, 2, 3).sum(axis=1).mean(axis=1))
    print(f"\ncalibration: end to end, {n_claims} simulated null claims (3 seeds, {n_images} shared test images): "
          f"PASS+FAIL {rate:.2%}; test se paired / independent, median {np.median(out['test_se'] / old_se):.2f}")
    assert rate <= MAX_FALSE + 3 * math.sqrt(MAX_FALSE * (1 - MAX_FALSE) / n_claims)
    assert out["ci_low"].notna().all() and (out["ci_low"] < out["ci_high"]).all()
    assert (out["test_se"] < old_se).mean() > 0.9


# ------------------------------------------------------------- calibration with shared per-image structure
#
# Each simulated claim has its own test set: per-image difficulty shared by every cell, seed and target scored on
# it, cell × image effects shared by the seeds of a cell, the model of each seed its own, and no true effect. The
# per-seed Δ and variances are made by the estimator the claims use (normrobust.analysis.paired, vectorised over the
# simulated claims) and judged by the rule; a few simulated claims also go through the claim classes' measure() and
# evaluate(), which must give the same numbers and verdicts (the *_through_the_claims tests).
#
# The checks: a false PASS (and a false FAIL) of a directional claim in at most 2.5 % of claims, PASS + FAIL in at
# most 5 %, each allowing 3 Monte Carlo standard errors above the level (a one-sided binomial check at about 0.1 %).

SIMS = 4000  # simulated claims per setting (the transfer ones: TRANSFER_SIMS)
TRANSFER_SIMS = 2000
PER_SIDE, TWO_SIDED = 0.025, 0.05


def _bound(level: float, sims: int) -> float:
    """The largest measured rate consistent with a true rate ``level``: 3 Monte Carlo standard errors above it."""
    return level + 3 * math.sqrt(level * (1 - level) / sims)


def _sides(d: np.ndarray, v: np.ndarray, shared: bool = True) -> tuple[float, float]:
    """(lo > 0, hi < 0) rates of the intervals: an "increase" claim's false PASS and false FAIL (a "decrease"
    claim's false FAIL and false PASS)."""
    _, lo, hi = intervals(d, v, shared)
    return float((lo > 0).mean()), float((hi < 0).mean())


def _check_sides(what: str, d: np.ndarray, v: np.ndarray, shared: bool = True) -> tuple[float, float]:
    up, down = _sides(d, v, shared)
    sims = len(d)
    print(f"\ncalibration: {what}: lo > 0 {up:.2%}, hi < 0 {down:.2%}, PASS+FAIL {up + down:.2%} ({sims} claims)")
    assert up <= _bound(PER_SIDE, sims) and down <= _bound(PER_SIDE, sims)
    assert up + down <= _bound(TWO_SIDED, sims)
    return up, down


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _paired_sim(rng: np.random.Generator, sims: int, seeds: int, n: int, common: float, fixed: float,
                model_sd: float):
    """Per-image correctness of two exchangeable cells (no effect), [sims, seeds, n] each. Logit of P(right) = image
    difficulty (shared by both cells and every seed) + cell × image effect (shared by a cell's seeds) + the seed's
    model (sd ``model_sd``), and a per-image draw: the share ``fixed`` of its noise is the cell's own on that image,
    the same on every seed (1: a cell's models err on the same images on every seed); of the rest, the share
    ``common`` is common to the two cells of a seed (0.9: nearly the same predictions, two models that read the same
    feature)."""
    from scipy.special import ndtr

    difficulty = rng.normal(1.0, 2.0, (sims, 1, n))
    both = rng.standard_normal((sims, seeds, n))
    out = []
    for _ in range(2):
        logit = difficulty + rng.normal(0, 0.5, (sims, 1, n)) + rng.normal(0, model_sd, (sims, seeds, 1))
        z = math.sqrt(common) * both + math.sqrt(1 - common) * rng.standard_normal((sims, seeds, n))
        z = math.sqrt(fixed) * rng.standard_normal((sims, 1, n)) + math.sqrt(1 - fixed) * z
        out.append((ndtr(z) < _sigmoid(logit)).astype(float))
    return out


def _paired_measure(t: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Δ, paired variance, the old independent variance) per simulated claim and seed, as Pair measures them."""
    from normrobust.analysis import paired
    from normrobust.sampling import rate_se

    n = t.shape[-1]
    d = t.mean(-1) - b.mean(-1)
    v = paired.variance([paired.influence(t), paired.influence(b)], (1.0, -1.0))
    old = rate_se(t.mean(-1), n) ** 2 + rate_se(b.mean(-1), n) ** 2
    return d, v, old


PAIRED = [  # (seeds, common, fixed, model sd): see _paired_sim
    (2, 0.0, 0.0, 0.2), (3, 0.5, 0.5, 0.05), (5, 0.9, 0.5, 0.05),
    (3, 0.0, 1.0, 0.02), (5, 0.0, 1.0, 0.0),  # the test images' draw all but the whole error: the rule at its level
]


@pytest.mark.parametrize("seeds,common,fixed,model_sd", PAIRED)
def test_calibration_paired_cells_on_the_same_images(seeds, common, fixed, model_sd) -> None:
    rng = np.random.default_rng(100 + seeds + int(10 * common) + int(100 * fixed))
    t, b = _paired_sim(rng, SIMS, seeds, 300, common, fixed, model_sd)
    d, v, old = _paired_measure(t, b)
    _check_sides(f"paired, {seeds} seeds, {common:.0%} common, {fixed:.0%} fixed, model sd {model_sd}", d, v)
    # "small" with the effect at its tolerance, and "increase_or_keep" with the effect at −tol (tol: 3 half-widths,
    # so that the band's other edge plays no part)
    _, lo, hi = intervals(d, v)
    tol = 1.5 * float(np.median(hi - lo))
    lo, hi = lo + tol, hi + tol
    small = float((decisions(lo, hi, "small", tol) == PASS).mean())
    keep = decisions(lo - 2 * tol, hi - 2 * tol, "increase_or_keep", tol)
    keep_pass, keep_fail = float((keep == PASS).mean()), float((keep == FAIL).mean())
    print(f"calibration: paired 'small' at its tolerance ({tol:.3f}): false PASS {small:.2%}; 'increase_or_keep' "
          f"at −tol: PASS {keep_pass:.2%}, FAIL {keep_fail:.2%}")
    assert small <= _bound(PER_SIDE, SIMS) and keep_pass <= _bound(PER_SIDE, SIMS)
    assert keep_pass + keep_fail <= _bound(TWO_SIDED, SIMS)
    # the paired interval is narrower than the old independent one, never wider on average
    _, lo_new, hi_new = intervals(d, v)
    _, lo_old, hi_old = intervals(d, old)
    ratio = float(np.median(np.sqrt(v / old)))
    print(f"calibration: paired test se / independent test se, median {ratio:.2f}; mean half-width "
          f"{np.mean(hi_new - lo_new) / 2:.4f} vs {np.mean(hi_old - lo_old) / 2:.4f}")
    assert ratio < 0.9 and np.mean(hi_new - lo_new) < np.mean(hi_old - lo_old)


def test_calibration_paired_through_the_claims() -> None:
    """A few simulated paired claims as tables (metrics.csv + images.csv) through Pair.measure and evaluate: the
    same Δ, variances and verdicts as the vectorised simulation."""
    from normrobust.analysis.claims import cell, evaluate, pair
    from normrobust.analysis.metric import CLEAN
    from normrobust.perimage import encode

    rng = np.random.default_rng(5)
    t, b = _paired_sim(rng, 8, 3, 300, 0.5, 0.5, 0.05)
    d, v, _ = _paired_measure(t, b)
    _, lo, hi = intervals(d, v)
    for i in range(len(d)):
        rows, images = [], []
        for norm, x in (("bn", t[i]), ("none", b[i])):
            for s in range(3):
                keys = dict(dataset="d", arch="cnn", norm=norm, regime="standard", seed=s, metric="clean_acc",
                            attack="none", eps=0.0)
                rows.append({**keys, "value": x[s].mean(), "n": 300, "se": 0.03})
                images.append({**keys, "n": 300, "values": encode(x[s])})
        frames = {"metrics": pd.DataFrame(rows), "images": pd.DataFrame(images)}
        claim = pair("c", "sim", "no effect", CLEAN, cell("d", "cnn", "bn", "standard"),
                     cell("d", "cnn", "none", "standard"), "increase")
        m = claim.measure(frames)
        assert m.diff.to_numpy() == pytest.approx(d[i]) and m.var.to_numpy() == pytest.approx(v[i])
        row = evaluate([claim], frames).iloc[0]
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo[i]), pytest.approx(hi[i]))
        assert row["verdict"] == decide(lo[i], hi[i], "increase")


def _transfer_sim(rng: np.random.Generator, sims: int, seeds: int, targets: int, n: int):
    """Per-image success of a treatment and a baseline source (no effect) on K targets, [sims, seeds, K, n] each, NaN
    where the target is wrong clean (the same images in both sides' rows of a target). Logit of P(fooled) = the
    image's vulnerability (shared by every source, target and seed) + the kind of source × image (shared by its
    seeds and targets: which images a kind of source turns into examples that fool every target) + this seed's
    adversarial example (shared by the K targets) + source and target models (small: the shared images dominate)."""
    right = rng.random((sims, seeds, targets, n)) < _sigmoid(
        rng.normal(1.5, 1.5, (sims, 1, 1, n)) + rng.normal(0, 0.1, (sims, seeds, targets, 1)))
    vulnerable = rng.normal(-0.5, 1.5, (sims, 1, 1, n))
    target = rng.normal(0, 0.1, (sims, seeds, targets, 1))
    out = []
    for _ in range(2):
        logit = (vulnerable + rng.normal(0, 2.5, (sims, 1, 1, n)) + rng.normal(0, 0.3, (sims, seeds, 1, n))
                 + rng.normal(0, 0.05, (sims, seeds, 1, 1)) + target)
        s = (rng.random((sims, seeds, targets, n)) < _sigmoid(logit)).astype(float)
        s[~right] = np.nan
        out.append(s)
    return out


def _transfer_measure(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Δ, per-image variance, the old Σ var / K² variance) per simulated claim and seed, as Transfer measures them
    (one source per side, the same K targets)."""
    from normrobust.analysis import paired
    from normrobust.sampling import rate_se

    k = a.shape[2]
    rates = [np.nanmean(x, axis=-1) for x in (a, b)]
    d = rates[0].mean(-1) - rates[1].mean(-1)
    fa, fb = paired.influence(a), paired.influence(b)
    v = paired.variance([fa[:, :, j] for j in range(k)] + [fb[:, :, j] for j in range(k)], [1 / k] * k + [-1 / k] * k)
    old = sum((rate_se(r, (~np.isnan(x)).sum(-1)) ** 2).sum(-1) for r, x in zip(rates, (a, b))) / k ** 2
    return d, v, old


@pytest.mark.parametrize("targets", [2, 5, 10])
def test_calibration_transfer_targets_on_the_same_adversarial_images(targets) -> None:
    """K targets read the same adversarial images: the per-image variance averaged over the targets keeps a
    directional claim's false verdicts within 2.5 % per side at 2, 5 and 10 seeds; the old Σ var / K² does not."""
    rng = np.random.default_rng(300 + targets)
    for seeds in (2, 5, 10):
        parts = [_transfer_measure(*_transfer_sim(rng, 250, seeds, targets, 100)) for _ in range(TRANSFER_SIMS // 250)]
        d, v, old = (np.concatenate(x) for x in zip(*parts))
        _check_sides(f"transfer, {targets} targets, {seeds} seeds", d, v)
        up, down = _sides(d, old)
        print(f"calibration: transfer, {targets} targets, {seeds} seeds, the old Σ var / K²: PASS+FAIL "
              f"{up + down:.2%}")
        if seeds >= 5 and targets >= 5:  # the old rule's false verdicts, beyond any Monte Carlo error
            assert up + down > _bound(TWO_SIDED, TRANSFER_SIMS) and max(up, down) > _bound(PER_SIDE, TRANSFER_SIMS)


def test_calibration_transfer_through_the_claims() -> None:
    from normrobust.analysis.claims import evaluate
    from normrobust.analysis.transfer_claim import Transfer
    from normrobust.perimage import encode

    rng = np.random.default_rng(6)
    a, b = _transfer_sim(rng, 6, 2, 3, 100)
    d, v, _ = _transfer_measure(a, b)
    _, lo, hi = intervals(d, v)
    base = dict(study="sim", dataset="d", source_arch="cnn", source_regime="standard", source_epoch=6,
                source_final=True, target_arch="cnn", target_regime="standard", error_rate=0.5, n_total=100)
    for i in range(len(d)):
        rows = [{**base, "seed": s, "source_norm": src, "target_norm": f"t{j}", "success_rate": np.nanmean(x[i, s, j]),
                 "n": int((~np.isnan(x[i, s, j])).sum()), "images": encode(x[i, s, j])}
                for src, x in (("none", a), ("bn", b)) for s in range(2) for j in range(3)]
        claim = Transfer(id="c", study="sim", text="x", metric="success_rate", direction="increase",
                         treat={"source_norm": "none"}, base={"source_norm": "bn"}, dataset="d")
        frames = {"transfer": pd.DataFrame(rows)}
        m = claim.measure(frames)
        assert m.diff.to_numpy() == pytest.approx(d[i]) and m.var.to_numpy() == pytest.approx(v[i])
        assert evaluate([claim], frames).iloc[0]["verdict"] == decide(lo[i], hi[i], "increase")


RANK_CELLS = [("d", "cnn", norm, regime) for norm in ("none", "bn", "ln") for regime in ("standard", "pgd_linf")]


def _rank_sim(rng: np.random.Generator, sims: int, seeds: int, cells: int, n: int, strength: float):
    """Two metrics of each cell and seed, [sims, seeds, cells] each, from per-image values on one test set: x the
    mean of a continuous value (LIGS-like), y a rate (NRF reliance-like). Image effects are shared by every cell and
    seed, cell × image effects by a cell's seeds; each seed's models are their own. ``strength``: a cell-level truth
    that raises x and lowers y (0: x and y unrelated over the cells, a true ρ of 0)."""
    truth = np.linspace(-1, 1, cells)[None, None, :, None]
    x = (0.6 + 0.1 * rng.normal(0, 1, (sims, 1, 1, n)) + 0.05 * rng.normal(0, 1, (sims, 1, cells, n))
         + 0.03 * rng.normal(0, 1, (sims, seeds, cells, 1)) + 0.1 * rng.normal(0, 1, (sims, seeds, cells, n))
         + 0.03 * strength * truth).mean(-1)
    logit = (rng.normal(0, 1.5, (sims, 1, 1, n)) + rng.normal(0, 0.5, (sims, 1, cells, n))
             + rng.normal(0, 0.3, (sims, seeds, cells, 1)) - strength * 0.3 * truth)
    y = (rng.random((sims, seeds, cells, n)) < _sigmoid(logit)).mean(-1)
    return x, y


def _rank_measure(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Fisher z of Spearman's ρ over the cells, its variance 1.06 / (m − 3)) per simulated claim and seed, as Rank
    measures them."""
    from scipy.stats import rankdata

    from normrobust.analysis.claims import RANK_CLIP, RANK_Z_VARIANCE

    rx, ry = rankdata(x, axis=-1), rankdata(y, axis=-1)  # average ranks for ties, as selection.spearman
    rx, ry = rx - rx.mean(-1, keepdims=True), ry - ry.mean(-1, keepdims=True)
    rho = (rx * ry).sum(-1) / np.sqrt((rx ** 2).sum(-1) * (ry ** 2).sum(-1))
    assert np.isfinite(rho).all()  # no metric constant over the cells
    m = x.shape[-1]
    return np.arctanh(np.clip(rho, -RANK_CLIP, RANK_CLIP)), np.full(rho.shape, RANK_Z_VARIANCE / (m - 3))


@pytest.mark.parametrize("seeds", [3, 5])
def test_calibration_rank_with_no_true_correlation(seeds) -> None:
    """ρ = 0 over the cells: the rank claim's interval, its 1.06 / (m − 3) independent across seeds, keeps false
    verdicts within 2.5 % per side."""
    rng = np.random.default_rng(400 + seeds)
    z, v = _rank_measure(*_rank_sim(rng, SIMS, seeds, len(RANK_CELLS), 200, 0.0))
    _check_sides(f"rank, {seeds} seeds, {len(RANK_CELLS)} cells, true ρ = 0", z, v, shared=False)


def test_rank_power_grows_with_seeds() -> None:
    """A strong true rank correlation (negative, as E5 claims) is decided more often with more seeds; with the old
    floor (added in full, as if shared by the seeds) the interval never narrows below ±1.96·√(1.06 / (m − 3))."""
    rng = np.random.default_rng(7)
    power, old = {}, {}
    for seeds in (3, 5, 10):
        z, v = _rank_measure(*_rank_sim(rng, 1000, seeds, len(RANK_CELLS), 200, 3.0))
        _, _, hi = intervals(z, v, shared=False)
        _, _, hi_old = intervals(z, v)
        power[seeds], old[seeds] = float((hi < 0).mean()), float((hi_old < 0).mean())
        print(f"\nrank power: {seeds} seeds, mean ρ {np.tanh(z).mean():+.2f}: PASS {power[seeds]:.1%} "
              f"(old, shared floor: {old[seeds]:.1%})")
    assert power[3] + 0.05 < power[5] and power[5] + 0.05 < power[10] and power[10] > 0.8
    assert power[10] > old[10] + 0.05
    # more cells, the same seeds: 1.06 / (m − 3) shrinks too
    z, v = _rank_measure(*_rank_sim(rng, 1000, 3, 10, 200, 3.0))
    more = float((intervals(z, v, shared=False)[2] < 0).mean())
    print(f"rank power: 3 seeds, 10 cells: PASS {more:.1%}")
    assert more > power[3] + 0.05


def test_calibration_rank_through_the_claims() -> None:
    from normrobust.analysis.claims import Rank, evaluate
    from normrobust.analysis.metric import LIGS, Metric

    rng = np.random.default_rng(8)
    x, y = _rank_sim(rng, 8, 3, len(RANK_CELLS), 200, 1.0)
    z, v = _rank_measure(x, y)
    _, lo, hi = intervals(z, v, shared=False)
    claim = Rank(id="c", study="sim", text="x", metric="rho", direction="decrease", x=LIGS, y=Metric("nrf_reliance"),
                 cells=RANK_CELLS)
    for i in range(len(z)):
        rows = [dict(dataset=c[0], arch=c[1], norm=c[2], regime=c[3], seed=s, metric=name, attack="none", eps=0.0,
                     value=float(vals[i, s, j]))
                for s in range(3) for j, c in enumerate(RANK_CELLS)
                for name, vals in (("ligs", x), ("nrf_reliance", y))]
        frames = {"metrics": pd.DataFrame(rows)}
        m = claim.measure(frames)
        assert m.diff.to_numpy() == pytest.approx(z[i]) and m.var.to_numpy() == pytest.approx(v[i])
        row = evaluate([claim], frames).iloc[0]
        assert row["verdict"] == decide(lo[i], hi[i], "decrease")
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(np.tanh(lo[i])), pytest.approx(np.tanh(hi[i])))
