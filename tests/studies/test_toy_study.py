"""Adding a study as the README says: its package, its report fragment, its config entry, its test. The toy study of
tests/studies/toy/ dropped into a copy of this checkout appears in the DAG, and its claims, figure and report section
are made from tables the pipeline's own planner lays out, with no other file of the checkout changed."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, copy_checkout, snakemake_in

TOY = ROOT / "tests" / "studies" / "toy"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_checkout(tmp_path_factory.mktemp("repo"))
    shutil.copytree(TOY / "e11_toy", repo / "src" / "normrobust" / "studies" / "e11_toy")
    shutil.copy(TOY / "e11_toy.tex.j2", repo / "paper" / "sections" / "e11_toy.tex.j2")
    return repo


def _changed(a: Path, b: Path) -> list[str]:
    """Files of ``a`` that differ from ``b`` or are missing there (recursively, caches and links into the checkout
    aside: src/normrobust/resources/ links to paper/ and workflow/)."""
    out = []
    cmp = filecmp.dircmp(a, b, ignore=["__pycache__", "generated"])
    out += [str(a / n) for n in cmp.left_only + cmp.diff_files]
    for sub in cmp.common_dirs:
        if not (a / sub).is_symlink():
            out += _changed(a / sub, b / sub)
    return out


def test_nothing_outside_the_study_changed(repo):
    added = {repo / "src" / "normrobust" / "studies" / "e11_toy", repo / "paper" / "sections" / "e11_toy.tex.j2"}
    for name in ("src", "workflow", "paper", "Snakefile", "config.yaml"):
        changed = _changed(repo / name, ROOT / name) if (repo / name).is_dir() else (
            [] if filecmp.cmp(repo / name, ROOT / name, shallow=False) else [name])
        assert {Path(p) for p in changed} <= added, changed


def test_the_toy_study_is_in_the_dag(repo, tmp_path):
    r = snakemake_in(repo, tmp_path, "-n", "--configfile", str(TOY / "toy.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "results/figures/toy_clean.pdf" in r.stdout
    off = tmp_path / "off.yaml"
    off.write_text("run: [e1_norms]\n")
    r = snakemake_in(repo, tmp_path, "-n", "--configfile", str(TOY / "toy.yaml"), str(off))
    assert r.returncode == 0 and "toy_clean" not in r.stdout


def _cli(repo: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=600)


def test_the_toy_study_has_claims_a_figure_and_a_section(repo, tmp_path):
    tables = tmp_path / "tables"
    r = _cli(repo, str(ROOT / "tests" / "fixture_tables.py"), str(tables), "--root", str(repo), "--configfile",
             str(TOY / "toy.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    for cmd in (["claims", "--tables", str(tables), "--out", str(tables / "claims.csv")],
                ["figure", "toy_clean", "--tables", str(tables), "--out", str(tmp_path / "figs" / "toy_clean.pdf")],
                ["report", "render", "--tables", str(tables), "--figures", str(tmp_path / "figs"), "--claims",
                 str(tables / "claims.csv"), "--outdir", str(tmp_path / "gen"), "--template",
                 str(repo / "paper" / "report.tex.j2")]):
        r = _cli(repo, "-m", "normrobust", *cmd)
        assert r.returncode == 0, (cmd, r.stderr[-3000:])
    assert "E11-bn-clean" in (tables / "claims.csv").read_text()
    tex = (tmp_path / "gen" / "report.tex").read_text()
    assert "\\section{E11: a toy study}\\label{sec:e11}" in tex and "\\label{fig:toy_clean}" in tex
    assert "E11-bn-clean" in (tmp_path / "gen" / "tables" / "claims.tex").read_text()
    assert "tables/main-e11-toy.tex" in tex
