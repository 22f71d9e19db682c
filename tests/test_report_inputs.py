"""Report inputs are validated, not coerced: a damaged table (a cell that is not a number, a row without its seed,
an empty, binary or non-JSON file) stops the claims / figure / report commands with one line naming the file, the
line and the column, and leaves what was already computed as it was."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import FIXTURE_TABLES, normrobust_cli
from normrobust.analysis.claims import read_claims
from normrobust.analysis.report import read_preconditions_file
from normrobust.analysis.tables import MissingInputError, TableError, read_optional, read_run_info, read_table

ROOT = Path(__file__).resolve().parents[1]


def _set_cell(path: Path, line: int, column: str, value: str) -> None:
    """Write ``value`` into ``column`` of the row on ``line`` (header = line 1) of the CSV file ``path`` (whose
    records are one line each, as in the fixtures)."""
    with open(path, newline="") as f:
        records = list(csv.reader(f))
    records[line - 1][records[0].index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(records)


def _cell(file: str, line: int, column: str, value: str):
    return lambda d: _set_cell(d / file, line, column, value)


def _keep_header(path: Path) -> None:
    """A table with nothing in it: its header line and no rows."""
    path.write_text(path.read_text().splitlines(keepends=True)[0])


# (damage, the file it names, line, column): line / column None for faults of the whole file
FAULTS = {
    "metrics value abc": (_cell("metrics.csv", 7, "value", "abc"), "metrics.csv", 7, "value"),
    "metrics value nan": (_cell("metrics.csv", 7, "value", "nan"), "metrics.csv", 7, "value"),
    "metrics value inf": (_cell("metrics.csv", 7, "value", "inf"), "metrics.csv", 7, "value"),
    "metrics empty seed": (_cell("metrics.csv", 9, "seed", ""), "metrics.csv", 9, "seed"),
    "metrics seed x": (_cell("metrics.csv", 9, "seed", "x"), "metrics.csv", 9, "seed"),
    "metrics 0 bytes": (lambda d: (d / "metrics.csv").write_bytes(b""), "metrics.csv", None, None),
    "metrics header only": (lambda d: _keep_header(d / "metrics.csv"), "metrics.csv", None, None),
    "history header only": (lambda d: _keep_header(d / "history.csv"), "history.csv", None, None),
    "history binary": (lambda d: (d / "history.csv").write_bytes(bytes(range(256)) * 4), "history.csv", None,
                       None),
    "run_info binary": (lambda d: (d / "run_info.json").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe" + bytes(64)),
                        "run_info.json", None, None),
}


def _check_one_line_error(r: subprocess.CompletedProcess, file: str, line: int | None, column: str | None) -> None:
    assert r.returncode != 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    msg = [ln for ln in r.stderr.splitlines() if "TableError" in ln]
    assert len(msg) == 1, r.stderr
    assert file in msg[0] and "rerun the aggregate step" in msg[0], msg[0]
    if line is not None:
        assert f"line {line}, column {column!r}" in msg[0], msg[0]


@pytest.fixture(scope="module")
def good_claims(tmp_path_factory) -> bytes:
    """The claims file made from the undamaged fixture tables."""
    out = tmp_path_factory.mktemp("good") / "claims.csv"
    r = normrobust_cli("claims", "--tables", str(FIXTURE_TABLES), "--out", str(out), cwd=out.parent)
    assert r.returncode == 0, r.stderr
    return out.read_bytes()


@pytest.mark.parametrize("fault", list(FAULTS))
def test_claims_refuses_a_damaged_table(fault: str, tmp_path: Path, good_claims: bytes) -> None:
    damage, file, line, column = FAULTS[fault]
    tables = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, tables)
    out = tables / "claims.csv"
    out.write_bytes(good_claims)  # computed before the damage
    damage(tables)
    r = normrobust_cli("claims", "--tables", str(tables), "--out", str(out), cwd=tmp_path)
    _check_one_line_error(r, file, line, column)
    assert out.read_bytes() == good_claims  # nothing already computed changed


@pytest.mark.parametrize("fault", ["metrics value abc", "metrics empty seed", "metrics header only",
                                   "history header only", "history binary", "run_info binary"])
def test_report_render_refuses_a_damaged_table(fault: str, tmp_path: Path, good_claims: bytes) -> None:
    damage, file, line, column = FAULTS[fault]
    tables = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, tables)
    claims = tmp_path / "claims.csv"
    claims.write_bytes(good_claims)
    outdir = tmp_path / "generated"
    outdir.mkdir()
    (outdir / "report.tex").write_text("made before\n")
    damage(tables)
    r = normrobust_cli("report", "render", "--tables", str(tables), "--figures", str(tmp_path / "figures"), "--claims",
            str(claims), "--outdir", str(outdir), cwd=tmp_path)
    _check_one_line_error(r, file, line, column)
    assert (outdir / "report.tex").read_text() == "made before\n"
    assert claims.read_bytes() == good_claims


@pytest.mark.parametrize("fault", ["metrics value nan", "metrics header only", "history header only",
                                   "history binary", "run_info binary"])
def test_figure_refuses_a_damaged_table(fault: str, tmp_path: Path) -> None:
    damage, file, line, column = FAULTS[fault]
    tables = tmp_path / "tables"
    shutil.copytree(FIXTURE_TABLES, tables)
    damage(tables)
    name = "robust_vs_eps" if file == "metrics.csv" else "trajectories"
    out = tmp_path / f"{name}.pdf"
    out.write_bytes(b"made before")
    r = normrobust_cli("figure", name, "--tables", str(tables), "--out", str(out), cwd=tmp_path)
    _check_one_line_error(r, file, line, column)
    assert out.read_bytes() == b"made before"


# ------------------------------------------------------------------------------------- read_table itself

def test_fixture_tables_pass_the_check() -> None:
    for name in ("metrics", "history", "transfer"):
        df = read_table(FIXTURE_TABLES, name)
        assert len(df) and df["seed"].dtype == np.int64
    assert read_table(FIXTURE_TABLES, "history")["epoch"].dtype == np.int64
    assert isinstance(read_run_info(FIXTURE_TABLES), dict)


def test_an_empty_numeric_field_is_a_missing_value(tables_dir: Path) -> None:
    _set_cell(tables_dir / "metrics.csv", 5, "se", "")
    _set_cell(tables_dir / "metrics.csv", 6, "value", "")
    m = read_table(tables_dir, "metrics")
    assert len(m) == len(pd.read_csv(FIXTURE_TABLES / "metrics.csv"))  # no row dropped
    assert np.isnan(m["se"].iloc[3]) and np.isnan(m["value"].iloc[4])
    assert m["se"].notna().sum() == len(m) - 1 and m["value"].notna().sum() == len(m) - 1


@pytest.mark.parametrize("column,value", [("seed", ""), ("seed", "x"), ("seed", "1.5"), ("epoch", ""),
                                          ("lr", "1.2.3"), ("ligs", "NaN"), ("clean_acc", "-inf")])
def test_a_bad_cell_names_file_line_and_column(tables_dir: Path, column: str, value: str) -> None:
    _set_cell(tables_dir / "history.csv", 12, column, value)
    with pytest.raises(TableError, match=rf"history\.csv, line 12, column '{column}': '{value}' is not an? "):
        read_table(tables_dir, "history")


def test_the_line_is_the_files_line_despite_blank_lines(tables_dir: Path) -> None:
    p = tables_dir / "metrics.csv"
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines[:3] + ["\n"] + lines[3:]))  # a blank line 4: the old line 6 is now line 7
    _set_cell(p, 7, "eps", "abc")
    with pytest.raises(TableError, match=r"line 7, column 'eps': 'abc'"):
        read_table(tables_dir, "metrics")


@pytest.mark.parametrize("name,content,message", [
    ("metrics.csv", b"", "is empty"),
    ("metrics.csv", b"\n\n", "is empty"),
    ("metrics.csv", b"dataset,arch\x00,norm\n", "binary"),
    ("metrics.csv", b"dataset,\xff\xfe,norm\n", "not UTF-8"),
    ("metrics.csv", b"generated,cnn,none,standard,0,clean_acc,none,0.0,0.7995,500,0.01\n", "has no header"),
    ("run_info.json", b"", "is empty"),
    ("run_info.json", b"\x00\x01\x02", "binary"),
    ("run_info.json", b'{"config": ', "not valid JSON"),
    ("run_info.json", b"[1, 2]", "not a JSON object"),
])
def test_an_unusable_file_is_named(tables_dir: Path, name: str, content: bytes, message: str) -> None:
    (tables_dir / name).write_bytes(content)
    with pytest.raises(TableError, match=message) as e:
        read_run_info(tables_dir) if name == "run_info.json" else read_table(tables_dir, "metrics")
    assert str(tables_dir / name) in str(e.value) and "\n" not in str(e.value)


def test_a_damaged_row_is_named(tables_dir: Path) -> None:
    p = tables_dir / "transfer.csv"
    lines = p.read_text().splitlines(keepends=True)
    width = len(next(csv.reader([lines[0]])))
    lines[4] = ",".join(lines[4].split(",")[:12]) + "\n"  # line 5 truncated
    p.write_text("".join(lines))
    with pytest.raises(TableError, match=rf"transfer\.csv, line 5: 12 field\(s\) where the header has {width}"):
        read_table(tables_dir, "transfer")


def test_a_damaged_optional_table_is_not_taken_for_an_absent_one(tables_dir: Path) -> None:
    (tables_dir / "costs.csv").unlink()
    assert read_optional(tables_dir, "costs") is None  # absent
    (tables_dir / "costs.csv").write_text("rule,target,wall_s,cpu_s,max_rss_mib,peak_gpu_mem_mib\ntrain,a,abc,1,2,\n")
    with pytest.raises(TableError, match=r"costs\.csv, line 2, column 'wall_s': 'abc'"):
        read_optional(tables_dir, "costs")


def test_an_absent_run_info_is_required_or_empty(tables_dir: Path) -> None:
    (tables_dir / "run_info.json").unlink()
    assert read_run_info(tables_dir, required=False) == {}
    with pytest.raises(MissingInputError):
        read_run_info(tables_dir)


def test_claims_file_is_checked(tmp_path: Path, good_claims: bytes) -> None:
    p = tmp_path / "claims.csv"
    p.write_bytes(good_claims)
    _set_cell(p, 2, "ci_low", "-inf")  # an unbounded interval, as the claims step writes one
    _set_cell(p, 2, "ci_high", "inf")
    df = read_claims(p)
    assert len(df) and np.isneginf(df["ci_low"].iloc[0]) and np.isposinf(df["ci_high"].iloc[0])
    _set_cell(p, 3, "mean_diff", "abc")
    with pytest.raises(TableError, match=r"claims\.csv, line 3, column 'mean_diff': 'abc'.*rerun the claims step"):
        read_claims(p)
    p.write_bytes(b"")
    with pytest.raises(TableError, match="claims.csv is empty"):
        read_claims(p)


# ------------------------------------------------------------------------------------- the preconditions table

PRE_HEADER = "claim,precondition,metric,level,mean,ci_low,ci_high,n_seeds,verdict,note\n"
PRE_ROWS = ("E1-bn-clean,generated/resnet/BN/standard learned clean accuracy,clean_acc,0.3,0.57,0.45,0.68,2,PASS,\n"
            "E1-bn-clean,the source fools itself,white_box_rate,0.5,,,,0,INCONCLUSIVE,no white-box success\n"
            "E9-transfer,\"a, quoted\",white_box_rate,0.5,0.6,-inf,inf,2,INCONCLUSIVE,the 95% interval contains 0\n")


def test_preconditions_file_is_read_and_checked(tmp_path: Path) -> None:
    p = tmp_path / "preconditions.csv"
    assert read_preconditions_file(p) is None and read_preconditions_file(None) is None  # absent: none
    p.write_text(PRE_HEADER + PRE_ROWS)
    df = read_preconditions_file(p)
    assert list(df["verdict"]) == ["PASS", "INCONCLUSIVE", "INCONCLUSIVE"] and df["precondition"].iloc[2] == "a, quoted"
    assert np.isnan(df["mean"].iloc[1]) and df["note"].iloc[0] == "" and np.isinf(df["ci_high"].iloc[2])
    p.write_text(PRE_HEADER)
    assert read_preconditions_file(p).empty  # a header only: no claim names a precondition
    for content, message in [
        (PRE_HEADER + PRE_ROWS.replace("0.57", "abc"), r"preconditions\.csv, line 2, column 'mean': 'abc' is not a"),
        (PRE_HEADER + PRE_ROWS.replace(",PASS,", ",MAYBE,"), r"preconditions\.csv, line 2, column 'verdict': 'MAYBE'"),
        (PRE_HEADER.replace(",level", ",lvl") + PRE_ROWS, r"preconditions\.csv, line 1: no column\(s\) level"),
        (PRE_HEADER + PRE_ROWS.replace(",2,PASS,", ",PASS,"), r"preconditions\.csv, line 2: 9 field\(s\)"),
        ("", "preconditions.csv is empty"),
    ]:
        p.write_text(content)
        with pytest.raises(TableError, match=message) as e:
            read_preconditions_file(p)
        assert "\n" not in str(e.value) and "rerun the claims step" in str(e.value)


def test_report_render_refuses_a_damaged_preconditions_file(tmp_path: Path, good_claims: bytes) -> None:
    claims = tmp_path / "claims.csv"
    claims.write_bytes(good_claims)
    pre = tmp_path / "preconditions.csv"  # beside --claims: the default
    pre.write_text(PRE_HEADER + PRE_ROWS.replace("0.68", "0.6.8"))
    outdir = tmp_path / "generated"
    outdir.mkdir()
    (outdir / "report.tex").write_text("made before\n")
    r = normrobust_cli("report", "render", "--tables", str(FIXTURE_TABLES), "--figures", str(tmp_path / "figures"),
                       "--claims", str(claims), "--outdir", str(outdir), cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    msg = [ln for ln in r.stderr.splitlines() if "TableError" in ln]
    assert len(msg) == 1 and str(pre) in msg[0] and "line 2, column 'ci_high': '0.6.8'" in msg[0], r.stderr
    assert (outdir / "report.tex").read_text() == "made before\n"
