"""One test over the registry: every study module has its parts, builds its claims, draws its figures and renders
its section from the fixture tables (which enable every study)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIXTURE_TABLES, ROOT, is_pdf
from normrobust.analysis import report
from normrobust.analysis.claims import Claim, evaluate
from normrobust.analysis.plotting import Figure
from normrobust.analysis.reproduction import Published
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.tables import read_run_info, read_table
from normrobust.analysis.verdicts import VERDICTS
from normrobust.figures import build_figure
from normrobust.studies import FIGURE_STUDY, STUDIES

INFO = read_run_info(FIXTURE_TABLES)
FRAMES = {t: read_table(FIXTURE_TABLES, t) for t in ("metrics", "history", "transfer")}


def test_registry_order_and_tags():
    assert [m.TAG for m in STUDIES.values()] == [f"E{i}" for i in range(1, 11)]
    assert set(INFO["config"]["studies"]) == set(STUDIES), "the fixture tables enable every study"
    assert len(FIGURE_STUDY) == sum(len(m.FIGURES) for m in STUDIES.values()), "figure names are unique"


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_module_has_its_parts(key):
    m = STUDIES[key]
    assert m.KEY == key and m.__name__.endswith(f".studies.{key}")
    assert m.__doc__ and m.TAG in m.__doc__.split("\n")[0], "the docstring starts with the study's tag"
    assert isinstance(m.TITLE, str) and m.TITLE
    assert set(m.TABLES) <= {"metrics", "history", "transfer"}
    assert all(isinstance(f, Figure) and f.caption and set(f.tables) <= set(m.TABLES) | {"metrics", "history",
                                                                                          "transfer"}
               for f in m.FIGURES.values())
    assert all(isinstance(p, Published) and p.study == key for p in m.PUBLISHED)
    assert callable(m.claims) and callable(m.section)
    assert (ROOT / "paper" / "sections" / f"{key}.tex.j2").is_file(), "its report fragment"


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_builds_its_claims_from_the_fixtures(key):
    claims = STUDIES[key].claims(StudyView.of(INFO, key))
    assert claims and all(isinstance(c, Claim) and c.study == key for c in claims)
    assert all(c.id.startswith(f"{STUDIES[key].TAG}-") for c in claims)
    df = evaluate(claims, FRAMES)
    assert df["id"].is_unique and set(df["verdict"]) <= set(VERDICTS)
    assert (df["rule"].str.len() > 0).all()
    measured = df[df["note"] != "not measured by this pipeline"]
    assert (measured["n_seeds"] > 0).any(), "the fixture tables measure some of its claims"


@pytest.mark.parametrize("name", list(FIGURE_STUDY))
def test_study_draws_its_figures(name, tmp_path):
    out = build_figure(name, FIXTURE_TABLES, tmp_path / f"{name}.pdf")
    assert is_pdf(out)


@pytest.fixture(scope="module")
def rendered(figures_dir, tmp_path_factory) -> tuple[Path, str]:
    gen = tmp_path_factory.mktemp("gen")
    return gen, report.render(FIXTURE_TABLES, figures_dir, gen, list(STUDIES.values())).read_text()


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_renders_its_section(key, rendered):
    gen, tex = rendered
    tag = STUDIES[key].TAG
    m = re.search(rf"\\section\{{{tag}: [^}}]*\}}\\label\{{sec:{tag.lower()}\}}", tex)
    assert m, f"no section for {key}"
    nxt = tex.find("\\section{", m.end())
    body = tex[m.end(): nxt]
    for fig in STUDIES[key].FIGURES:  # every figure of the module placed and referenced in its section
        assert f"\\label{{fig:{fig}}}" in body and f"\\ref{{fig:{fig}}}" in body, (key, fig)
        assert f"figures/{fig}.pdf" in body
    tables = re.findall(r"\\fittable\{(tables/[^}]+)\}", body)
    assert tables, f"no table in the section of {key}"
    for t in tables:
        text = (gen / t).read_text()
        assert "\\begin{tabular}" in text and "\\bottomrule" in text and "no results" not in text, (key, t)
    assert f"Claims of {tag}:" in body and "\\VAR" not in body and "\\BLOCK" not in body


def test_published_numbers_are_typed_once():
    """Each published number that is not a round one appears as a literal (as a percent, or as a fraction: 79.3 or
    0.793) only in the modules of the studies that publish it: typed once, read from there by the claims, tables,
    figures and the reproduction table."""
    texts = {p: p.read_text() for p in (ROOT / "src" / "normrobust").rglob("*.py")}
    owners: dict[str, set[str]] = {}
    for m in STUDIES.values():
        for p in m.PUBLISHED:
            forms = [repr(p.value)] + ([repr(round(p.value / 100, 6))] if p.percent and p.value % 1 else [])
            for form in forms:
                if len(form.replace(".", "").lstrip("0")) >= 2 and not float(form).is_integer():
                    owners.setdefault(form, set()).add(Path(m.__file__).name)  # 35, 0.7, ...: too common
    for form, files in owners.items():
        lit = re.compile(rf"(?<![\d.]){re.escape(form)}(?![\d\\])")  # not 0.31\\linewidth
        assert {f.name for f, t in texts.items() if lit.search(t)} <= files, form


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_section_copes_with_empty_tables(key):
    """An enabled study whose cells have no rows still gets its section's introduction (the driver calls section)."""
    empty = {t: f.iloc[0:0] for t, f in FRAMES.items()}
    out = STUDIES[key].section(StudyView.of(INFO, key), empty, lambda name, tex: f"tables/{name}.tex")
    assert isinstance(out, dict)
