"""The per-image test-sampling estimator (normrobust.analysis.paired) and its use by the claim kinds: paired
variances from images.csv / transfer.csv's ``images``, the fallback to the recorded standard errors without them,
and images.csv read and checked like the other tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normrobust.analysis import paired
from normrobust.analysis.claims import Dominance, Rank, cell, evaluate, level, pair
from normrobust.analysis.metric import CLEAN, LIGS, Metric
from normrobust.analysis.tables import TableError, read_optional, read_table
from normrobust.analysis.transfer_claim import Transfer
from normrobust.analysis.verdicts import PASS, interval
from normrobust.perimage import encode
from normrobust.sampling import rate_se

KEYS = ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps"]


def _tables(cells: dict[str, np.ndarray], metric: str = "clean_acc", images: bool = True):
    """metrics.csv and images.csv rows of cells norm → per-image values [seeds, n] (dataset d, arch cnn, standard)."""
    rows, img = [], []
    for norm, per_seed in cells.items():
        for s, v in enumerate(per_seed):
            keys = dict(dataset="d", arch="cnn", norm=norm, regime="standard", seed=s, metric=metric, attack="none",
                        eps=0.0)
            k = int((~np.isnan(v)).sum())
            value = float(np.nanmean(v))
            se = float(rate_se(value, k)) if metric.endswith("acc") else float(np.nanstd(v, ddof=1) / np.sqrt(k))
            rows.append({**keys, "value": value, "n": k, "se": se})
            img.append({**keys, "n": len(v), "values": encode(v)})
    frames = {"metrics": pd.DataFrame(rows)}
    if images:
        frames["images"] = pd.DataFrame(img)
    return frames


def _c(norm: str) -> dict:
    return cell("d", "cnn", norm, "standard")


def test_influence_and_variance_of_one_mean_and_of_a_paired_difference() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(0.5, 0.2, 400)
    v[::10] = np.nan  # dropped images carry no influence
    f = paired.influence(v)
    assert f[::10].tolist() == [0.0] * 40 and f.mean() == pytest.approx(0.0, abs=1e-12)
    k = int((~np.isnan(v)).sum())
    assert paired.variance([f], [1.0]) == pytest.approx(np.nanvar(v, ddof=1) / k, rel=0.02)  # ≈ s² / n_valid
    # a difference of identical vectors has no test-sampling variance; independent ones add
    assert paired.variance([f, f], [1.0, -1.0]) == 0.0
    w = rng.normal(0.5, 0.2, 400)
    indep = paired.variance([f, paired.influence(w)], [1.0, -1.0])
    assert indep == pytest.approx(paired.variance([f], [1.0]) + paired.variance([paired.influence(w)], [1.0]),
                                  rel=0.15)
    assert np.isnan(paired.variance([f, f[:10]], [1, -1])) and paired.influence([np.nan, np.nan]) is None
    # batches along leading axes give the same numbers as one vector at a time
    b = rng.normal(size=(3, 4, 50))
    fb = paired.influence(b)
    assert paired.variance([fb], [1.0])[2, 1] == pytest.approx(paired.variance([paired.influence(b[2, 1])], [1.0]))


def test_pair_uses_the_paired_variance_and_keeps_its_difference() -> None:
    """Two models that read the same feature predict the same images right (a few disagreements): the paired
    variance is far below the sum of the two binomial variances; Δ is unchanged."""
    rng = np.random.default_rng(1)
    n = 300
    t = (rng.random((3, n)) < 0.8).astype(float)
    b = t.copy()
    b[:, :6] = 1 - b[:, :6]  # 6 disagreements per seed
    claim = pair("x", "s", "x", CLEAN, _c("bn"), _c("none"), "increase")
    with_images, without = (claim.measure(_tables({"bn": t, "none": b}, images=i)) for i in (True, False))
    pd.testing.assert_series_equal(with_images.diff, without.diff)
    expected = [paired.variance([paired.influence(t[s]), paired.influence(b[s])], [1, -1]) for s in range(3)]
    assert with_images.var.tolist() == pytest.approx(expected)
    assert (with_images.var < without.var / 10).all()  # the old independent sum (± 4.7 points on 300 images)
    old = [rate_se(t[s].mean(), n) ** 2 + rate_se(b[s].mean(), n) ** 2 for s in range(3)]
    assert without.var.tolist() == pytest.approx(old)  # the fallback: today's variance
    # identical predictions: a paired difference of exactly 0, no test-sampling variance, no interval
    same = claim.measure(_tables({"bn": t, "none": t}))
    assert same.var.tolist() == [0.0] * 3 and interval(same.diff, same.var)[1:3] == (0.0, 0.0)
    assert claim.needs() == ("metrics", "images")


def test_scale_error_metrics_and_stale_images() -> None:
    rng = np.random.default_rng(2)
    t, b = (rng.random((2, 2, 200)) < 0.6).astype(float)
    frames = _tables({"bn": t, "none": b})
    err = Metric("clean_acc", error=True)
    m = pair("x", "s", "x", err, _c("bn"), _c("none"), "decrease", scale=0.5).measure(frames)
    # 1 − acc: the influences flip sign; Δ = e(t) − 0.5·e(b)
    expected = [paired.variance([-paired.influence(t[s]), -paired.influence(b[s])], [1, -0.5]) for s in range(2)]
    assert m.var.tolist() == pytest.approx(expected)
    assert m.diff.tolist() == pytest.approx([(1 - t[s].mean()) - 0.5 * (1 - b[s].mean()) for s in range(2)])
    # an images.csv row whose mean is not the metrics value (stale) is not used: that seed falls back
    stale = {**frames, "images": frames["images"].copy()}
    stale["images"].loc[0, "values"] = encode(1 - t[0])
    m2 = pair("x", "s", "x", CLEAN, _c("bn"), _c("none"), "increase").measure(stale)
    old0 = rate_se(t[0].mean(), 200) ** 2 + rate_se(b[0].mean(), 200) ** 2
    assert m2.var[0] == pytest.approx(old0)
    assert m2.var[1] == pytest.approx(paired.variance([paired.influence(t[1]), paired.influence(b[1])], [1, -1]))


def test_history_claims_keep_the_independent_sum() -> None:
    h = pd.DataFrame([dict(dataset="d", arch="cnn", norm=nm, regime="standard", seed=s, epoch=e, ligs=0.5 + 0.01 * e,
                           ligs_se=0.02) for nm in ("bn", "none") for s in (0, 1) for e in (1, 2)])
    m = pair("x", "s", "x", LIGS, _c("bn"), _c("none"), "increase", epoch="last").measure({"history": h})
    assert m.var.tolist() == pytest.approx([2 * 0.02 ** 2] * 2)


def test_level_uses_the_per_image_variance_but_keeps_the_binomial_floor() -> None:
    rng = np.random.default_rng(3)
    v = rng.normal(0.6, 0.3, (2, 300))
    m = level("x", "s", "x", LIGS, _c("bn"), 0.5).measure(_tables({"bn": v}, metric="ligs"))
    assert m.var.tolist() == pytest.approx([paired.variance([paired.influence(x)], [1]) for x in v])
    perfect = np.ones((2, 300))  # a rate of 1 on every image: still uncertain (Agresti-Coull), never 0
    m = level("x", "s", "x", CLEAN, _c("bn"), 0.9).measure(_tables({"bn": perfect}))
    assert m.var.tolist() == pytest.approx([rate_se(1.0, 300) ** 2] * 2)


def test_dominance_pairs_base_variant_and_reference() -> None:
    rng = np.random.default_rng(4)
    n = 300
    base = rng.normal(0.5, 0.2, (2, n))
    variant = base + rng.normal(0.01, 0.02, (2, n))  # moves LIGS a little, image by image
    ref = base + rng.normal(0.2, 0.05, (2, n))  # no norm: far away
    frames = _tables({"bn": base, "ln": variant, "none": ref}, metric="ligs")
    claim = Dominance(id="x", study="s", text="x", metric="ligs", direction="decrease", of=LIGS, base=_c("bn"),
                      variants=[_c("ln")], ref=_c("none"))
    m = claim.measure(frames)
    old = claim.measure({"metrics": frames["metrics"]})
    pd.testing.assert_series_equal(m.diff, old.diff)
    for s in range(2):  # Δ = (v − b) − (r − b) at these signs: the base cancels
        f = [paired.influence(x[s]) for x in (variant, base, ref)]
        assert m.var[s] == pytest.approx(paired.variance(f, (1.0, 0.0, -1.0)))
    assert (m.var < old.var / 5).all()


def test_rank_variance_is_independent_across_seeds() -> None:
    # 6 cells, 3 seeds: the interval's floor is 1.06 / (m − 3) / n_seeds, so more seeds narrow it
    cells = [("d", "cnn", nm, r) for nm in ("none", "bn", "ln") for r in ("standard", "pgd")]
    rows = []
    for s in range(3):
        for i, c in enumerate(cells):
            rows += [dict(zip(KEYS, (*c, s, "ligs", "none", 0.0)), value=0.5 + 0.05 * i),
                     dict(zip(KEYS, (*c, s, "nrf_reliance", "none", 0.0)), value=0.9 - 0.1 * i - 0.01 * s * (i == 2))]
    claim = Rank(id="x", study="s", text="x", metric="rho", direction="decrease", x=LIGS, y=Metric("nrf_reliance"),
                 cells=cells)
    m = claim.measure({"metrics": pd.DataFrame(rows)})
    assert not m.shared and m.var.tolist() == pytest.approx([1.06 / 3] * 3)
    z = np.arctanh(0.9999)
    _, lo, hi, _ = interval(m.diff, m.var, shared=False)
    assert (lo, hi) == (pytest.approx(-z - 1.959964 * np.sqrt(1.06 / 3 / 3)), pytest.approx(-z + 1.959964 *
                                                                                               np.sqrt(1.06 / 9)))
    _, lo_shared, _, _ = interval(m.diff, m.var)
    assert lo_shared < lo
    assert evaluate([claim], {"metrics": pd.DataFrame(rows)}).iloc[0]["verdict"] == PASS


def _transfer(rows: list[dict], images: bool = True) -> pd.DataFrame:
    base = dict(study="s", dataset="d", source_arch="cnn", target_arch="cnn", target_regime="standard",
                source_regime="standard", source_epoch=6, source_final=True, error_rate=0.5)
    out = []
    for r in rows:
        each = r.pop("each")
        out.append({**base, **r, "success_rate": float(np.nanmean(each)), "n": int((~np.isnan(each)).sum()),
                    "n_total": len(each), **({"images": encode(each)} if images else {})})
    return pd.DataFrame(out)


def test_transfer_averages_the_influence_over_targets_and_pairs_the_sides() -> None:
    """Two sources, three targets that see the same adversarial images: Δ's variance is that of the mean influence
    over the targets, treatment − baseline, image by image (never Σ var / K²)."""
    rng = np.random.default_rng(5)
    n, targets = 400, ("ln", "gn", "in")
    easy = {src: rng.random(n) < 0.5 for src in ("none", "bn")}  # images a kind of source attacks well, every target
    rows, each = [], {}
    for s in (0, 1):
        right = {t: rng.random(n) < 0.9 for t in targets}  # a target's clean right images: both sources' rows
        for src in ("none", "bn"):
            for t in targets:
                v = (rng.random(n) < np.where(easy[src], 0.8, 0.2)).astype(float)
                v[~right[t]] = np.nan
                each[(s, src, t)] = v
                rows.append(dict(seed=s, source_norm=src, target_norm=t, each=v))
    tr = _transfer([dict(r) for r in rows])
    claim = Transfer(id="x", study="s", text="x", metric="success_rate", direction="increase",
                     treat={"source_norm": "none"}, base={"source_norm": "bn"}, dataset="d")
    m = claim.measure({"transfer": tr})
    old = claim.measure({"transfer": _transfer([dict(r) for r in rows], images=False)})
    pd.testing.assert_series_equal(m.diff, old.diff)
    for s in (0, 1):
        f = [paired.influence(each[(s, src, t)]) for src in ("none", "bn") for t in targets]
        assert m.var[s] == pytest.approx(paired.variance(f, [1 / 3] * 3 + [-1 / 3] * 3))
        k2 = sum(rate_se(np.nanmean(each[(s, src, t)]), (~np.isnan(each[(s, src, t)])).sum()) ** 2
                 for src in ("none", "bn") for t in targets) / 9
        assert old.var[s] == pytest.approx(k2)
    assert (m.var > 1.5 * old.var).all()  # the images every target finds easy: the K² division understates it


def test_read_images_table(tmp_path: Path) -> None:
    frames = _tables({"bn": np.array([[1.0, 0.0, np.nan, 1.0]])})
    frames["images"].to_csv(tmp_path / "images.csv", index=False)
    df = read_table(tmp_path, "images")
    assert df["n"].dtype.kind == "i" and df["seed"].tolist() == [0]
    assert paired.decoded(df["values"].iloc[0], df["n"].iloc[0]).tolist()[:2] == [1.0, 0.0]
    bad = frames["images"].assign(n=40)  # the encoded bits do not hold 40 values
    bad.to_csv(tmp_path / "images.csv", index=False)
    with pytest.raises(TableError, match=r"images.csv, line 2, column 'values'.*not per-image values"):
        read_table(tmp_path, "images")
    frames["images"].assign(values="b:???").to_csv(tmp_path / "images.csv", index=False)
    with pytest.raises(TableError, match="line 2, column 'values'"):
        read_optional(tmp_path, "images")
    (tmp_path / "images.csv").unlink()
    assert read_optional(tmp_path, "images") is None  # older tables: the claims fall back
