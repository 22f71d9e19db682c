"""The figure step: one command per figure of a study, from the tables only; deterministic; notes, not crashes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, figure_values, is_pdf, read_csv
from normrobust import figures
from normrobust.analysis.plotting import NO_DATA
from normrobust.analysis.selection import spearman
from normrobust.analysis.tables import NEVER_EMPTY, MissingInputError, TableError
from normrobust.studies import figure_studies

FIGURE_STUDY = figure_studies()


@pytest.mark.parametrize("name", list(FIGURE_STUDY))
def test_figure_builds_from_hand_built_tables_deterministically(mini: Path, tmp_path: Path, name: str) -> None:
    a, b = tmp_path / "a.pdf", tmp_path / "b.pdf"
    assert figures.main([name, "--tables", str(mini), "--out", str(a)]) == 0
    figures.build_figure(name, mini, b)
    assert is_pdf(a) and a.read_bytes() == b.read_bytes() and b"CreationDate" not in a.read_bytes()
    _, _, text, _ = figure_values(name, mini)
    assert NO_DATA not in text, f"{name}: the hand-built tables have every study"


@pytest.mark.parametrize("name,table", [(n, t) for n, m in FIGURE_STUDY.items() for t in m.FIGURES[n].tables])
def test_figure_missing_csv_names_the_file(tables_dir: Path, tmp_path: Path, capsys, name: str, table: str) -> None:
    (tables_dir / f"{table}.csv").unlink()
    out = tmp_path / "x.pdf"
    assert figures.main([name, "--tables", str(tables_dir), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert f"{table}.csv" in err and "missing" in err
    assert not out.exists()
    with pytest.raises(MissingInputError, match=re.escape(str(tables_dir / f"{table}.csv"))):
        figures.build_figure(name, tables_dir, out)


def test_figures_survive_missing_metrics_and_regimes(tables_dir: Path, tmp_path: Path) -> None:
    m = pd.read_csv(tables_dir / "metrics.csv")
    m = m[~m["metric"].isin(["nrf_reliance", "rf_only_acc", "nrf_only_acc", "ligs"])]
    m = m[~((m["regime"] == "pgd_linf") | (m["attack"] == "pgd_l2"))]
    m.to_csv(tables_dir / "metrics.csv", index=False)
    h = pd.read_csv(tables_dir / "history.csv")
    h[h["regime"] == "standard"].assign(ligs=np.nan).to_csv(tables_dir / "history.csv", index=False)
    pd.read_csv(tables_dir / "transfer.csv").iloc[0:0].to_csv(tables_dir / "transfer.csv", index=False)
    for name in FIGURE_STUDY:
        out = tmp_path / f"{name}.pdf"
        figures.build_figure(name, tables_dir, out)
        assert is_pdf(out), name


def test_figure_without_run_info_says_no_data(tables_dir: Path, tmp_path: Path) -> None:
    (tables_dir / "run_info.json").unlink()
    for name in FIGURE_STUDY:
        out = tmp_path / f"{name}.pdf"
        figures.build_figure(name, tables_dir, out)
        assert is_pdf(out), name
        assert NO_DATA in figure_values(name, tables_dir)[2], name


@pytest.mark.parametrize("name", list(FIGURE_STUDY))
def test_figure_with_an_empty_transfer_table_says_no_data(mini: Path, tmp_path: Path, name: str) -> None:
    """A run without transfer jobs writes transfer.csv with its header only: the transfer figures say so."""
    read_csv(mini, "transfer").iloc[0:0].to_csv(mini / "transfer.csv", index=False)
    _, _, text, _ = figure_values(name, mini)
    if name.startswith("transfer_"):
        assert NO_DATA in text
    figures.build_figure(name, mini, tmp_path / "x.pdf")
    assert is_pdf(tmp_path / "x.pdf")


@pytest.mark.parametrize("table", NEVER_EMPTY)
def test_a_header_only_metrics_or_history_table_is_refused(mini: Path, tmp_path: Path, table: str) -> None:
    """aggregate never writes metrics.csv or history.csv without rows: such a file is damaged, and a figure that
    reads it stops with one line naming the file instead of drawing "no data"."""
    read_csv(mini, table).iloc[0:0].to_csv(mini / f"{table}.csv", index=False)
    readers = [n for n, m in FIGURE_STUDY.items() if table in m.FIGURES[n].tables]
    assert readers
    for name in readers:
        with pytest.raises(TableError, match=re.escape(str(mini / f"{table}.csv"))):
            figures.build_figure(name, mini, tmp_path / f"{name}.pdf")
        assert not (tmp_path / f"{name}.pdf").exists()


def test_figures_whose_study_rows_are_absent_say_no_data(tables_dir: Path) -> None:
    """The fixture tables without the rows of E3, E4, E10 and E9's transfer: notes, no crash."""
    m = read_csv(tables_dir, "metrics")
    m[~m["dataset"].str.startswith("d_") & ~m["arch"].isin(["softmax", "maxout"])].to_csv(tables_dir / "metrics.csv",
                                                                                       index=False)
    t = read_csv(tables_dir, "transfer")
    t[t["study"] != "e9_transfer"].to_csv(tables_dir / "transfer.csv", index=False)
    for name in ("disentangled", "conflict", "fgsm", "transfer_sources", "transfer_heatmap"):
        assert NO_DATA in figure_values(name, tables_dir)[2], name


def test_a_study_missing_from_the_config_draws_a_note(tables_dir: Path) -> None:
    info = json.loads((tables_dir / "run_info.json").read_text())
    info["config"]["studies"].pop("e6_factors")
    (tables_dir / "run_info.json").write_text(json.dumps(info))
    _, _, text, _ = figure_values("factors", tables_dir)
    assert NO_DATA in text and "e6_factors" in text


def test_dataset_and_arch_options_narrow_the_study(mini: Path) -> None:
    bars, _, _, _ = figure_values("disentangled", mini, dataset=["d_r"])
    assert bars and all("|d_r|" in k for k in bars)


def test_spearman_helper() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(spearman([1, 2], [1, 2]))


def test_code_fingerprint_follows_the_figure_and_its_helpers_only(monkeypatch) -> None:
    """The workflow redraws a figure when its code changes: its draw function, or a function of its study module
    it calls; not when another figure of the same module changes."""
    before = {n: figures.code_fingerprint(n) for n in FIGURE_STUDY}
    e1 = FIGURE_STUDY["robust_vs_eps"]
    monkeypatch.setattr("inspect.getsource", _edited(e1.fig_robust_vs_eps))
    after = {n: figures.code_fingerprint(n) for n in FIGURE_STUDY}
    assert [n for n in FIGURE_STUDY if before[n] != after[n]] == ["robust_vs_eps"]
    e6 = FIGURE_STUDY["factors"]
    monkeypatch.setattr("inspect.getsource", _edited(e6.variants))  # a helper the figure calls
    assert figures.code_fingerprint("factors") != before["factors"]


def _edited(target):
    import inspect

    real = inspect.getsource

    def getsource(obj):
        return real(obj) + ("\n# edited" if obj is target else "")
    return getsource


def test_figures_on_the_fixtures_have_data() -> None:
    for name in FIGURE_STUDY:
        assert NO_DATA not in figure_values(name, FIXTURE_TABLES)[2], name
