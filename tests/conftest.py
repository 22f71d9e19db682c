import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

torch.set_num_threads(1)


@pytest.fixture
def root():
    return ROOT


def venv_bin(name: str) -> str:
    """A console script of the interpreter running the tests (the project's .venv)."""
    cand = Path(sys.executable).parent / name
    return str(cand) if cand.exists() else name


@pytest.fixture
def snakemake_cmd():
    return [sys.executable, "-m", "snakemake"]


@pytest.fixture(autouse=True)
def _no_gpu_lease_leak(monkeypatch):
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    yield


# ------------------------------------------------------------ the figure / claims / report fixtures

FIXTURE_TABLES = ROOT / "tests" / "fixtures" / "tables"


@pytest.fixture()
def tables_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture tables (tests may edit or delete files)."""
    import shutil

    d = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, d)
    return d


@pytest.fixture(scope="module")
def figures_dir(tmp_path_factory) -> Path:
    """Every figure built once from the fixture tables."""
    from normrobust import figures as F

    d = tmp_path_factory.mktemp("figures")
    for name in F.FIGURES:
        F.build_figure(name, FIXTURE_TABLES, d / f"{name}.pdf")
    return d


def is_pdf(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 2000
