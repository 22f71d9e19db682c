"""Figures built from the small synthetic tables in tests/fixtures/tables and from hand-built tables.

The value checks read the drawn numbers back from the matplotlib objects (``F.make_figure`` returns the
figure before it is saved): bars and lines carry a gid naming what they show, so a wrong aggregation
(another ε, another metric, early-stopped transfer rows, a missing mean over seeds) fails here.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from normrobust import figures as F
from normrobust import tables as T
from normrobust.config import study_cells
from normrobust.studies import FIGURE_STUDY, STUDIES

from conftest import FIXTURE_TABLES as FIXTURES, is_pdf as _is_pdf  # noqa: F401

NEW_FIGURES = ["disentangled", "conflict", "ligs_vs_nrf", "factors", "adv_training", "ligs_reg",
               "transfer_sources", "fgsm"]


# -------------------------------------------------------------------------------- reading figures back

def _bars(fig) -> dict[str, float]:
    """gid → bar height of every bar drawn by the figure helpers."""
    return {p.get_gid(): float(p.get_height()) for ax in fig.axes for p in ax.patches if p.get_gid()}


def _lines(fig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {ln.get_gid(): (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
            for ax in fig.axes for ln in ax.get_lines() if ln.get_gid()}


def _texts(fig) -> str:
    out = [t.get_text() for ax in fig.axes for t in ax.texts]
    out += [ax.get_title() for ax in fig.axes]
    out += [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
    return "\n".join(out)


def _make(name: str, tables: Path, **kw):
    fig = F.make_figure(name, tables, **kw)
    try:
        return _bars(fig), _lines(fig), _texts(fig), fig
    finally:
        plt.close(fig)


def _read(tables: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(tables / f"{name}.csv", keep_default_na=False, na_values=[""])


def _mean(df: pd.DataFrame, value: str = "value", **conds) -> float:
    """Mean over seeds of the rows matching ``conds`` (each seed once)."""
    for k, v in conds.items():
        df = df[np.isclose(df[k], v)] if k == "eps" else df[df[k] == v]
    assert len(df), conds
    return float(df.groupby("seed")[value].mean().mean())


# ------------------------------------------------------------------------------- hand-built tables

MINI_CONFIG = {
    "seeds": [0, 1, 2],
    "datasets": {
        "gen": {"kind": "generated"},
        "d_r": {"kind": "derived", "method": "robust", "base": "gen"},
        "d_nr": {"kind": "derived", "method": "nonrobust", "base": "gen"},
        "d_rnd": {"kind": "derived", "method": "rand", "base": "gen"},
        "d_dt": {"kind": "derived", "method": "det", "base": "gen"},
        "d_cf": {"kind": "derived", "method": "conflict", "base": "d_r"},
    },
    "archs": {"cnn": {"kind": "cnn", "widths": [8, 16]},
              "cnn_w": {"kind": "cnn", "widths": [8, 16], "width": 2},
              "cnn_d": {"kind": "cnn", "widths": [8, 16], "depth": 2},
              "cnn_s": {"kind": "cnn", "widths": [8, 16], "activation": "selu"},
              "soft": {"kind": "linear"}, "mx": {"kind": "maxout", "hidden": [8], "pieces": 2}},
    "regimes": {"standard": {"attack": None},
                "pgd_linf": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3}},
                "pgd_small": {"attack": {"type": "pgd", "norm": "linf", "eps": 1, "step": 1, "steps": 1}},
                "mixed": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3},
                          "objective": "mixed"},
                "advprop": {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3},
                            "objective": "advprop"},
                "fgsm": {"attack": {"type": "fgsm", "norm": "linf", "eps": 8}, "objective": "weighted",
                         "clean_weight": 0.5},
                "wd_hi": {"attack": None, "training": {"weight_decay": 0.005}},
                "lr_hi": {"attack": None, "training": {"lr": 0.2}},
                "adam": {"attack": None, "training": {"optimizer": "adam"}},
                "lg1": {"attack": None, "objective": "ligs_reg", "ligs_weight": 0.5},
                "lg2": {"attack": None, "objective": "ligs_reg", "ligs_weight": 5}},
    "training": {"epochs": 3, "batch_size": 8, "lr": 0.1, "optimizer": "sgd", "weight_decay": 5e-4,
                 "history": {"n_test": 10, "attack": {"type": "pgd", "norm": "linf", "eps": 4, "steps": 2,
                                                      "rel_step": 0.25},
                             "extra_attacks": {"pgd_l2": {"type": "pgd", "norm": "l2", "eps": 0.25,
                                                          "steps": 2, "rel_step": 0.4}}}},
    "evaluation": {"attacks": {"pgd_linf": {"type": "pgd", "norm": "linf", "eps": [1, 4]},
                               "fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [2, 8]}},
                   "headline": {"attack": "pgd_linf", "eps": 4}},
    "studies": {
        "e1_norms": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]},
        "e2_trajectories": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                            "regimes": ["standard", "pgd_linf"]},
        "e3_disentangled": {"dataset": ["d_r", "d_nr", "d_rnd", "d_dt"], "archs": ["cnn"],
                            "norms": ["none", "bn"], "regimes": ["standard"]},
        "e4_conflict": {"dataset": "d_cf", "archs": ["cnn"], "norms": ["none", "bn"], "regimes": ["standard"]},
        "e5_synthetic": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn", "ln"],
                         "regimes": ["standard", "pgd_linf"]},
        "e6_factors": {"dataset": "gen", "design": "one_at_a_time", "archs": ["cnn", "cnn_w", "cnn_d", "cnn_s"],
                       "norms": ["bn"], "regimes": ["standard", "wd_hi", "lr_hi", "adam"]},
        "e7_adv_training": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                            "regimes": ["standard", "pgd_linf", "mixed", "advprop", "fgsm"]},
        "e8_ligs_reg": {"dataset": "gen", "archs": ["cnn"], "norms": ["bn"], "regimes": ["standard", "lg1", "lg2"]},
        "e9_transfer": {"dataset": "gen", "archs": ["cnn"], "norms": ["none", "bn"],
                        "regimes": ["standard", "pgd_small"], "transfer": {"targets": ["standard"],
                                                                           "source_epochs": [1]}},
        "e10_fgsm": {"dataset": "gen", "archs": ["soft", "mx"], "norms": ["none"], "regimes": ["standard", "fgsm"],
                     "transfer": {"targets": ["standard", "fgsm"]}},
    },
}
MINI_METRICS = [("clean_acc", "none", 0), ("shifted_acc", "none", 0), ("ligs", "none", 0),
                ("nrf_reliance", "none", 0), ("robust_acc", "pgd_linf", 1), ("robust_acc", "pgd_linf", 4),
                ("robust_acc", "fgsm_linf", 2), ("robust_acc", "fgsm_linf", 8),
                ("adv_wrong_confidence", "fgsm_linf", 2), ("adv_wrong_confidence", "fgsm_linf", 8)]
KEYS = ["dataset", "arch", "norm", "regime"]


def _write_tables(d: Path, config: dict, metrics: pd.DataFrame, history: pd.DataFrame,
                  transfer: pd.DataFrame) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(d / "metrics.csv", index=False)
    history.to_csv(d / "history.csv", index=False)
    transfer.to_csv(d / "transfer.csv", index=False)
    (d / "run_info.json").write_text(json.dumps({"config": config}))
    return d


def mini_tables(d: Path) -> Path:
    """Every study of MINI_CONFIG with random values (3 seeds), written as the aggregate step would."""
    rng = np.random.default_rng(7)
    cfg = MINI_CONFIG
    cells = {tuple(c[k] for k in KEYS) for st in cfg["studies"].values() for c in study_cells(cfg, st)}
    cells.add(("gen", "cnn", "none", "standard"))  # the no-norm base cell of E6
    rows = [dict(zip(KEYS, c), seed=s, metric=m, attack=a, eps=e, value=round(float(rng.uniform(0.05, 0.95)), 4))
            for c in sorted(cells) for s in cfg["seeds"] for m, a, e in MINI_METRICS]
    metrics = pd.DataFrame(rows)
    hist = [dict(dataset="gen", arch=c["arch"], norm=c["norm"], regime=c["regime"], seed=c["seed"], epoch=e,
                 lr=0.1, train_loss=1.0, clean_acc=rng.uniform(), robust_acc=rng.uniform(), ligs=rng.uniform(),
                 seconds=1.0, robust_acc_pgd_l2=round(float(rng.uniform()), 4))
            for c in study_cells(cfg, cfg["studies"]["e2_trajectories"]) for e in (1, 2, 3)]
    trans = []

    def add(study, src, tgt, seed, epoch, final):
        trans.append(dict(study=study, dataset="gen", seed=seed, source_arch=src[0], source_norm=src[1],
                          source_regime=src[2], source_epoch=epoch, source_final=final, target_arch=tgt[0],
                          target_norm=tgt[1], target_regime=tgt[2],
                          success_rate=round(float(rng.uniform(0.1, 0.9)), 4), n=100,
                          error_rate=round(float(rng.uniform(0.1, 0.9)), 4), n_total=120))

    for seed in cfg["seeds"]:
        e9 = [("cnn", n, r) for n in ("none", "bn") for r in ("standard", "pgd_small")]
        for src in e9:
            for tgt in [c for c in e9 if c[2] == "standard" and c != src]:
                add("e9_transfer", src, tgt, seed, 3, True)
                if src[2] == "standard":
                    add("e9_transfer", src, tgt, seed, 1, False)
        e10 = [(a, "none", r) for a in ("soft", "mx") for r in ("standard", "fgsm")]
        for src in e10:
            for tgt in e10:
                if src != tgt:
                    add("e10_fgsm", src, tgt, seed, 3, True)
    return _write_tables(d, cfg, metrics, pd.DataFrame(hist), pd.DataFrame(trans))


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    return mini_tables(tmp_path / "mini")


# ------------------------------------------------------------------------------------------ registry

def test_studies_map_every_figure_once() -> None:
    assert list(STUDIES) == ["e1_norms", "e2_trajectories", "e3_disentangled", "e4_conflict", "e5_synthetic",
                             "e6_factors", "e7_adv_training", "e8_ligs_reg", "e9_transfer", "e10_fgsm"]
    assert [s["tag"] for s in STUDIES.values()] == [f"E{i}" for i in range(1, 11)]
    assert set(FIGURE_STUDY) == set(F.FIGURES)
    for name in NEW_FIGURES:
        assert name in F.FIGURES and F.FIGURES[name].study == FIGURE_STUDY[name]
    assert FIGURE_STUDY["transfer_sources"] == "e9_transfer" and FIGURE_STUDY["ligs_vs_nrf"] == "e5_synthetic"


# ------------------------------------------------------------------------------------------ figures

@pytest.mark.parametrize("name", sorted(F.FIGURES))
def test_figure_builds_valid_pdf(figures_dir: Path, name: str) -> None:
    assert _is_pdf(figures_dir / f"{name}.pdf")


@pytest.mark.parametrize("name", sorted(F.FIGURES))
def test_figure_builds_from_hand_built_tables_deterministically(mini: Path, tmp_path: Path, name: str) -> None:
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert F.main([name, "--tables", str(mini), "--out", str(a)]) == 0
    F.build_figure(name, mini, b)
    assert _is_pdf(a)
    assert a.read_bytes() == b.read_bytes()
    assert b"CreationDate" not in a.read_bytes()
    _, _, text, _ = _make(name, mini)
    assert F.NO_DATA not in text, f"{name}: the hand-built tables have every study"


def test_figure_cli_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(a)]) == 0
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(b)]) == 0
    assert _is_pdf(a)
    assert a.read_bytes() == b.read_bytes()
    assert b"CreationDate" not in a.read_bytes()


@pytest.mark.parametrize("name,table", [(n, t) for n in sorted(F.FIGURES) for t in F.FIGURES[n].tables])
def test_figure_missing_csv_names_the_file(tables_dir: Path, tmp_path: Path, capsys, name: str,
                                           table: str) -> None:
    (tables_dir / f"{table}.csv").unlink()
    out = tmp_path / "x.pdf"
    assert F.main([name, "--tables", str(tables_dir), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert f"{table}.csv" in err and "missing" in err
    assert not out.exists()
    with pytest.raises(T.MissingInputError, match=re.escape(str(tables_dir / f"{table}.csv"))):
        F.build_figure(name, tables_dir, out)


def test_figures_survive_missing_metrics_and_regimes(tables_dir: Path, tmp_path: Path) -> None:
    m = pd.read_csv(tables_dir / "metrics.csv")
    m = m[~m["metric"].isin(["nrf_reliance", "rf_only_acc", "nrf_only_acc", "ligs"])]
    m = m[~((m["regime"] == "pgd_linf") | (m["attack"] == "pgd_l2"))]
    m.to_csv(tables_dir / "metrics.csv", index=False)
    h = pd.read_csv(tables_dir / "history.csv")
    h = h[h["regime"] == "standard"].assign(ligs=np.nan)
    h.to_csv(tables_dir / "history.csv", index=False)
    pd.read_csv(tables_dir / "transfer.csv").iloc[0:0].to_csv(tables_dir / "transfer.csv", index=False)
    for name in F.FIGURES:
        out = tmp_path / f"{name}.pdf"
        F.build_figure(name, tables_dir, out)
        assert _is_pdf(out), name


def test_figure_without_run_info(tables_dir: Path, tmp_path: Path) -> None:
    (tables_dir / "run_info.json").unlink()
    for name in F.FIGURES:
        out = tmp_path / f"{name}.pdf"
        F.build_figure(name, tables_dir, out)
        assert _is_pdf(out), name


@pytest.mark.parametrize("name", NEW_FIGURES)
def test_figure_with_empty_tables_says_no_data(mini: Path, tmp_path: Path, name: str) -> None:
    for t in ("metrics", "history", "transfer"):
        _read(mini, t).iloc[0:0].to_csv(mini / f"{t}.csv", index=False)
    _, _, text, _ = _make(name, mini)
    assert F.NO_DATA in text
    F.build_figure(name, mini, tmp_path / "x.pdf")
    assert _is_pdf(tmp_path / "x.pdf")


def test_figures_whose_study_rows_are_absent_say_no_data(tables_dir: Path) -> None:
    """The fixture tables without the rows of E3, E4, E10 and E9's transfer: notes, no crash."""
    m = _read(tables_dir, "metrics")
    m = m[~m["dataset"].str.startswith("d_") & ~m["arch"].isin(["linear", "maxout"])]
    m.to_csv(tables_dir / "metrics.csv", index=False)
    t = _read(tables_dir, "transfer")
    t[t["study"] != "e9_transfer"].to_csv(tables_dir / "transfer.csv", index=False)
    for name in ("disentangled", "conflict", "fgsm", "transfer_sources"):
        _, _, text, _ = _make(name, tables_dir)
        assert F.NO_DATA in text, name
    # the heatmap of E9 likewise
    _, _, text, fig = _make("transfer_heatmap", tables_dir)
    assert "no transfer results" in text


def test_new_figures_with_an_old_config(tables_dir: Path) -> None:
    """A run_info.json from before the new studies: the figures still build (notes where needed)."""
    info = json.loads((tables_dir / "run_info.json").read_text())
    for k in ("e3_disentangled", "e4_conflict", "e6_factors", "e7_adv_training", "e8_ligs_reg", "e10_fgsm"):
        info["config"]["studies"].pop(k)
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    _, _, text, _ = _make("factors", tables_dir)
    assert F.NO_DATA in text and "e6_factors" in text
    bars, _, _, _ = _make("disentangled", tables_dir)  # found by the datasets' method
    assert any(g.startswith("clean_acc|cnn|d_robust|") for g in bars)
    for name in NEW_FIGURES:
        fig = F.make_figure(name, tables_dir)
        plt.close(fig)


# ---------------------------------------------------------------- plotted values against the input

def test_trajectories_panel_per_history_attack(mini: Path) -> None:
    bars, lines, text, fig = _make("trajectories", mini)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and "PGD-L∞" in titles[1] and "PGD-L2" in titles[2] and "ε=0.25" in titles[2]
    assert titles[3] == "LIGS"
    h = _read(mini, "history")
    x, y = lines["robust_acc_pgd_l2|cnn|pgd_linf|bn"]
    d = h[(h["norm"] == "bn") & (h["regime"] == "pgd_linf")].groupby("epoch")["robust_acc_pgd_l2"].mean()
    np.testing.assert_allclose(x, d.index.to_numpy(float))
    np.testing.assert_allclose(y, d.to_numpy() * 100)


def test_trajectories_fixture_has_pgd_l2_panel() -> None:
    _, lines, _, _ = _make("trajectories", FIXTURES)
    h = _read(FIXTURES, "history")
    d = h[(h["dataset"] == "generated") & (h["norm"] == "none") & (h["regime"] == "standard") & (h["arch"] == "cnn")]
    exp = d.groupby("epoch")["robust_acc_pgd_l2"].mean().to_numpy() * 100
    np.testing.assert_allclose(lines["robust_acc_pgd_l2|cnn|standard|none"][1], exp)


def test_disentangled_bars(mini: Path) -> None:
    bars, _, text, _ = _make("disentangled", mini)
    m = _read(mini, "metrics")
    for ds in ("d_r", "d_rnd"):
        exp = _mean(m, dataset=ds, arch="cnn", norm="bn", regime="standard", metric="robust_acc",
                    attack="pgd_linf", eps=4)
        assert bars[f"robust_acc|cnn|{ds}|bn|standard"] == pytest.approx(exp * 100)
    exp = _mean(m, dataset="d_dt", norm="none", metric="ligs")
    assert bars["ligs|cnn|d_dt|none|standard"] == pytest.approx(exp)
    assert len(bars) == 3 * 4 * 2
    for name in ("D_{\\mathrm{R}}", "D_{\\mathrm{NR}}", "D_{\\mathrm{rand}}", "D_{\\mathrm{det}}"):
        assert name in text


def test_conflict_bars(mini: Path) -> None:
    bars, _, _, _ = _make("conflict", mini)
    m = _read(mini, "metrics")
    exp = _mean(m, dataset="d_cf", norm="bn", metric="shifted_acc")
    assert bars["acc|BN|shifted_acc"] == pytest.approx(exp * 100)
    exp = _mean(m, dataset="d_cf", norm="none", metric="clean_acc")
    assert bars["acc|no norm|clean_acc"] == pytest.approx(exp * 100)
    assert bars["ligs|BN"] == pytest.approx(_mean(m, dataset="d_cf", norm="bn", metric="ligs"))


def test_ligs_vs_nrf_points_and_spearman(mini: Path) -> None:
    from scipy.stats import spearmanr

    _, lines, _, fig = _make("ligs_vs_nrf", mini)
    m = _read(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "cnn") & m["norm"].isin(["none", "bn", "ln"])
          & m["regime"].isin(["standard", "pgd_linf"])]
    x, y = lines["point|cnn|ln|pgd_linf"]
    assert x[0] == pytest.approx(_mean(m, norm="ln", regime="pgd_linf", metric="ligs"))
    assert y[0] == pytest.approx(_mean(m, norm="ln", regime="pgd_linf", metric="nrf_reliance"))
    cells = m[m["metric"].isin(["ligs", "nrf_reliance"])].groupby(["norm", "regime", "metric"])["value"].mean()
    cells = cells.unstack("metric")
    rho = spearmanr(cells["ligs"], cells["nrf_reliance"]).statistic
    assert len([k for k in lines if k.startswith("point|")]) == 6
    assert f"Spearman ρ = {rho:.2f} over 6 cells" in fig.axes[0].get_title()


def test_spearman_helper() -> None:
    assert F.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert F.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(F.spearman([1, 2], [1, 2]))


def test_factors_variants_and_values(mini: Path) -> None:
    bars, lines, text, _ = _make("factors", mini)
    for label in ("base (cnn, std)", "width ×2", "depth ×2", "SELU", "wd 5e-3", "lr 0.2", "Adam"):
        assert label in text, label
    m = _read(mini, "metrics")
    m = m[m["dataset"] == "gen"]
    exp = _mean(m, arch="cnn_w", norm="bn", regime="standard", metric="ligs")
    assert bars["ligs|width ×2|bn"] == pytest.approx(exp)
    assert bars["clean_acc|Adam|bn"] == pytest.approx(
        _mean(m, arch="cnn", norm="bn", regime="adam", metric="clean_acc") * 100)
    assert bars["ligs|base|bn"] == pytest.approx(_mean(m, arch="cnn", norm="bn", regime="standard", metric="ligs"))
    ref = lines["ref|ligs"][1]
    assert ref[0] == pytest.approx(_mean(m, arch="cnn", norm="none", regime="standard", metric="ligs"))
    # only the one-at-a-time cells: 7 variants × 1 norm × 2 panels
    assert len(bars) == 14


def test_factor_labels() -> None:
    base = {"kind": "cnn", "widths": [16, 32]}
    assert F.arch_difference({**base, "width": 2}, base, "w") == "width ×2"
    assert F.arch_difference({**base, "depth": 0.5}, base, "d") == "depth ×0.5"
    assert F.arch_difference({**base, "activation": "leaky_relu"}, base, "a") == "LeakyReLU"
    assert F.arch_difference(base, base, "same") == "same"
    tr = {"lr": 0.1, "weight_decay": 5e-4, "optimizer": "sgd"}
    std = {"attack": None}
    assert F.regime_difference({"attack": None, "training": {"weight_decay": 5e-3}}, std, tr) == "wd 5e-3"
    assert F.regime_difference({"attack": None, "training": {"lr": 0.2}}, std, tr) == "lr 0.2"
    assert F.regime_difference({"attack": None, "training": {"optimizer": "adagrad"}}, std, tr) == "Adagrad"


def test_adv_training_bars_in_study_order(mini: Path) -> None:
    bars, _, _, fig = _make("adv_training", mini)
    m = _read(mini, "metrics")
    exp = _mean(m, dataset="gen", arch="cnn", norm="bn", regime="advprop", metric="robust_acc", attack="pgd_linf",
                eps=4)
    assert bars["robust_acc|cnn|advprop|bn"] == pytest.approx(exp * 100)
    exp = _mean(m, dataset="gen", arch="cnn", norm="none", regime="mixed", metric="clean_acc")
    assert bars["clean_acc|cnn|mixed|none"] == pytest.approx(exp * 100)
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert ticks[0] == "standard" and ticks[-1] == "FGSM AT" and ticks[3] == "AdvProp"


def test_ligs_reg_lines_against_weight(mini: Path) -> None:
    assert F.ligs_weights(["standard", "lg1", "lg2", "pgd_linf"], {"config": MINI_CONFIG}) == {
        "standard": 0.0, "lg1": 0.5, "lg2": 5.0}
    _, lines, _, _ = _make("ligs_reg", mini)
    m = _read(mini, "metrics")
    x, y = lines["robust_acc|cnn|bn"]
    np.testing.assert_allclose(x, [0.0, 0.5, 5.0])
    exp = [_mean(m, dataset="gen", arch="cnn", norm="bn", regime=r, metric="robust_acc", attack="pgd_linf", eps=4)
           for r in ("standard", "lg1", "lg2")]
    np.testing.assert_allclose(y, np.array(exp) * 100)
    np.testing.assert_allclose(lines["ligs|cnn|bn"][1], [_mean(m, dataset="gen", arch="cnn", norm="bn", regime=r,
                                                              metric="ligs") for r in ("standard", "lg1", "lg2")])


def test_transfer_sources_bars(mini: Path) -> None:
    bars, _, text, _ = _make("transfer_sources", mini)
    t = _read(mini, "transfer")
    t = t[t["study"] == "e9_transfer"]

    def exp(norm, regime, final):
        d = t[(t["source_norm"] == norm) & (t["source_regime"] == regime) & (t["source_final"] == final)
              & (t["target_regime"] == "standard") & ~((t["target_norm"] == norm) & (regime == "standard"))]
        return float(d.groupby("seed")["success_rate"].mean().mean()) * 100

    assert bars["success|cnn|standard\n(final)|bn"] == pytest.approx(exp("bn", "standard", True))
    assert bars["success|cnn|epoch 1|none"] == pytest.approx(exp("none", "standard", False))
    assert bars["success|cnn|PGD-L∞ AT\nε=1/255\n(final)|bn"] == pytest.approx(exp("bn", "pgd_small", True))
    assert len(bars) == 3 * 2


def test_transfer_heatmap_uses_final_e9_rows_only(mini: Path) -> None:
    t = _read(mini, "transfer")
    # early-stopped and E10 rows with extreme values must not show up
    t.loc[~t["source_final"].astype(bool), "success_rate"] = 1.0
    t.to_csv(mini / "transfer.csv", index=False)
    _, _, _, fig = _make("transfer_heatmap", mini)
    grid = fig.axes[0].get_images()[0].get_array()
    e9 = t[(t["study"] == "e9_transfer") & t["source_final"].astype(bool)]
    exp = e9.groupby(["source_norm", "source_regime", "target_norm"])["success_rate"].mean() * 100
    assert sorted(np.round(grid.compressed(), 6)) == sorted(np.round(exp.to_numpy(), 6))
    # older tables without study / source_final columns keep working
    t.drop(columns=["study", "source_final", "source_epoch", "error_rate", "n_total"]).to_csv(
        mini / "transfer.csv", index=False)
    _, _, _, fig = _make("transfer_heatmap", mini)
    assert fig.axes[0].get_images()


def test_fgsm_error_confidence_and_transfer(mini: Path) -> None:
    bars, lines, _, _ = _make("fgsm", mini)
    m = _read(mini, "metrics")
    m = m[(m["dataset"] == "gen") & (m["arch"] == "mx") & (m["regime"] == "fgsm")]
    x, y = lines["error|mx|fgsm|none"]
    np.testing.assert_allclose(x, [0, 2, 8])
    exp = [1 - _mean(m, metric="clean_acc")] + [1 - _mean(m, metric="robust_acc", attack="fgsm_linf", eps=e)
                                                for e in (2, 8)]
    np.testing.assert_allclose(y, np.array(exp) * 100)
    x, y = lines["confidence|mx|fgsm|none"]
    np.testing.assert_allclose(y, [_mean(m, metric="adv_wrong_confidence", eps=e) * 100 for e in (2, 8)])
    t = _read(mini, "transfer")
    t = t[(t["study"] == "e10_fgsm") & (t["source_arch"] == t["target_arch"])]  # soft -> mx rows left out
    for arch in ("mx", "soft"):
        for src, tgt, direction in (("fgsm", "standard", "adv→standard"), ("standard", "fgsm", "standard→adv")):
            d = t[(t["source_arch"] == arch) & (t["source_regime"] == src) & (t["target_regime"] == tgt)]
            assert bars[f"transfer|{arch}|{direction}"] == pytest.approx(d["error_rate"].mean() * 100)
    assert len(bars) == 4


# --------------------------------------------------------------------- the same against the fixtures

def test_new_figures_on_fixtures_have_data_and_values() -> None:
    m = _read(FIXTURES, "metrics")
    bars, _, text, _ = _make("disentangled", FIXTURES)
    exp = _mean(m, dataset="d_robust", arch="cnn", norm="bn", regime="standard", metric="clean_acc")
    assert bars["clean_acc|cnn|d_robust|bn|standard"] == pytest.approx(exp * 100)
    bars, _, _, _ = _make("conflict", FIXTURES)
    assert bars["acc|BN|shifted_acc"] == pytest.approx(_mean(m, dataset="d_conflict", norm="bn",
                                                             metric="shifted_acc") * 100)
    bars, _, text, _ = _make("factors", FIXTURES)
    assert "SELU" in text and "wd 5e-3" in text and "Adam, lr 1e-3" in text
    assert bars["ligs|depth ×2|bn"] == pytest.approx(_mean(m, dataset="generated", arch="cnn_deep", norm="bn",
                                                          metric="ligs"))
    bars, _, _, _ = _make("adv_training", FIXTURES)
    assert bars["clean_acc|cnn|fgsm|bn"] == pytest.approx(
        _mean(m, dataset="generated", arch="cnn", norm="bn", regime="fgsm", metric="clean_acc") * 100)
    _, lines, _, _ = _make("ligs_reg", FIXTURES)
    np.testing.assert_allclose(lines["clean_acc|cnn|bn"][0], [0, 1, 10])
    bars, _, _, _ = _make("transfer_sources", FIXTURES)
    assert {k.split("|")[2] for k in bars} >= {"standard\n(final)", "epoch 1"}
    bars, lines, _, _ = _make("fgsm", FIXTURES)
    assert {"transfer|maxout|standard→adv", "transfer|maxout|adv→standard"} <= set(bars)
    mm = m[(m["dataset"] == "generated") & (m["arch"] == "linear") & (m["regime"] == "standard")]
    assert lines["error|linear|standard|none"][1][0] == pytest.approx((1 - _mean(mm, metric="clean_acc")) * 100)
    for name in NEW_FIGURES:
        _, _, text, _ = _make(name, FIXTURES)
        assert F.NO_DATA not in text, name
