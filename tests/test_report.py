"""LaTeX tables and the report, built from the small synthetic tables in tests/fixtures/tables."""

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

from conftest import FIXTURE_TABLES as FIXTURES, is_pdf as _is_pdf  # noqa: F401

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
