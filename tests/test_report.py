"""The report driver: LaTeX helpers, render from the tables, a section per enabled study, build."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, is_pdf, make_claims_csv
from normrobust import claims as claims_cli
from normrobust import report as report_cli
from normrobust.analysis import report, report_build
from normrobust.analysis.claims import read_claims
from normrobust.analysis.claims_step import load_and_evaluate
from normrobust.analysis.labels import attack_tex, tex_escape
from normrobust.analysis.latex import CHECK_MARK, caption_tex, claims_table, note_tex, verdict_tex
from normrobust.analysis.verdicts import EVIDENCE, FAIL, INCONCLUSIVE, MANIPULATION_CHECK, NOT_TESTABLE, PASS
from normrobust.studies import analyses

MODULES = analyses()


def _expected(series: pd.Series, pct: bool) -> str:
    k, d = (100, 1) if pct else (1, 3)
    return f"${series.mean() * k:.{d}f} \\pm {series.std(ddof=1) * k:.{d}f}$"


def test_tex_escape() -> None:
    assert tex_escape("a_b & 50% #1 {x} $y$") == r"a\_b \& 50\% \#1 \{x\} \$y\$"
    assert tex_escape("PGD-L∞ ε=4/255") == r"PGD-$L_\infty$ $\varepsilon$=4/255"
    assert tex_escape("back\\slash ~^") == r"back\textbackslash{}slash \textasciitilde{}\textasciicircum{}"


def test_claims_table_has_a_row_per_claim_with_rule_and_verdict() -> None:
    claims = load_and_evaluate(MODULES, FIXTURE_TABLES)
    text = claims_table(claims)
    assert "\\begin{longtable}" in text and "\\nrltcaption" in text
    rows = [ln for ln in text.splitlines() if "\\texttt{" in ln and ln.endswith("\\\\")]
    assert len(rows) == len(claims)
    for row, (_, c) in zip(rows, claims.iterrows()):
        assert f"\\texttt{{{tex_escape(c['id'])}}}" in row and verdict_tex(c["verdict"]) in row
        assert tex_escape(c["rule"]) in row
        if c["paper"]:
            assert tex_escape(c["paper"]) in row


def test_caption_tex() -> None:
    assert caption_tex("**E1: x.** Accuracy (%) as ε grows, $D_R$ and a_b.") == (
        r"\textbf{E1: x.} Accuracy (\%) as $\varepsilon$ grows, $D_R$ and a\_b.")


def test_render_numbers_follow_the_csv(tables_dir: Path, figures_dir: Path, tmp_path: Path) -> None:
    tex1 = report.render(tables_dir, figures_dir, tmp_path / "gen1", MODULES, make_claims_csv(tables_dir)).read_text()
    assert "\\VAR" not in tex1 and "\\BLOCK" not in tex1
    for m in MODULES:
        for name in m.FIGURES:
            assert (tmp_path / "gen1" / "figures" / f"{name}.pdf").is_file()
    assert (tmp_path / "gen1" / "tables" / "claims.tex").is_file()
    m = pd.read_csv(tables_dir / "metrics.csv")
    arch = json.loads((tables_dir / "run_info.json").read_text())["config"]["studies"]["e1_norms"]["archs"][0]

    def clean_gap(df: pd.DataFrame) -> float:
        c = df[(df["metric"] == "clean_acc") & (df["regime"] == "standard") & (df["dataset"] == "generated")
               & (df["arch"] == arch)].pivot(index="seed", columns="norm", values="value")
        return float((c["bn"] - c["none"]).mean() * 100)

    def phrase(gap: float) -> str:  # the abstract's words for BN's clean-accuracy change (claims.change_phrase)
        return f"{'raised' if gap > 0 else 'lowered'} clean accuracy by {abs(gap):.1f} points"

    before = phrase(clean_gap(m))
    assert before in tex1
    sel = ((m["metric"] == "clean_acc") & (m["norm"] == "bn") & (m["regime"] == "standard")
           & (m["dataset"] == "generated") & (m["arch"] == arch))
    m.loc[sel, "value"] = m.loc[sel, "value"] + 0.1  # BN's clean accuracy changes: abstract and table follow
    m.to_csv(tables_dir / "metrics.csv", index=False)
    claims = make_claims_csv(tables_dir)  # the claims step reruns on the new tables: the abstract follows them
    tex2 = report.render(tables_dir, figures_dir, tmp_path / "gen2", MODULES, claims).read_text()
    after = phrase(clean_gap(m))
    assert after != before and after in tex2 and before not in tex2
    assert _expected(m[sel]["value"], True) in (tmp_path / "gen2" / "tables" / "main-e1-norms.tex").read_text()


def test_render_with_a_claims_csv_and_missing_figures(tables_dir: Path, tmp_path: Path) -> None:
    claims_csv = tmp_path / "claims.csv"
    assert claims_cli.main(["--tables", str(tables_dir), "--out", str(claims_csv)]) == 0
    (tmp_path / "nofigs").mkdir()
    tex = report.render(tables_dir, tmp_path / "nofigs", tmp_path / "gen", MODULES, claims_csv).read_text()
    assert "Figure not available" in tex and "\\label{fig:trajectories}" in tex
    for m in MODULES:  # every figure's caption is its module's, converted to LaTeX
        for name, figure in m.FIGURES.items():
            assert f"\\caption{{{caption_tex(figure.caption)}}}\n  \\label{{fig:{name}}}" in tex, name
    rows = [ln for ln in (tmp_path / "gen" / "tables" / "claims.tex").read_text().splitlines()
            if "\\texttt{" in ln and ln.endswith("\\\\")]
    assert len(rows) == len(read_claims(claims_csv))


def test_render_cli_missing_table(tables_dir: Path, figures_dir: Path, fixture_claims: Path, tmp_path: Path,
                                  capsys) -> None:
    (tables_dir / "run_info.json").unlink()
    rc = report_cli.main(["render", "--tables", str(tables_dir), "--figures", str(figures_dir), "--claims",
                          str(fixture_claims), "--outdir", str(tmp_path / "gen")])
    assert rc != 0 and "run_info.json" in capsys.readouterr().err


def test_render_reads_the_claims_step_file(tables_dir: Path, figures_dir: Path, tmp_path: Path, capsys) -> None:
    """The claims are evaluated once, by the claims step: render needs its file and never evaluates them."""
    args = ["render", "--tables", str(tables_dir), "--figures", str(figures_dir), "--outdir", str(tmp_path / "gen")]
    with pytest.raises(SystemExit):
        report_cli.main(args)
    assert "--claims" in capsys.readouterr().err
    assert report_cli.main([*args, "--claims", str(tmp_path / "none.csv")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing claims file" in err and "normrobust claims" in err
    assert not (tmp_path / "gen" / "report.tex").exists()


def test_build_without_tex(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setattr(report_build.shutil, "which", lambda name: None)
    assert report_cli.main(["build", "--texdir", str(tmp_path), "--out", str(tmp_path / "r.pdf")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "TeX is missing" in err and "apt-get install latexmk" in err


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="latexmk not installed (TeX is needed to compile)")
def test_build_compiles_pdf(figures_dir: Path, fixture_claims: Path, tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    report.render(FIXTURE_TABLES, figures_dir, gen, MODULES, fixture_claims)
    pdf = tmp_path / "out" / "report.pdf"
    assert report_cli.main(["build", "--texdir", str(gen), "--out", str(pdf)]) == 0
    assert is_pdf(pdf)
    log = (gen / "report.log").read_text(errors="replace")
    assert not report_build.UNDEFINED_RE.search(log) and "There were undefined" not in log


def test_sections_in_registry_order_with_the_abstract(figures_dir: Path, fixture_claims: Path, tmp_path: Path) -> None:
    tex = report.render(FIXTURE_TABLES, figures_dir, tmp_path / "gen", MODULES, fixture_claims).read_text()
    positions = [tex.index(f"\\section{{{m.TAG}: ") for m in MODULES]
    assert positions == sorted(positions)
    abstract = tex[tex.index("\\begin{abstract}"): tex.index("\\end{abstract}")]
    assert "batch normalisation (BN)" in abstract and "Spearman rank correlation" in abstract
    assert "Under adversarial training the BN gap" in abstract
    assert re.search(r"E3 \(disentangled datasets\) \d+ of \d+", abstract), "a study without sentences is counted"


def test_disabled_study_is_left_out_and_an_empty_one_says_so(tables_dir: Path, figures_dir: Path,
                                                              tmp_path: Path) -> None:
    info = json.loads((tables_dir / "run_info.json").read_text())
    info["config"]["run"].remove("e4_conflict")  # the config runs the studies it lists
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    m = pd.read_csv(tables_dir / "metrics.csv", keep_default_na=False)
    m = m[~m["regime"].str.startswith("ligs_w")]  # E8 keeps only its standard cell...
    m = m[~((m["regime"] == "standard") & (m["norm"] == "bn") & (m["arch"] == "cnn")
            & (m["dataset"] == "generated"))]  # ...and loses that too
    m.to_csv(tables_dir / "metrics.csv", index=False)
    tex = report.render(tables_dir, figures_dir, tmp_path / "gen", MODULES, make_claims_csv(tables_dir)).read_text()
    assert "\\section{E4" not in tex and "\\ref{tab:e4}" not in tex
    assert "E4, conflicting features" in tex, "the limitations name the study that did not run"
    e8 = tex[tex.index("\\section{E8"): tex.index("\\section{", tex.index("\\section{E8") + 1)]
    assert "This study is enabled, but the tables have no rows for its 3 cells." in e8
    assert "\\fittable" not in e8 and "\\begin{figure}" not in e8


def test_reproduction_rows_come_from_the_studies(figures_dir: Path, fixture_claims: Path, tmp_path: Path) -> None:
    report.render(FIXTURE_TABLES, figures_dir, tmp_path / "gen", MODULES, fixture_claims)
    text = (tmp_path / "gen" / "tables" / "reproduction.tex").read_text()
    n = sum(len(m.PUBLISHED) for m in MODULES)
    assert text.count("\\\\") - 1 - text.count("\\multicolumn") == n  # header + one row per published number
    assert "analogue:" in text and "[G] Sec. 4" in text


def _section(tex: str, tag: str) -> str:
    start = tex.index(f"\\section{{{tag}: ")
    return tex[start: tex.index("\\section{", start + 1)]


def test_a_study_prints_its_own_transfer_attack(tables_dir: Path, tmp_path: Path) -> None:
    """E9's and E10's transfer jobs attack with the study's own ``transfer.attack``, else the config's: each
    section prints the attack its jobs used, never the global one in its place (and the setup prints none)."""
    info = json.loads((tables_dir / "run_info.json").read_text())
    cfg = info["config"]
    glob = cfg["transfer"]["attack"]
    own9 = {"type": "pgd", "norm": "l2", "eps": 0.5, "steps": 3, "rel_step": 0.4}
    cfg["studies"]["e9_transfer"].setdefault("transfer", {})["attack"] = own9
    own10 = cfg["studies"]["e10_fgsm"]["transfer"]["attack"]
    assert own10 != glob and own9 != glob
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    (tmp_path / "nofigs").mkdir()
    tex = report.render(tables_dir, tmp_path / "nofigs", tmp_path / "gen", MODULES,
                        make_claims_csv(tables_dir)).read_text()
    e9, e10 = _section(tex, "E9"), _section(tex, "E10")
    assert f"crafted on a source model ({attack_tex(own9)})" in e9 and attack_tex(glob) not in e9
    assert f"tried on the other ({attack_tex(own10)})" in e10 and attack_tex(glob) not in e10
    setup = tex[tex.index("\\section{Setup}"): tex.index("\\section{How claims are judged}")]
    assert attack_tex(glob) not in setup
    del cfg["studies"]["e9_transfer"]["transfer"]["attack"]  # without its own: the config's
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    tex = report.render(tables_dir, tmp_path / "nofigs", tmp_path / "gen2", MODULES,
                        make_claims_csv(tables_dir)).read_text()
    assert f"crafted on a source model ({attack_tex(glob)})" in _section(tex, "E9")


# ------------------------------------------------------------------ NOT TESTABLE, manipulation checks, preconditions

def _mixed_claims(src: Path, dest: Path) -> pd.DataFrame:
    """The claims of ``src`` with every verdict present: cycled through PASS, FAIL, INCONCLUSIVE and NOT TESTABLE (a
    NOT TESTABLE one names its precondition), and two claims made manipulation checks (one PASS, one FAIL)."""
    df = read_claims(src)
    cycle = [PASS, FAIL, INCONCLUSIVE, NOT_TESTABLE]
    df["verdict"] = [cycle[i % 4] for i in range(len(df))]
    df["kind"] = EVIDENCE
    nt = df["verdict"] == NOT_TESTABLE
    df.loc[nt, "note"] = [f"precondition not shown: cell{i}/resnet/BN/standard learned clean accuracy"
                          for i in range(int(nt.sum()))]
    last = df.index[df["study"] == df["study"].iloc[-1]]
    df.loc[last[-1], ["kind", "verdict"]] = [MANIPULATION_CHECK, PASS]
    df.loc[last[-2], ["kind", "verdict"]] = [MANIPULATION_CHECK, FAIL]
    claims_cli.write_claims(df, dest)
    return read_claims(dest)


def test_not_testable_and_manipulation_checks_are_shown_and_counted_apart(figures_dir: Path, fixture_claims: Path,
                                                                          tmp_path: Path) -> None:
    claims = _mixed_claims(fixture_claims, tmp_path / "claims.csv")
    tex = report.render(FIXTURE_TABLES, figures_dir, tmp_path / "gen", MODULES, tmp_path / "claims.csv").read_text()
    assert "\\definecolor{nottestblue}" in tex and verdict_tex(NOT_TESTABLE) == \
        r"\textcolor{nottestblue}{\textbf{NOT TESTABLE}}"
    ev, checks = claims[claims["kind"] == EVIDENCE], claims[claims["kind"] == MANIPULATION_CHECK]
    n = ev["verdict"].value_counts()
    testable = len(ev) - n[NOT_TESTABLE]
    sentence = (f"Of {len(ev)} claims from the literature checked with a rule fixed in advance (and 2 manipulation "
                f"checks, not counted as evidence), {n[PASS]} passed, {n[FAIL]} failed and {n[INCONCLUSIVE]} were "
                f"inconclusive; {n[NOT_TESTABLE]} were not testable because a precondition did not hold "
                f"(Section~\\ref{{sec:preconditions}}); {100 * (n[PASS] + n[FAIL]) / testable:.0f}\\,\\% of the "
                "testable claims were decided (PASS or FAIL).")
    abstract = tex[tex.index("\\begin{abstract}"): tex.index("\\end{abstract}")]
    assert sentence in abstract
    section = tex[tex.index("\\section{Claims}"): tex.index("\\section{Preconditions}")]
    assert sentence.replace("from the literature checked with a rule fixed in advance", "checked") in section
    # each NOT TESTABLE claim: in its study's list, the Claims section's list and the claims table, with its note
    table = (tmp_path / "gen" / "tables" / "claims.tex").read_text()
    for _, c in ev[ev["verdict"] == NOT_TESTABLE].iterrows():
        cid, note = tex_escape(c["id"]), note_tex(c["note"])
        assert f"\\item {verdict_tex(NOT_TESTABLE)} \\texttt{{{cid}}}: " in tex
        assert f"\\item \\texttt{{{cid}}}: {note}." in section
        row = next(ln for ln in table.splitlines() if f"\\texttt{{{cid}}}" in ln)
        assert verdict_tex(NOT_TESTABLE) in row and note in row
    # the manipulation checks: marked in the table, listed apart, never among the failed claims or the limitations
    checks_par = section[section.index("\\paragraph{Manipulation checks (true by construction; not evidence).}"):]
    failed = section[: section.index("\\paragraph{Manipulation checks")]
    for _, c in checks.iterrows():
        cid = tex_escape(c["id"])
        assert f"\\item {verdict_tex(c['verdict'])} \\texttt{{{cid}}}: " in checks_par
        assert f"\\texttt{{{cid}}}" not in failed
        assert f"id {cid}" not in tex, "a failed manipulation check is no limitation of the reproduction"
        row = next(ln for ln in table.splitlines() if f"\\texttt{{{cid}}}" in ln)
        assert CHECK_MARK in row
    assert sum(CHECK_MARK in ln for ln in table.splitlines()) == 2


def test_counts_sentence_without_testable_claims_or_checks() -> None:
    df = pd.DataFrame({"verdict": [NOT_TESTABLE, NOT_TESTABLE], "kind": [EVIDENCE, EVIDENCE]})
    k = report.verdict_counts(df)
    assert (k["n_claims"], k["n_testable"], k["decided_pct"]) == (2, 0, None)
    assert report.counts_sentence(k) == (
        "Of 2 claims checked, 0 passed, 0 failed and 0 were inconclusive; 2 were not testable because a precondition "
        "did not hold (Section~\\ref{sec:preconditions}); no claim was testable.")
    k = report.verdict_counts(pd.DataFrame({"verdict": [PASS, FAIL, PASS], "kind": [EVIDENCE, EVIDENCE,
                                                                                     MANIPULATION_CHECK]}))
    assert report.counts_sentence(k) == (
        "Of 2 claims checked (and 1 manipulation check, not counted as evidence), 1 passed, 1 failed and 0 were "
        "inconclusive; 100\\,\\% of the testable claims were decided (PASS or FAIL).")


def _table_rows(text: str) -> list[str]:
    """The data rows of a longtable file (not its header, continuation or study rows)."""
    body = text[text.index("\\endlastfoot"):]
    return [ln for ln in body.splitlines() if ln.endswith("\\\\") and "\\multicolumn" not in ln]


def test_preconditions_section_shows_the_rows_of_preconditions_csv(tables_dir: Path, figures_dir: Path,
                                                                     tmp_path: Path) -> None:
    claims_csv = make_claims_csv(tables_dir)  # writes preconditions.csv beside it
    pre = pd.read_csv(tables_dir / "preconditions.csv", keep_default_na=False, na_values=[""])
    assert len(pre)
    tex = report.render(tables_dir, figures_dir, tmp_path / "gen", MODULES, claims_csv).read_text()
    section = tex[tex.index("\\section{Preconditions}"):]
    assert "\\input{tables/preconditions.tex}" in section and "\\label{tab:preconditions}" in section
    assert "judged by the same interval" in section and "all its conditions PASS" in section
    words = " ".join(section.split())
    assert f"Of the {pre['precondition'].nunique()} distinct conditions the {pre['claim'].nunique()} claims" in words
    text = (tmp_path / "gen" / "tables" / "preconditions.tex").read_text()
    rows = _table_rows(text)
    assert len(rows) == len(pre)
    for row, (_, p) in zip(rows, pre.iterrows()):  # grouped by study in the claims' order: the file's order here
        assert note_tex(p["precondition"]) in row and verdict_tex(p["verdict"]) in row
        assert (" (holds)" in row) == (p["verdict"] == PASS)
    claims = read_claims(claims_csv)
    for study in dict.fromkeys(claims[claims["id"].isin(pre["claim"])]["study"]):
        m = next(m for m in MODULES if m.KEY == study)
        assert f"\\textbf{{{tex_escape(f'{m.TAG}: {m.TITLE}')}}}" in text


def test_a_precondition_row_reads_mean_interval_level_and_verdict(tables_dir: Path, tmp_path: Path) -> None:
    claims_csv = make_claims_csv(tables_dir)
    claim = read_claims(claims_csv)["id"].iloc[0]
    rows = [{"claim": claim, "precondition": "generated/cnn/BN/standard learned clean accuracy", "metric": "clean_acc",
             "level": 0.3, "mean": 0.567, "ci_low": 0.451, "ci_high": 0.683, "n_seeds": 2, "verdict": PASS, "note": ""},
            {"claim": claim, "precondition": "d_det carries the NRF of its label", "metric": "intended_rate",
             "level": 0.8, "mean": 0.75, "ci_low": 0.72, "ci_high": 0.78, "n_seeds": 1, "verdict": FAIL, "note": ""},
            {"claim": claim, "precondition": "the source fools itself", "metric": "white_box_rate", "level": 0.5,
             "mean": "", "ci_low": "", "ci_high": "", "n_seeds": 0, "verdict": INCONCLUSIVE,
             "note": "transfer.csv records no white-box success"}]
    pd.DataFrame(rows).to_csv(tables_dir / "preconditions.csv", index=False)
    (tmp_path / "nofigs").mkdir()
    tex = report.render(tables_dir, tmp_path / "nofigs", tmp_path / "gen", MODULES, claims_csv).read_text()
    words = " ".join(tex.split())
    assert "Of the 3 distinct conditions the 1 claim with preconditions name, 1 held, 1 failed and 1 was" in words
    got = _table_rows((tmp_path / "gen" / "tables" / "preconditions.tex").read_text())
    cid = "\\texttt{" + tex_escape(claim).replace("-", "-\\allowbreak{}") + "}"
    assert got[0] == (f"{cid} & generated/\\allowbreak{{}}cnn/\\allowbreak{{}}BN/\\allowbreak{{}}standard learned "
                      "clean accuracy & $56.7$ [$45.1$, $68.3$]\\,\\% vs $30.0$\\,\\%; $n = 2$ & "
                      f"{verdict_tex(PASS)} (holds) \\\\")
    assert got[1] == (" & d\\_det carries the NRF of its label & $75.0$ [$72.0$, $78.0$]\\,\\% vs $80.0$\\,\\%; "
                      f"$n = 1$ & {verdict_tex(FAIL)} \\\\")
    assert got[2] == (" & the source fools itself & not measured: transfer.csv records no white-box success (level "
                      f"$50.0$\\,\\%) & {verdict_tex(INCONCLUSIVE)} \\\\")


def test_render_without_preconditions_says_so(tables_dir: Path, figures_dir: Path, tmp_path: Path) -> None:
    claims_csv = make_claims_csv(tables_dir)
    moved = tmp_path / "elsewhere" / "pre.csv"
    moved.parent.mkdir()
    (tables_dir / "preconditions.csv").rename(moved)
    tex = report.render(tables_dir, figures_dir, tmp_path / "gen", MODULES, claims_csv).read_text()
    section = tex[tex.index("\\section{Preconditions}"):]
    assert "This report has no preconditions table" in section and "preconditions.csv" in section
    assert "\\input{tables/preconditions.tex}" not in tex
    args = ["render", "--tables", str(tables_dir), "--figures", str(figures_dir), "--claims", str(claims_csv)]
    assert report_cli.main([*args, "--outdir", str(tmp_path / "gen2"), "--preconditions", str(moved)]) == 0
    tex = (tmp_path / "gen2" / "report.tex").read_text()  # named with --preconditions: read from there
    assert "\\input{tables/preconditions.tex}" in tex and "no preconditions table" not in tex


def test_the_workflow_passes_the_preconditions_table(root: Path) -> None:
    rule = (root / "workflow" / "rules" / "paper.smk").read_text()
    assert "--preconditions {input.preconditions}" in rule
