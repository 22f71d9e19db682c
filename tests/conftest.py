import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

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

def _fixture_tables() -> Path:
    """The tables of config.yaml, made by code once per test session (tests/fixture_tables.py): every study the
    config runs, every row the pipeline writes, random values."""
    import tempfile

    from fixture_tables import load_config, make_tables

    return make_tables(Path(tempfile.mkdtemp(prefix="normrobust-fixture-")) / "tables", load_config())


FIXTURE_TABLES = _fixture_tables()


def copy_tables_of_config(dest: Path, *configfiles: Path) -> Path:
    """The tables of the config the workflow resolves from config.yaml and ``configfiles`` (merged in order, as
    ``--configfile`` does), made by code into ``dest`` (run_info.json records that config): the tables-only mode
    builds figures and the report only from tables the current config made."""
    from fixture_tables import load_config, make_tables

    return make_tables(dest, load_config(*configfiles))


@pytest.fixture()
def tables_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture tables (tests may edit or delete files)."""
    import shutil

    d = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, d)
    return d


@pytest.fixture(scope="session")
def figures_dir(tmp_path_factory) -> Path:
    """Every figure built once from the fixture tables."""
    from normrobust.figures import build_figure
    from normrobust.studies import figure_studies

    d = tmp_path_factory.mktemp("figures")
    for name in figure_studies():
        build_figure(name, FIXTURE_TABLES, d / f"{name}.pdf")
    return d


def make_claims_csv(tables: Path, out: Path | None = None) -> Path:
    """The claims step run on ``tables`` (as the workflow's claims rule runs it): its claims.csv, written to ``out``
    (default: TABLES/claims.csv). The report reads this file; it never evaluates the claims itself."""
    from normrobust import claims as claims_cli

    out = Path(out) if out is not None else Path(tables) / "claims.csv"
    assert claims_cli.main(["--tables", str(tables), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def fixture_claims(tmp_path_factory) -> Path:
    """claims.csv of the fixture tables, made once per session by the claims step."""
    return make_claims_csv(FIXTURE_TABLES, tmp_path_factory.mktemp("claims") / "claims.csv")


@pytest.fixture()
def mini(tmp_path: Path) -> Path:
    """Hand-built tables with every study (tests/mini_tables.py)."""
    from mini_tables import mini_tables

    return mini_tables(tmp_path / "mini")


def is_pdf(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-64:] and len(data) > 2000


# ------------------------------------------------------------ reading figures back

def figure_values(name: str, tables: Path, **kw):
    """(bars: gid → height, lines: gid → (x, y), texts, figure) of a figure drawn from ``tables``."""
    import matplotlib.pyplot as plt

    from normrobust.figures import make_figure

    fig = make_figure(name, tables, **kw)
    try:
        bars = {p.get_gid(): float(p.get_height()) for ax in fig.axes for p in ax.patches if p.get_gid()}
        lines = {ln.get_gid(): (np.asarray(ln.get_xdata(), float), np.asarray(ln.get_ydata(), float))
                 for ax in fig.axes for ln in ax.get_lines() if ln.get_gid()}
        texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
        texts += [t.get_text() for ax in fig.axes for t in ax.get_xticklabels()]
        return bars, lines, "\n".join(texts), fig
    finally:
        plt.close(fig)


def read_csv(tables: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(tables / f"{name}.csv", keep_default_na=False, na_values=[""])


def seed_mean(df: pd.DataFrame, value: str = "value", **conds) -> float:
    """Mean over seeds of the rows matching ``conds`` (each seed once)."""
    for k, v in conds.items():
        df = df[np.isclose(df[k], v)] if k == "eps" else df[df[k] == v]
    assert len(df), conds
    return float(df.groupby("seed")[value].mean().mean())


def metrics_frame(rows: list[tuple]) -> pd.DataFrame:
    """A metrics table from rows of (dataset, arch, norm, regime, seed, metric, attack, eps, value)."""
    cols = ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps", "value"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows], columns=cols)


def run_info(studies: dict, **config) -> dict:
    """A run_info dict whose config has these studies (and the default headline)."""
    cfg = {"evaluation": {"headline": {"attack": "pgd_linf", "eps": 4},
                          "attacks": {"pgd_linf": {"type": "pgd", "norm": "linf", "eps": [4]},
                                      "fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [2, 8]}}},
           "studies": studies, "seeds": [0, 1]}
    cfg.update(config)
    return {"config": cfg}


def study_claims(key: str, info: dict, **frames) -> pd.DataFrame:
    """The claims table of one study of ``info`` measured on ``frames`` (metrics=..., history=..., transfer=...)."""
    from normrobust.analysis.claims import evaluate
    from normrobust.analysis.study_view import StudyView
    from normrobust.studies import analysis

    return evaluate(analysis(key).claims(StudyView.of(info, key)), frames)


def claim_row(df: pd.DataFrame, cid: str) -> pd.Series:
    hit = df[df["id"] == cid]
    assert len(hit) == 1, (cid, list(df["id"]))
    return hit.iloc[0]


def copy_checkout(dest: Path) -> Path:
    """A copy of this checkout's code (no .venv, results or caches), to edit in a test; run its code with
    PYTHONPATH=<copy>/src (that wins over the editable install)."""
    import shutil

    ignore = shutil.ignore_patterns(".git", ".venv", "results", ".snakemake", "__pycache__", "*.egg-info",
                                    "generated", ".pytest_cache")
    for name in ("src", "workflow", "paper", "Snakefile", "config.yaml"):
        src = ROOT / name
        if src.is_dir():  # links kept: src/normrobust/resources/ links into the copy's own paper/ and workflow/
            shutil.copytree(src, dest / name, ignore=ignore, symlinks=True)
        else:
            shutil.copy2(src, dest / name)
    (dest / "profiles").symlink_to("workflow/profiles")
    return dest


def cli_env(**extra: str) -> dict:
    """The environment of a ``python -m normrobust`` child: this checkout's code, no debug tracebacks, ``extra``."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), **extra}
    env.pop("NORMROBUST_DEBUG", None)
    return env


def normrobust_cli(*args: str, cwd: Path | None = None, env: dict | None = None, stderr=None, timeout: int = 900):
    """``python -m normrobust <args>`` in a child process (stdout and, unless ``stderr`` is given, stderr captured
    as text)."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "normrobust", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE if stderr is None else stderr, text=True, cwd=cwd,
                          env=env or cli_env(), timeout=timeout)


def snakemake_in(repo: Path, workdir: Path, *args: str, timeout: int = 600):
    """Snakemake on a copied checkout (its Snakefile, its code for the jobs too)."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(repo / "Snakefile"), "-d", str(workdir),
           "--cores", "2"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
