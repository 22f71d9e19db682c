"""Reading the aggregated tables: ``metrics.csv``, ``images.csv``, ``history.csv``, ``transfer.csv``, ``costs.csv``,
``derived.csv`` and ``run_info.json`` of a tables directory (default ``results/tables/``, written by the aggregate
step). ``images.csv`` and transfer.csv's ``images`` / ``white_box_images`` hold per-image outcomes as text
(normrobust.perimage): each is decoded on reading, so a damaged one is named with its file, line and column.

:func:`read_table` checks a table's columns and types them; :func:`read_run_info` loads the run's resolved
config and provenance. An absent file (or a table lacking columns) raises :class:`MissingInputError`; an empty,
binary or damaged one, or a cell that is not a number, raises :class:`TableError` (one line: the file, line, column
and bad value, and how to remake the file).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..layout import Layout
from ..perimage import decode

#: every table's columns (history adds one ``robust_acc_<name>`` column per extra per-epoch attack)
TABLE_COLUMNS: dict[str, list[str]] = {
    "metrics": ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps", "value"],
    "images": ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps", "n", "values"],
    "history": ["dataset", "arch", "norm", "regime", "seed", "epoch", "lr", "train_loss", "clean_acc",
                "robust_acc", "ligs", "seconds"],
    "transfer": ["study", "dataset", "seed", "source_arch", "source_norm", "source_regime", "source_epoch",
                 "source_final", "target_arch", "target_norm", "target_regime", "success_rate", "error_rate", "n",
                 "n_total"],
    "costs": ["rule", "target", "wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"],
    "derived": ["name", "method", "base", "source", "n", "target_rate", "intended", "intended_rate"],
}
#: numeric columns (parsed where present: metrics' n / se and history's ligs_se / n_test are absent from tables
#: of older versions, whose claims then have no test-sampling floor and say so)
NUMERIC_COLUMNS: dict[str, list[str]] = {
    "metrics": ["seed", "eps", "value", "n", "se"],
    "images": ["seed", "eps", "n"],
    "history": ["seed", "epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "ligs_se", "n_test",
                "seconds"],
    "transfer": ["seed", "source_epoch", "success_rate", "error_rate", "n", "n_total", "white_box_rate",
                 "white_box_n", "rf_success_rate", "nrf_success_rate"],
    "costs": ["wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"],
    "derived": ["n", "steps", "step", "eps", "source_acc", "target_rate", "label_rate", "rf_rate", "rf_label_rate",
                "nrf_rate", "intended_rate", "reader_robust_rate", "reader_standard_rate", "seconds"],
}


class MissingInputError(FileNotFoundError):
    """An input table is absent or unusable; the message names the file."""


class TableError(ValueError):
    """An input file is there but its content is not what the step that writes it writes: empty, binary, not CSV
    (or JSON), a damaged row or a cell that is not a number. The message (one line) names the file, the line and
    the column, and says how to remake the file. Not a :class:`MissingInputError`: a damaged optional table is an
    error, never taken for an absent one."""


#: integer columns: a value must be present (a row without its seed or epoch is an error, never dropped)
INTEGER_COLUMNS = ("seed", "epoch")
#: tables the aggregate step never writes without rows (every run evaluates and trains a cell): one with a header and
#: nothing under it is a damaged or hand-edited file, never "no results" (figures and claims would read it as such)
NEVER_EMPTY = ("metrics", "history")
#: per-image columns (normrobust.perimage text; empty: not recorded) → the column holding their number of images
PER_IMAGE_COLUMNS: dict[str, dict[str, str]] = {
    "images": {"values": "n"},
    "transfer": {"images": "n_total", "white_box_images": "n_total", "rf_images": "n_total", "nrf_images": "n_total"},
}
_SHOWN = 40  # at most this many characters of a bad value go into a message


def table_path(tables_dir: str | os.PathLike, name: str) -> Path:
    return Path(tables_dir) / (name if name.endswith((".csv", ".json")) else f"{name}.csv")


def remake_hint(path: str | os.PathLike, step: str = "aggregate") -> str:
    """What to do about a damaged file ``path`` the ``step`` step writes (as ``results/tables/<file name>``)."""
    return f"fix or delete the file and rerun the {step} step: snakemake {Layout().tables_dir}/{Path(path).name}"


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN - 3] + "...")


def _read_text(path: Path, what: str, hint: str) -> str:
    """The file's text (UTF-8); a :class:`TableError` when it is empty, binary or not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TableError(f"{what} {path} cannot be read ({e.strerror or e}); {hint}") from e
    if not raw.strip():
        size = "0 bytes" if not raw else "only blank lines"
        raise TableError(f"{what} {path} is empty ({size}); {hint}")
    if b"\0" in raw:
        line = raw[:raw.index(b"\0")].count(b"\n") + 1
        raise TableError(f"{what} {path} is a binary file, not text (a NUL byte on line {line}); {hint}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise TableError(f"{what} {path} is not UTF-8 text (byte {raw[e.start]:#04x} on line {line}: a binary or "
                         f"damaged file); {hint}") from e


def _record_lines(text: str) -> list[int]:
    """The line (1-based) each CSV record of ``text`` starts on (blank lines included, as empty records); only for
    error messages (a quoted field may span lines)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    starts, end = [], 0
    for _ in reader:
        starts.append(end + 1)
        end = reader.line_num
    return starts


class _Csv:
    """A parsed CSV file: ``frame`` (every cell a string, as written) and the line of each of its rows."""

    def __init__(self, path: Path, what: str, hint: str):
        self.path, self.what, self.hint = path, what, hint
        self.text = _read_text(path, what, hint)
        reader = csv.reader(io.StringIO(self.text, newline=""))
        try:
            records = list(reader)
        except csv.Error as e:
            raise TableError(f"{what} {path} cannot be parsed as CSV (line {reader.line_num}: {e}); {hint}") from e
        lengths = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
        self.kept = np.flatnonzero(lengths > 0)  # blank lines are skipped (as pandas does)
        if not len(self.kept):
            raise TableError(f"{what} {path} is empty (only blank lines); {hint}")
        header = records[self.kept[0]]
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            raise TableError(f"{what} {path} has no header, or a damaged one (line {self.line_of_record(0)} repeats "
                             f"column(s) {', '.join(map(repr, dup))}); {hint}")
        wrong = np.flatnonzero(lengths[self.kept] != len(header))
        if len(wrong):
            k = int(wrong[0])
            raise TableError(f"{what} {path}, line {self.line_of_record(k)}: {lengths[self.kept[k]]} field(s) where "
                             f"the header has {len(header)} (a damaged or truncated row"
                             f"{f'; {len(wrong)} such rows in all' if len(wrong) > 1 else ''}); {hint}")
        self.frame = pd.DataFrame([records[i] for i in self.kept[1:]], columns=header, dtype=str)

    def line_of_record(self, k: int) -> int:
        """The line the ``k``-th non-blank record (0: the header) starts on."""
        return _record_lines(self.text)[int(self.kept[k])]

    def line_of_row(self, row: int) -> int:
        """The line data row ``row`` (0-based) starts on: the header is line 1, the first row line 2."""
        return self.line_of_record(row + 1)

    def numbers(self, columns: list[str], integer: tuple[str, ...] = (), missing: tuple[str, ...] = ("",),
                allow_inf: bool = False) -> pd.DataFrame:
        """``frame`` with ``columns`` (those present) parsed as numbers: a field in ``missing`` (after stripping
        blanks) is NaN, except in an ``integer`` column, whose every field must be an integer; anything else that is
        not a finite number (±inf too where ``allow_inf``) raises :class:`TableError` naming the first bad cell."""
        df = self.frame
        first: tuple[int, int, str, str, str] | None = None  # (row, column position, column, what is wrong, note)
        n_bad = 0
        for pos, c in enumerate(df.columns):
            if c not in columns:
                continue
            text = df[c].str.strip()
            absent = text.isin(list(missing))
            num = pd.to_numeric(text.mask(absent), errors="coerce")
            value = num.astype("float64")
            ok = value.notna() if allow_inf else pd.Series(np.isfinite(value.to_numpy()), index=df.index)
            if c in integer:
                ok &= (value == np.round(value)) & (value.abs() < 2.0**62)  # a whole number that fits an int64
                bad = ~ok
                why, note = "is not an integer", f"every row needs its {c}"
            else:
                bad = ~absent & ~ok
                why, note = f"is not a {'' if allow_inf else 'finite '}number", "an empty field marks a missing value"
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                n_bad += int(bad.sum())
                if first is None or (row, pos) < first[:2]:
                    first = (row, pos, c, why, note)
                continue
            df[c] = value.astype("int64") if c in integer else num
        if first is not None:
            row, _, c, why, note = first
            more = f"; {n_bad} bad cells in all" if n_bad > 1 else ""
            raise TableError(f"{self.what} {self.path}, line {self.line_of_row(row)}, column {c!r}: "
                             f"{_shown(self.frame[c].iloc[row])} {why} ({note}{more}); {self.hint}")
        return df


def read_csv_checked(path: str | os.PathLike, what: str, hint: str) -> _Csv:
    """Parse the CSV file ``path`` (cells kept as strings) or raise a one-line :class:`TableError` naming it;
    ``what`` names the kind of file in messages (e.g. "input table"), ``hint`` says how to remake it."""
    return _Csv(Path(path), what, hint)


def read_table(tables_dir: str | os.PathLike, name: str) -> pd.DataFrame:
    """Load ``<tables_dir>/<name>.csv`` (name ∈ metrics, images, history, transfer, costs, derived) with typed columns.

    Strings are kept verbatim (the norm ``none`` and the attack ``none`` are not NaN); numeric columns are
    parsed, an empty field (a missing value) as NaN; ``seed`` and ``epoch`` are integers in every row;
    ``source_final`` is a boolean. An absent file, or one lacking columns (an older version's), raises
    :class:`MissingInputError`; an empty, binary or damaged file, a cell that is not a finite number (an
    integer in ``seed`` / ``epoch``, and images.csv's ``n``), or a per-image field that does not decode to its
    number of images, raises :class:`TableError` naming the file, line and column.
    """
    path = table_path(tables_dir, name)
    if not path.is_file():
        raise MissingInputError(f"missing input table {path} (it is written by the aggregate step: "
                                f"run `snakemake` (its aggregate rule) first)")
    hint = remake_hint(path)
    table = read_csv_checked(path, "input table", hint)
    df = table.frame
    expected = TABLE_COLUMNS.get(name, [])
    missing = [c for c in expected if c not in df.columns]
    if expected and len(missing) == len(expected):
        first = ",".join(df.columns)
        raise TableError(f"input table {path} has no header (line {table.line_of_record(0)} is "
                         f"{_shown(first)}, not the columns {','.join(expected[:3])},...); {hint}")
    if missing:
        raise MissingInputError(f"input table {path} lacks column(s) {', '.join(missing)} (written by an older "
                                f"version: rerun the aggregate step)")
    if name in NEVER_EMPTY and df.empty:
        raise TableError(f"input table {path} has a header but no rows (the aggregate step never writes it so: a "
                         f"damaged or truncated file); {hint}")
    numeric = NUMERIC_COLUMNS.get(name, [])
    if name == "history":  # one robust_acc_<name> column per extra history attack
        numeric = numeric + [c for c in df.columns if c.startswith("robust_acc_")]
    df = table.numbers(numeric, integer=INTEGER_COLUMNS + (("n",) if name == "images" else ()))
    _check_per_image(table, df, PER_IMAGE_COLUMNS.get(name, {}))
    if "source_final" in df.columns:
        df["source_final"] = df["source_final"].str.strip().str.lower().isin(["true", "1", "1.0", "yes"])
    return df.reset_index(drop=True)


def _check_per_image(table: _Csv, df: pd.DataFrame, columns: dict[str, str]) -> None:
    """Every non-empty per-image field decodes to its row's number of images, else a :class:`TableError` naming the
    first bad one (file, line, column)."""
    for col, n_col in columns.items():
        if col not in df.columns:
            continue
        text = df[col].fillna("").astype(str).str.strip()
        for row in np.flatnonzero((text != "").to_numpy()):
            n = df[n_col].iloc[row] if n_col in df.columns else np.nan
            try:
                if not (np.isfinite(float(n)) and float(n) >= 1):
                    raise ValueError(f"no number of images in {n_col!r}")
                decode(text.iloc[row], int(n))
            except ValueError as e:
                raise TableError(f"{table.what} {table.path}, line {table.line_of_row(int(row))}, column {col!r}: "
                                 f"{_shown(text.iloc[row])} is not per-image values ({e}); {table.hint}") from None


def read_optional(tables_dir: str | os.PathLike, name: str) -> pd.DataFrame | None:
    """A table the report can do without (a run copied from elsewhere may lack costs.csv): None when absent (or
    written by an older version); a damaged one still raises :class:`TableError`."""
    try:
        return read_table(tables_dir, name)
    except MissingInputError:
        return None


def read_run_info(tables_dir: str | os.PathLike, required: bool = True) -> dict[str, Any]:
    """Load ``run_info.json`` (the resolved config and provenance); an empty dict when absent and not ``required``.
    An empty, binary or invalid file, or one that is not a JSON object, raises :class:`TableError` naming it."""
    path = Path(tables_dir) / "run_info.json"
    if not path.is_file():
        if required:
            raise MissingInputError(f"missing input file {path} (written by the aggregate step)")
        return {}
    hint = remake_hint(path)
    text = _read_text(path, "input file", hint)
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise TableError(f"input file {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                         f"{hint}") from e
    except RecursionError as e:
        raise TableError(f"input file {path} is not valid JSON (nested too deeply); {hint}") from e
    if not isinstance(info, dict):
        raise TableError(f"input file {path} is not a JSON object (it holds a {type(info).__name__}); {hint}")
    return info
