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
from normrobust.studies import STUDIES

from conftest import FIXTURE_TABLES as FIXTURES, is_pdf as _is_pdf  # noqa: F401

# ------------------------------------------------------------------------------------------- tables

def _expected(series: pd.Series, pct: bool) -> str:
    k = 100 if pct else 1
    d = 1 if pct else 3
    return f"${series.mean() * k:.{d}f} \\pm {series.std(ddof=1) * k:.{d}f}$"


def test_main_table_numbers_match_csv() -> None:
    m = T.read_table(FIXTURES, "metrics")
    text = T.main_results_table(m, {"attack": "pgd_linf", "eps": 4}, dataset="generated", archs=["cnn"],
                                regimes=["standard", "pgd_linf"])
    assert r"\toprule" in text and r"\bottomrule" in text
    sel = m[(m["norm"] == "bn") & (m["regime"] == "standard") & (m["dataset"] == "generated") & (m["arch"] == "cnn")]
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
        c = df[(df["metric"] == "clean_acc") & (df["regime"] == "standard") & (df["dataset"] == "generated")
               & (df["arch"] == "cnn")].pivot(index="seed", columns="norm", values="value")
        return float((c["bn"] - c["none"]).mean() * 100)

    before = f"raised clean accuracy by {clean_gap(m):.1f} points"
    assert before in tex1
    # change BN's clean accuracy in the CSV: the abstract and the table must follow
    sel = ((m["metric"] == "clean_acc") & (m["norm"] == "bn") & (m["regime"] == "standard")
           & (m["dataset"] == "generated") & (m["arch"] == "cnn"))
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


# ------------------------------------------------------------------------ one section per study (E1–E10)

def _info() -> dict:
    return T.read_run_info(FIXTURES)


def _study_cells(name: str) -> pd.DataFrame:
    """The fixture's metrics rows of one study's cells (its design, as the config helper expands it)."""
    from normrobust.config import study_cells

    info = _info()
    cells = {(c["dataset"], c["arch"], c["norm"], c["regime"])
             for c in study_cells(info["config"], info["config"]["studies"][name])}
    m = T.read_table(FIXTURES, "metrics")
    keep = [k in cells for k in zip(m["dataset"], m["arch"], m["norm"], m["regime"])]
    return m[keep]


@pytest.fixture(scope="module")
def rendered(figures_dir: Path, tmp_path_factory) -> tuple[Path, str]:
    gen = tmp_path_factory.mktemp("gen")
    tex = R.render(FIXTURES, figures_dir, gen).read_text()
    return gen, tex


def test_fixture_enables_every_study() -> None:
    assert set(T.studies(_info())) >= set(STUDIES), "the fixture tables must enable E1–E10"


def test_a_section_per_enabled_study_with_its_figures_and_table(rendered) -> None:
    gen, tex = rendered
    enabled = T.studies(_info())
    order = sorted(enabled, key=lambda k: int(STUDIES[k]["tag"][1:]))
    positions = []
    for key in order:
        tag = STUDIES[key]["tag"]
        m = re.search(rf"\\section\{{{tag}: [^}}]*\}}\\label\{{sec:{tag.lower()}\}}", tex)
        assert m, f"no section for {key}"
        positions.append(m.start())
        nxt = tex.find("\\section{", m.end())
        body = tex[m.end(): nxt]
        for fig in STUDIES[key]["figures"]:  # every figure studies.py registers, placed and referenced
            assert f"\\label{{fig:{fig}}}" in body and f"\\ref{{fig:{fig}}}" in body, (key, fig)
            assert f"figures/{fig}.pdf" in body
        tables = re.findall(r"\\fittable\{(tables/[^}]+)\}", body)
        assert tables, f"no table in the section of {key}"
        for t in tables:
            text = (gen / t).read_text()
            assert "\\begin{tabular}" in text and "\\bottomrule" in text and "no results" not in text, (key, t)
        assert f"Claims of {tag}:" in body
    assert positions == sorted(positions), "sections in the order E1..E10"


def test_disabled_study_is_left_out_and_an_empty_one_says_so(tables_dir: Path, figures_dir: Path,
                                                              tmp_path: Path) -> None:
    import json

    info = json.loads((tables_dir / "run_info.json").read_text())
    info["config"]["studies"]["e4_conflict"]["enabled"] = False
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    m = pd.read_csv(tables_dir / "metrics.csv", keep_default_na=False)
    m = m[~m["regime"].str.startswith("ligs_w")]  # E8 keeps only its standard cell...
    m = m[~((m["regime"] == "standard") & (m["norm"] == "bn") & (m["arch"] == "cnn")
            & (m["dataset"] == "generated"))]  # ...and loses that too
    m.to_csv(tables_dir / "metrics.csv", index=False)
    tex = R.render(tables_dir, figures_dir, tmp_path / "gen").read_text()
    assert "\\section{E4" not in tex and "\\ref{tab:e4}" not in tex
    e8 = tex[tex.index("\\section{E8"): tex.index("\\section{", tex.index("\\section{E8") + 1)]
    assert "This study is enabled, but the tables have no rows for its 3 cells." in e8
    assert "\\fittable" not in e8 and "\\begin{figure}" not in e8


def test_e5_rank_correlation_matches_pandas(rendered) -> None:
    gen, tex = rendered
    m = _study_cells("e5_synthetic")
    wide = m[m["metric"].isin(["ligs", "nrf_reliance"])].pivot_table(
        index=["dataset", "arch", "norm", "regime", "seed"], columns="metric", values="value").dropna()
    text = (gen / "tables" / "corr-e5-synthetic.tex").read_text()
    for seed, d in wide.groupby(level="seed"):
        rho = d["ligs"].corr(d["nrf_reliance"], method="spearman")
        assert f"seed {seed} & {len(d)} & ${rho:+.3f}$ \\\\" in text
    means = wide.groupby(level=["dataset", "arch", "norm", "regime"]).mean()
    rho = means["ligs"].corr(means["nrf_reliance"], method="spearman")
    assert f"mean over seeds & {len(means)} & ${rho:+.3f}$ \\\\" in text
    assert rho < 0 and f"$\\rho = {rho:+.3f}$" in tex  # the text states it, and how well LIGS agrees
    assert "agreement with the ground truth" in tex[tex.index("\\section{E5"):]


def test_e10_table_matches_pandas_and_goodfellow(rendered) -> None:
    gen, tex = rendered
    m = _study_cells("e10_fgsm")
    eps = m[(m["metric"] == "robust_acc") & (m["attack"] == "fgsm_linf")]["eps"].max()
    mx = m[(m["arch"] == "maxout") & (m["regime"] == "standard")]
    fgsm_err = (1 - mx[(mx["metric"] == "robust_acc") & (mx["attack"] == "fgsm_linf") & (mx["eps"] == eps)]
                ["value"]) * 100
    conf = mx[(mx["metric"] == "adv_wrong_confidence") & (mx["attack"] == "fgsm_linf") & (mx["eps"] == eps)][
        "value"] * 100
    clean_err = (1 - mx[mx["metric"] == "clean_acc"]["value"]) * 100
    text = (gen / "tables" / "main-e10-fgsm.tex").read_text()
    row = next(line for line in text.splitlines() if line.startswith("maxout & standard"))
    ce = clean_err
    assert f"${ce.mean():.2f} \\pm {ce.std(ddof=1):.2f}$ & $0.94$ & ${ce.mean() - 0.94:+.2f}$" in row
    assert f"${fgsm_err.mean():.1f} \\pm {fgsm_err.std(ddof=1):.1f}$ & $89.4$ & ${fgsm_err.mean() - 89.4:+.1f}$" in row
    assert f"${conf.mean():.1f} \\pm {conf.std(ddof=1):.1f}$ & $97.6$ & ${conf.mean() - 97.6:+.1f}$" in row
    t = T.read_table(FIXTURES, "transfer")
    t = t[(t["study"] == "e10_fgsm") & (t["source_arch"] == "maxout") & (t["target_arch"] == "maxout")]
    ttext = (gen / "tables" / "transfer-e10-fgsm.tex").read_text()
    for src, tgt, g in (("standard", "fgsm", 19.6), ("fgsm", "standard", 40.9)):
        e = t[(t["source_regime"] == src) & (t["target_regime"] == tgt)].groupby("seed")["error_rate"].mean() * 100
        assert f"${e.mean():.1f} \\pm {e.std(ddof=1):.1f}$ & ${g}$ & ${e.mean() - g:+.1f}$" in ttext, (src, tgt)
    # the text says by how much a number differs from [G]
    sec = tex[tex.index("\\section{E10"):]
    d = fgsm_err.mean() - 89.4
    assert (f"maxout, standard: FGSM error {fgsm_err.mean():.1f}\\%, {abs(d):.1f} points "
            f"{'above' if d > 0 else 'below'} [G]'s 89.4\\%") in sec


def test_e2_history_e3_paper_e6_variants_e8_weights(rendered) -> None:
    gen, tex = rendered
    h = T.read_table(FIXTURES, "history")
    h = h[(h["dataset"] == "generated") & (h["arch"] == "cnn") & (h["norm"] == "bn") & (h["regime"] == "standard")]
    last = h[h["epoch"] == h["epoch"].max()]
    text = (gen / "tables" / "history-e2-trajectories.tex").read_text()
    row = next(line for line in text.splitlines() if "& BN &" in line or line.startswith("standard & BN"))
    assert _expected(last["robust_acc_pgd_l2"], True) in row and "PGD-L2 $\\varepsilon$=0.25" in text
    e3 = (gen / "tables" / "main-e3-disentangled.tex").read_text()
    assert "[B] clean (\\%)" in e3 and "D\\_R" in e3
    drand_bn = next(line for line in e3.splitlines() if "BN" in line and "$68$" in line)  # [B]: D_rand, BN ~68
    assert "$0.31$" in drand_bn
    e4 = (gen / "tables" / "main-e4-conflict.tex").read_text()
    assert "$35$ & $18$ & $0.37$" in e4 and "$3$ & $74$ & $0.97$" in e4
    e6 = (gen / "tables" / "main-e6-factors.tex").read_text()
    for label in ("width $\\times$2", "depth $\\times$2", "activation selu", "weight decay 0.005 (base 0.0005)",
                  "lr 0.3 (base 0.1)", "optimizer adam"):
        assert label in e6, label
    e8 = (gen / "tables" / "main-e8-ligs-reg.tex").read_text()
    assert [ln.split(" & ")[0] for ln in e8.splitlines() if " & BN & " in ln] == ["0", "1", "10"]


def test_claims_table_has_a_row_per_claim_with_rule_and_verdict(tables_dir: Path, figures_dir: Path,
                                                                 tmp_path: Path) -> None:
    claims_csv = tmp_path / "claims.csv"
    assert C.main(["--tables", str(tables_dir), "--out", str(claims_csv)]) == 0
    claims = pd.read_csv(claims_csv, keep_default_na=False)
    gen = tmp_path / "gen"
    R.render(tables_dir, figures_dir, gen, claims_csv=claims_csv)
    text = (gen / "tables" / "claims.tex").read_text()
    assert "\\begin{longtable}" in text and "\\nrltcaption" in text
    rows = [ln for ln in text.splitlines() if "\\texttt{" in ln and ln.endswith("\\\\")]
    assert len(rows) == len(claims)
    for row, (_, c) in zip(rows, claims.iterrows()):
        assert f"\\texttt{{{T.tex_escape(c['id'])}}}" in row
        assert T.verdict_tex(c["verdict"]) in row
        if "rule" in claims.columns:
            assert T.tex_escape(c["rule"]) in row
        if "paper" in claims.columns and c["paper"]:
            assert T.tex_escape(c["paper"]) in row
    # an older claims.csv (no rule / paper / treatment columns) still renders, with the rule in words
    old = claims[[c for c in claims.columns if c in ("id", "study", "claim", "metric", "direction", "mean_diff",
                                                     "min_diff", "max_diff", "n_seeds", "verdict", "tolerance",
                                                     "note")]]
    old.to_csv(claims_csv, index=False)
    R.render(tables_dir, figures_dir, tmp_path / "gen_old", claims_csv=claims_csv)
    text = (tmp_path / "gen_old" / "tables" / "claims.tex").read_text()
    rows = [ln for ln in text.splitlines() if "\\texttt{" in ln and ln.endswith("\\\\")]
    assert len(rows) == len(old) and all("PASS if" in row and "INCONCLUSIVE" in row for row in rows)


def test_tables_without_the_new_transfer_columns() -> None:
    """Older transfer.csv (no study / source_epoch / source_final / error_rate): E9 and E10 still work."""
    t = T.read_table(FIXTURES, "transfer")
    new_cols = ["study", "source_epoch", "source_final", "error_rate", "n_total"]
    old = t[t["source_final"] & (t["study"] == "e9_transfer")].drop(columns=new_cols)
    kinds = T.transfer_sources_frame(old, ["standard"], dataset="generated")
    assert set(kinds["kind"]) == {"final (standard)", "final, PGD-L∞ AT", "final, pgd_small"}
    old = t[t["source_final"] & (t["study"] == "e10_fgsm")].drop(columns=new_cols)
    f = T.fgsm_frame(pd.DataFrame(columns=T.TABLE_COLUMNS["metrics"]), old, dataset="generated",
                     archs=["maxout"], norms=["none"], regimes=["standard", "fgsm"], attack=None, eps=None)
    assert set(f["quantity"]) == {"transfer_success"}  # falls back to the success rate, and says so
    assert "Success rate" in T.fgsm_transfer_table(f)
