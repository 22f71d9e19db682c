"""One test over the registry: every study package has its parts, builds its claims, draws its figures and renders
its section from the fixture tables (made by code from config.yaml, which runs every study)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIXTURE_TABLES, ROOT, is_pdf
from normrobust.analysis import report
from normrobust.analysis.claims import Claim, evaluate
from normrobust.analysis.claims_step import study_claims
from normrobust.analysis.metric import CLEAN
from normrobust.analysis.plotting import Figure
from normrobust.analysis.preconditions import Learned, compared_cells
from normrobust.analysis.reproduction import Published
from normrobust.analysis.study_view import StudyView
from normrobust.analysis.tables import read_run_info, read_table
from normrobust.analysis.verdicts import VERDICTS
from normrobust.figures import build_figure
from normrobust.settings import MEASUREMENTS, TRANSFER_MEASUREMENTS
from normrobust.studies import STUDIES, analyses, analysis, figure_studies

FIGURE_STUDY = figure_studies()

INFO = read_run_info(FIXTURE_TABLES)
FRAMES = {t: read_table(FIXTURE_TABLES, t) for t in ("metrics", "history", "transfer")}


def test_registry_order_and_tags():
    tags = [int(m.TAG[1:]) for m in STUDIES.values()]
    assert tags == sorted(tags) and len(set(tags)) == len(tags), "the report's order: by tag"
    assert set(INFO["config"]["run"]) == set(STUDIES), "the fixture tables run every study"
    assert len(FIGURE_STUDY) == sum(len(analysis(k).FIGURES) for k in STUDIES), "figure names are unique"


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_package_has_its_parts(key):
    light, m = STUDIES[key], analysis(key)
    assert light.KEY == key and light.__name__.endswith(f".studies.{key}")
    assert light.__doc__ and light.TAG in light.__doc__.split("\n")[0], "the docstring starts with the study's tag"
    assert isinstance(light.TITLE, str) and light.TITLE
    assert (m.KEY, m.TAG, m.TITLE) == (light.KEY, light.TAG, light.TITLE)
    assert set(light.HISTORY) <= {"robust", "ligs"}
    assert set(light.MEASURES) <= set(MEASUREMENTS) | set(TRANSFER_MEASUREMENTS), "evaluation or transfer measures"
    assert set(m.TABLES) <= {"metrics", "history", "transfer"}
    assert all(isinstance(f, Figure) and f.caption and set(f.tables) <= set(m.TABLES) | {"metrics", "history",
                                                                                          "transfer"}
               for f in m.FIGURES.values())
    assert all(isinstance(p, Published) and p.study == key for p in m.PUBLISHED)
    assert callable(m.claims) and callable(m.section)
    assert isinstance(getattr(m, "LEARNED", Learned(CLEAN)), Learned)
    assert (ROOT / "paper" / "sections" / f"{key}.tex.j2").is_file(), "its report fragment"


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_builds_its_claims_from_the_fixtures(key):
    claims = analysis(key).claims(StudyView.of(INFO, key))
    assert claims and all(isinstance(c, Claim) and c.study == key for c in claims)
    assert all(c.id.startswith(f"{STUDIES[key].TAG}-") for c in claims)
    df = evaluate(claims, FRAMES)
    assert df["id"].is_unique and set(df["verdict"]) <= set(VERDICTS)
    assert (df["rule"].str.len() > 0).all()
    measured = df[df["note"] != "not measured by this pipeline"]
    assert (measured["n_seeds"] > 0).any(), "the fixture tables measure some of its claims"


@pytest.mark.parametrize("key", list(STUDIES))
def test_the_claims_step_adds_what_a_study_says_its_models_learned(key):
    m = analysis(key)
    claims = study_claims(m, INFO)
    texts = [[p.text for p in c.requires] for c in claims]
    if getattr(m, "LEARNED", None) is None:
        assert texts == [[p.text for p in c.requires] for c in m.claims(StudyView.of(INFO, key))]
        return
    what = f"learned {m.LEARNED.what or m.LEARNED.metric.text}"
    for c, ts in zip(claims, texts):
        assert sum(what in t for t in ts) == len(compared_cells(c)), f"{c.id}: each compared model learned, once"
    assert any(what in t for ts in texts for t in ts)


@pytest.mark.parametrize("name", list(FIGURE_STUDY))
def test_study_draws_its_figures(name, tmp_path):
    out = build_figure(name, FIXTURE_TABLES, tmp_path / f"{name}.pdf")
    assert is_pdf(out)


@pytest.fixture(scope="module")
def rendered(figures_dir, fixture_claims, tmp_path_factory) -> tuple[Path, str]:
    gen = tmp_path_factory.mktemp("gen")
    return gen, report.render(FIXTURE_TABLES, figures_dir, gen, analyses(), fixture_claims).read_text()


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_renders_its_section(key, rendered):
    gen, tex = rendered
    tag = STUDIES[key].TAG
    m = re.search(rf"\\section\{{{tag}: [^}}]*\}}\\label\{{sec:{tag.lower()}\}}", tex)
    assert m, f"no section for {key}"
    nxt = tex.find("\\section{", m.end())
    body = tex[m.end(): nxt]
    for fig in analysis(key).FIGURES:  # every figure of the module placed and referenced in its section
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
    0.793) only in the packages of the studies that publish it: typed once, read from there by the claims, tables,
    figures and the reproduction table."""
    texts = {p: p.read_text() for p in (ROOT / "src" / "normrobust").rglob("*.py")}
    owners: dict[str, set[str]] = {}
    for m in analyses():
        for p in m.PUBLISHED:
            forms = [repr(p.value)] + ([repr(round(p.value / 100, 6))] if p.percent and p.value % 1 else [])
            for form in forms:
                if len(form.replace(".", "").lstrip("0")) >= 2 and not float(form).is_integer():
                    owners.setdefault(form, set()).add(Path(m.__file__).parent)  # 35, 0.7, ...: too common
    for form, packages in owners.items():
        lit = re.compile(rf"(?<![\d.]){re.escape(form)}(?![\d\\])")  # not 0.31\\linewidth
        found = {f for f, t in texts.items() if lit.search(t)}
        assert all(any(f.is_relative_to(p) for p in packages) for f in found), (form, found)


@pytest.mark.parametrize("key", list(STUDIES))
def test_study_section_copes_with_empty_tables(key):
    """An enabled study whose cells have no rows still gets its section's introduction (the driver calls section)."""
    empty = {t: f.iloc[0:0] for t, f in FRAMES.items()}
    out = analysis(key).section(StudyView.of(INFO, key), empty, lambda name, tex: f"tables/{name}.tex")
    assert isinstance(out, dict)
