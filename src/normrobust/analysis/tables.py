"""Reading the aggregated tables: ``metrics.csv``, ``history.csv``, ``transfer.csv``, ``costs.csv``,
``derived.csv`` and ``run_info.json`` of a tables directory (default ``results/tables/``, written by the aggregate
step).

:func:`read_table` checks a table's columns and types them; :func:`read_run_info` loads the run's resolved
config and provenance. An absent or unusable file raises :class:`MissingInputError`, naming it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

#: every table's columns (history adds one ``robust_acc_<name>`` column per extra per-epoch attack)
TABLE_COLUMNS: dict[str, list[str]] = {
    "metrics": ["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps", "value"],
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
    "history": ["seed", "epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "ligs_se", "n_test",
                "seconds"],
    "transfer": ["seed", "source_epoch", "success_rate", "error_rate", "n", "n_total"],
    "costs": ["wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"],
    "derived": ["n", "steps", "step", "eps", "source_acc", "target_rate", "label_rate", "rf_rate", "rf_label_rate",
                "nrf_rate", "intended_rate", "seconds"],
}
TABLE_NAMES = tuple(TABLE_COLUMNS)


class MissingInputError(FileNotFoundError):
    """An input table is absent or unusable; the message names the file."""


def table_path(tables_dir: str | os.PathLike, name: str) -> Path:
    return Path(tables_dir) / (name if name.endswith((".csv", ".json")) else f"{name}.csv")


def _numbers(col: pd.Series) -> pd.Series:
    return pd.to_numeric(col.replace({"": None}), errors="coerce")


def read_table(tables_dir: str | os.PathLike, name: str) -> pd.DataFrame:
    """Load ``<tables_dir>/<name>.csv`` (name ∈ metrics, history, transfer, costs, derived) with typed columns.

    Strings are kept verbatim (the norm ``none`` and the attack ``none`` are not NaN); numeric columns are
    parsed with unparsable entries as NaN; ``source_final`` is a boolean.
    """
    path = table_path(tables_dir, name)
    if not path.is_file():
        raise MissingInputError(f"missing input table {path} (it is written by the aggregate step: "
                                f"run `snakemake` (its aggregate rule) first)")
    df = pd.read_csv(path, keep_default_na=False, na_values=[], dtype=str)
    missing = [c for c in TABLE_COLUMNS.get(name, []) if c not in df.columns]
    if missing:
        raise MissingInputError(f"input table {path} lacks column(s) {', '.join(missing)} (written by an older "
                                f"version: rerun the aggregate step)")
    numeric = NUMERIC_COLUMNS.get(name, [])
    if name == "history":  # one robust_acc_<name> column per extra history attack
        numeric = numeric + [c for c in df.columns if c.startswith("robust_acc_")]
    for c in numeric:
        if c in df.columns:
            df[c] = _numbers(df[c])
    if "source_final" in df.columns:
        df["source_final"] = df["source_final"].str.strip().str.lower().isin(["true", "1", "1.0", "yes"])
    for c in ("seed", "epoch"):
        if c in df.columns:
            df = df[df[c].notna()].copy()
            df[c] = df[c].astype(int)
    return df.reset_index(drop=True)


def read_optional(tables_dir: str | os.PathLike, name: str) -> pd.DataFrame | None:
    """A table the report can do without (a run copied from elsewhere may lack costs.csv): None when absent."""
    try:
        return read_table(tables_dir, name)
    except MissingInputError:
        return None


def read_run_info(tables_dir: str | os.PathLike, required: bool = True) -> dict[str, Any]:
    """Load ``run_info.json`` (the resolved config and provenance); an empty dict when absent and not ``required``."""
    path = Path(tables_dir) / "run_info.json"
    if not path.is_file():
        if required:
            raise MissingInputError(f"missing input file {path} (written by the aggregate step)")
        return {}
    with open(path) as f:
        try:
            info = json.load(f)
        except json.JSONDecodeError as e:
            raise MissingInputError(f"input file {path} is not valid JSON: {e}") from e
    return info if isinstance(info, dict) else {}


def run_config(run_info: dict[str, Any]) -> dict[str, Any]:
    """The resolved config a run used (``run_info.json``'s ``config``)."""
    return run_info.get("config") or {}
