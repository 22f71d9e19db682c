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
