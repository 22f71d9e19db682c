"""Figures built from the small synthetic tables in tests/fixtures/tables."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normrobust import claims as C
from normrobust import figures as F
from normrobust import tables as T

from conftest import FIXTURE_TABLES as FIXTURES, is_pdf as _is_pdf  # noqa: F401

# ------------------------------------------------------------------------------------------ figures

@pytest.mark.parametrize("name", sorted(F.FIGURES))
def test_figure_builds_valid_pdf(figures_dir: Path, name: str) -> None:
    assert _is_pdf(figures_dir / f"{name}.pdf")


def test_figure_cli_and_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(a)]) == 0
    assert F.main(["ligs_per_norm", "--tables", str(FIXTURES), "--out", str(b)]) == 0
    assert _is_pdf(a)
    assert a.read_bytes() == b.read_bytes()
    assert b"CreationDate" not in a.read_bytes()


@pytest.mark.parametrize("name,table", [("trajectories", "history"), ("robust_vs_eps", "metrics"),
                                        ("transfer_heatmap", "transfer")])
def test_figure_missing_csv_names_the_file(tables_dir: Path, tmp_path: Path, capsys, name: str,
                                           table: str) -> None:
    (tables_dir / f"{table}.csv").unlink()
    out = tmp_path / "x.pdf"
    assert F.main([name, "--tables", str(tables_dir), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert f"{table}.csv" in err and "missing" in err
    assert not out.exists()
    with pytest.raises(T.MissingInputError, match=re.escape(str(tables_dir / f"{table}.csv"))):
        F.build_figure(name, tables_dir, out)


def test_figures_survive_missing_metrics_and_regimes(tables_dir: Path, tmp_path: Path) -> None:
    m = pd.read_csv(tables_dir / "metrics.csv")
    m = m[~m["metric"].isin(["nrf_reliance", "rf_only_acc", "nrf_only_acc", "ligs"])]
    m = m[~((m["regime"] == "pgd_linf") | (m["attack"] == "pgd_l2"))]
    m.to_csv(tables_dir / "metrics.csv", index=False)
    h = pd.read_csv(tables_dir / "history.csv")
    h = h[h["regime"] == "standard"].assign(ligs=np.nan)
    h.to_csv(tables_dir / "history.csv", index=False)
    pd.read_csv(tables_dir / "transfer.csv").iloc[0:0].to_csv(tables_dir / "transfer.csv", index=False)
    for name in F.FIGURES:
        out = tmp_path / f"{name}.pdf"
        F.build_figure(name, tables_dir, out)
        assert _is_pdf(out), name


def test_figure_without_run_info(tables_dir: Path, tmp_path: Path) -> None:
    (tables_dir / "run_info.json").unlink()
    out = tmp_path / "t.pdf"
    F.build_figure("trajectories", tables_dir, out)
    assert _is_pdf(out)
