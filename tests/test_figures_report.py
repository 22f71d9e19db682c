"""Figures, claims, tables and the report, built from the small synthetic tables in tests/fixtures/tables."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normrobust import claims as C
from normrobust import figures as F
from normrobust import report as R
from normrobust import tables as T

FIXTURES = Path(__file__).parent / "fixtures" / "tables"


@pytest.fixture()
def tables_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture tables (tests may edit or delete files)."""
    d = tmp_path / "tables"
    shutil.copytree(FIXTURES, d)
    return d


@pytest.fixture(scope="module")
def figures_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("figures")
    for name in F.FIGURES:
        F.build_figure(name, FIXTURES, d / f"{name}.pdf")
    return d


def _is_pdf(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 2000


# ------------------------------------------------------------------------------------------ figures

@pytest.mark.parametrize("name", sorted(F.FIGURES))
def test_figure_builds_valid_pdf(figures_dir: Path, name: str) -> None:
    assert _is_pdf(figures_dir / f"{name}.pdf")


def test_figure_cli_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(a)]) == 0
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(b)]) == 0
    assert _is_pdf(a)
    assert a.read_bytes() == b.read_bytes()
    assert b"CreationDate" not in a.read_bytes()


@pytest.mark.parametrize("name,table", [("trajectories", "history"), ("robust_vs_eps", "metrics"),
                                        ("transfer_heatmap", "transfer")])
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
    out = tmp_path / "t.pdf"
    F.build_figure("trajectories", tables_dir, out)
    assert _is_pdf(out)


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


# ------------------------------------------------------------------------------------------- tables

def _expected(series: pd.Series, pct: bool) -> str:
    k = 100 if pct else 1
    d = 1 if pct else 3
    return f"${series.mean() * k:.{d}f} \\pm {series.std(ddof=1) * k:.{d}f}$"


def test_main_table_numbers_match_csv() -> None:
    m = T.read_table(FIXTURES, "metrics")
    text = T.main_results_table(m, {"attack": "pgd_linf", "eps": 4})
    assert r"\toprule" in text and r"\bottomrule" in text
    sel = m[(m["norm"] == "bn") & (m["regime"] == "standard")]
    clean = _expected(sel[sel["metric"] == "clean_acc"]["value"], True)
    rob = _expected(sel[(sel["metric"] == "robust_acc") & (sel["attack"] == "pgd_linf") & (sel["eps"] == 4)]
                    ["value"], True)
    l2 = _expected(sel[(sel["metric"] == "robust_acc") & (sel["attack"] == "pgd_l2") & (sel["eps"] == 0.5)]
                   ["value"], True)
    ligs = _expected(sel[sel["metric"] == "ligs"]["value"], False)
    row = next(line for line in text.splitlines() if line.strip().startswith("& BN") or
               line.startswith("standard & BN"))
    for cell in (clean, rob, l2, ligs):
        assert cell in row, (cell, row)
    assert r"$L_\infty$" in text  # the headline header, escaped


def test_transfer_and_claims_tables() -> None:
    t = T.read_table(FIXTURES, "transfer")
    text = T.transfer_table(t)
    s = t[(t["source_norm"] == "none") & (t["source_regime"] == "standard") & (t["target_norm"] == "bn")]
    assert f"${s['success_rate'].mean() * 100:.1f}$" in text
    claims = C.load_and_evaluate(FIXTURES)
    ctext = T.claims_table(claims)
    assert ctext.count(r"\textbf{PASS}") == (claims["verdict"] == "PASS").sum()
    assert "E1-bn-robust" in ctext and r"\textbf{FAIL}" in ctext


def test_tex_escape() -> None:
    assert T.tex_escape("a_b & 50% #1 {x} $y$") == r"a\_b \& 50\% \#1 \{x\} \$y\$"
    assert T.tex_escape("PGD-L∞ ε=4/255") == r"PGD-$L_\infty$ $\varepsilon$=4/255"
    assert T.tex_escape("back\\slash ~^") == r"back\textbackslash{}slash \textasciitilde{}\textasciicircum{}"


# ------------------------------------------------------------------------------------------- report

def test_render_numbers_follow_the_csv(tables_dir: Path, figures_dir: Path, tmp_path: Path) -> None:
    out1 = R.render(tables_dir, figures_dir, tmp_path / "gen1")
    tex1 = out1.read_text()
    assert "\\VAR" not in tex1 and "\\BLOCK" not in tex1
    for name in F.FIGURES:
        assert (tmp_path / "gen1" / "figures" / f"{name}.pdf").is_file()
    assert (tmp_path / "gen1" / "tables" / "claims.tex").is_file()
    m = pd.read_csv(tables_dir / "metrics.csv")

    def clean_gap(df: pd.DataFrame) -> float:
        c = df[(df["metric"] == "clean_acc") & (df["regime"] == "standard")].pivot(
            index="seed", columns="norm", values="value")
        return float((c["bn"] - c["none"]).mean() * 100)

    before = f"raised clean accuracy by {clean_gap(m):.1f} points"
    assert before in tex1
    # change BN's clean accuracy in the CSV: the abstract and the table must follow
    sel = (m["metric"] == "clean_acc") & (m["norm"] == "bn") & (m["regime"] == "standard")
    m.loc[sel, "value"] = m.loc[sel, "value"] + 0.1
    m.to_csv(tables_dir / "metrics.csv", index=False)
    tex2 = R.render(tables_dir, figures_dir, tmp_path / "gen2").read_text()
    after = f"raised clean accuracy by {clean_gap(m):.1f} points"
    assert after != before and after in tex2 and before not in tex2
    table2 = (tmp_path / "gen2" / "tables" / "main-e1-norms.tex").read_text()
    assert _expected(m[sel]["value"], True) in table2


def test_render_missing_figure_and_claims_csv(tables_dir: Path, tmp_path: Path) -> None:
    claims_csv = tmp_path / "claims.csv"
    assert C.main(["--tables", str(tables_dir), "--out", str(claims_csv)]) == 0
    empty_figs = tmp_path / "nofigs"
    empty_figs.mkdir()
    tex = R.render(tables_dir, empty_figs, tmp_path / "gen", claims_csv=claims_csv).read_text()
    assert "Figure not available" in tex and "\\label{fig:trajectories}" in tex


def test_render_cli_missing_table(tables_dir: Path, figures_dir: Path, tmp_path: Path, capsys) -> None:
    (tables_dir / "run_info.json").unlink()
    rc = R.main(["render", "--tables", str(tables_dir), "--figures", str(figures_dir), "--outdir",
                 str(tmp_path / "gen")])
    assert rc != 0 and "run_info.json" in capsys.readouterr().err


def test_build_without_tex(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(R.shutil, "which", lambda name: None)
    assert R.main(["build", "--texdir", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TeX is missing" in err and "apt-get install latexmk" in err


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed (TeX is needed to compile)")
def test_build_compiles_pdf(tables_dir: Path, figures_dir: Path, tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    R.render(tables_dir, figures_dir, gen)
    pdf = tmp_path / "out" / "report.pdf"
    assert R.main(["build", "--texdir", str(gen), "--out", str(pdf)]) == 0
    assert _is_pdf(pdf)
    log = (gen / "report.log").read_text(errors="replace")
    assert not R.UNDEFINED_RE.search(log)
    assert not re.search(r"(Reference|Citation) `[^']*' on page \d+ undefined", log)
    assert "There were undefined" not in log
