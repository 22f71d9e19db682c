"""A stranger's install: a built wheel works outside the checkout, and planning needs no torch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import FIXTURE_TABLES
from normrobust.studies import STUDIES

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.name for p in (ROOT / "workflow" / "presets").glob("*.yaml"))


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> tuple[Path, Path]:
    """The wheel of this checkout installed into a fresh virtual environment; its dependencies come from the
    test's own environment through a .pth line (so nothing is downloaded), not the checkout's editable install."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "checkout"  # a copy of the repository's files: building writes build/ and *.egg-info beside them
    files = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT).stdout.splitlines()
    for f in files:
        if (ROOT / f).exists() or (ROOT / f).is_symlink():
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / f).is_symlink():
                (src / f).symlink_to(os.readlink(ROOT / f))
            else:
                shutil.copy2(ROOT / f, src / f)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
          str(src)], cwd=tmp)
    wheel = next((tmp / "dist").glob("normrobust-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)], cwd=tmp)
    work = tmp / "elsewhere"
    work.mkdir()
    return py, work


def test_the_wheel_carries_schema_template_and_presets(wheel_env):
    py, work = wheel_env
    out = _run([str(py), "-c", "import normrobust, normrobust.resources as r; print(normrobust.__file__); "
                "print(r.SCHEMA.is_file(), r.TEMPLATE.is_file(), r.preset('paper-cifar10').is_file(), "
                "len(list(r.resource('paper', 'sections').glob('*.tex.j2'))))"], cwd=work).stdout.split("\n")
    assert str(ROOT) not in out[0], f"the checkout's package was imported, not the wheel's: {out[0]}"
    assert out[1] == f"True True True {len(STUDIES)}", out


def test_the_wheel_validates_a_config_and_renders_the_report(wheel_env):
    py, work = wheel_env
    shutil.copy(ROOT / "config.yaml", work / "config.yaml")
    _run([str(py), "-c", "from normrobust import config; c = config.validate(config.load('config.yaml')); "
          "print(len(c['studies']))"], cwd=work)
    r = subprocess.run([str(py), "-c", "from normrobust import config; config.validate({'seeds': 'x'})"],
                       cwd=work, capture_output=True, text=True)
    assert r.returncode != 0 and "seeds" in r.stderr  # the shipped schema is the one that checks
    _run([str(py), "-m", "normrobust", "claims", "--tables", str(FIXTURE_TABLES), "--out", str(work / "claims.csv")],
         cwd=work)
    _run([str(py), "-m", "normrobust", "report", "render", "--tables", str(FIXTURE_TABLES), "--claims",
          str(work / "claims.csv"), "--figures", str(work / "figures"), "--outdir", str(work / "paper")], cwd=work)
    tex = (work / "paper" / "report.tex").read_text()
    assert "\\section{Reproduction against the published numbers}" in tex and "How claims are judged" in tex


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory) -> dict:
    """An environment in which ``import torch`` (and torchvision) fails, as in a CI image with Snakemake only."""
    block = tmp_path_factory.mktemp("block")
    for name in ("torch", "torchvision"):
        (block / name).mkdir()
        (block / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed here')\n")
    return {**os.environ, "PYTHONPATH": f"{block}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_torch_is_really_blocked(no_torch):
    r = subprocess.run([sys.executable, "-c", "import torch"], env=no_torch, capture_output=True, text=True)
    assert r.returncode != 0 and "not installed here" in r.stderr


@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_dry_run_needs_no_torch(no_torch, preset, tmp_path):
    extra = ["--configfile", str(ROOT / "workflow" / "presets" / preset)] if preset else []
    r = _run([sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
              "--quiet", "rules", *extra], env=no_torch, cwd=tmp_path)
    assert "train" in r.stdout + r.stderr  # it planned the training jobs
