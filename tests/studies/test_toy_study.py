"""Adding a study as the README says (module, registry line, template fragment, config entry): the toy study of
tests/studies/toy/ appears in the DAG and in the report, and nothing else had to change."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURE_TABLES, ROOT, copy_checkout, snakemake_in

TOY = ROOT / "tests" / "studies" / "toy"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = copy_checkout(tmp_path_factory.mktemp("repo"))
    shutil.copy(TOY / "e11_toy.py", repo / "src" / "normrobust" / "studies" / "e11_toy.py")
    shutil.copy(TOY / "e11_toy.tex.j2", repo / "paper" / "sections" / "e11_toy.tex.j2")
    registry = repo / "src" / "normrobust" / "studies" / "__init__.py"
    text = registry.read_text()
    text, n = re.subn(r"\n    e10_fgsm,\n", "\n    e10_fgsm,\n    e11_toy,\n", text)  # its import and its place
    assert n == 2, "the registry's layout changed: update README 'Adding a study' and this test"
    registry.write_text(text)
    return repo


def test_the_toy_study_is_in_the_dag(repo, tmp_path):
    r = snakemake_in(repo, tmp_path, "-n", "--configfile", str(TOY / "toy.yaml"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "results/figures/toy_clean.pdf" in r.stdout
    off = tmp_path / "off.yaml"
    off.write_text("studies:\n  e11_toy: {enabled: false}\n")
    r = snakemake_in(repo, tmp_path, "-n", "--configfile", str(TOY / "toy.yaml"), str(off))
    assert r.returncode == 0 and "toy_clean" not in r.stdout


def test_the_toy_study_is_in_the_report(repo, tmp_path):
    tables = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, tables)
    info = json.loads((tables / "run_info.json").read_text())
    info["config"]["studies"]["e11_toy"] = {"dataset": "generated", "archs": ["cnn"], "norms": ["none", "bn"],
                                            "regimes": ["standard"]}
    (tables / "run_info.json").write_text(json.dumps(info))
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    for cmd in (["figure", "toy_clean", "--tables", str(tables), "--out", str(tmp_path / "figs" / "toy_clean.pdf")],
                ["report", "render", "--tables", str(tables), "--figures", str(tmp_path / "figs"), "--outdir",
                 str(tmp_path / "gen"), "--template", str(repo / "paper" / "report.tex.j2")]):
        r = subprocess.run([sys.executable, "-m", "normrobust", *cmd], capture_output=True, text=True, env=env,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    tex = (tmp_path / "gen" / "report.tex").read_text()
    assert "\\section{E11: a toy study}\\label{sec:e11}" in tex and "\\label{fig:toy_clean}" in tex
    assert "E11-bn-clean" in (tmp_path / "gen" / "tables" / "claims.tex").read_text()
    assert "tables/main-e11-toy.tex" in tex
