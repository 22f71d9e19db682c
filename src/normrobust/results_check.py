"""Per-cell result files read by the aggregate step, checked for internal consistency before use.

A ``metrics.json``, ``history.csv`` or ``transfer.json`` that is damaged (not JSON / CSV, truncated), of another cell
than its place in the results layout names, or whose numbers cannot be what the job writes (a rate outside [0, 1], a
negative count, per-image values that do not decode to their number of images, epochs out of order) stops the
aggregate step with one line naming the file, what is wrong and what to do; nothing is written (the tables of an
earlier aggregate stay as they were).
"""

from __future__ import annotations

import json
import math
from numbers import Real
from pathlib import Path
from typing import Any

from .layout import cell_of
from .perimage import decode

#: metrics whose value is a fraction of images (a rate or an accuracy)
_RATE_WORDS = ("_acc", "_rate", "nrf_reliance")


class ResultFileError(ValueError):
    """A per-cell result file is damaged or not what its job writes; the message names it."""


def _bad(path: str | Path, what: str) -> ResultFileError:
    return ResultFileError(f"{path}: {what}; delete it and rerun snakemake to remake it")


def _load(path: str | Path) -> Any:
    try:
        text = Path(path).read_text()
    except UnicodeDecodeError:
        raise _bad(path, "is a binary file, not the JSON the job writes") from None
    if not text.strip():
        raise _bad(path, "is empty (0 bytes of JSON)")
    try:
        return json.loads(text)
    except ValueError as e:
        raise _bad(path, f"is not valid JSON (a damaged or truncated file: {e})") from None


def _number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def _check_cell(path: str | Path, found: Any, what: str) -> None:
    try:
        expected = cell_of(path)
    except ValueError:
        return  # a file outside the layout (a test, a copy): no place to compare with
    keys = ("dataset", "arch", "norm", "regime", "seed")
    if not isinstance(found, dict) or any(str(found.get(k)) != str(getattr(expected, k)) for k in keys):
        raise _bad(path, f"holds the {what} of {found!r}, not of the cell its place names ({expected.path})")


def _check_rate(path, where: str, value: Any) -> None:
    if value is None or (_number(value) and math.isnan(value)):
        return
    if not _number(value) or not 0.0 <= float(value) <= 1.0:
        raise _bad(path, f"{where} is {value!r}, not a fraction in [0, 1]")


def _check_images(path, where: str, entry: Any) -> None:
    try:
        decode(entry["values"], int(entry["n"]))
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(path, f"{where}: its per-image values do not decode ({e})") from None


def read_metrics(path: str | Path) -> dict:
    """A ``metrics.json`` (evaluate / evaluate-autoattack), checked."""
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
        raise _bad(path, "has no rows (not the metrics file the evaluation writes)")
    _check_cell(path, doc.get("cell"), "metrics")
    for i, r in enumerate(doc["rows"]):
        where = f"row {i + 1}"
        if not isinstance(r, dict) or not all(k in r for k in ("metric", "attack", "eps", "value", "n")):
            raise _bad(path, f"{where} lacks one of metric, attack, eps, value, n")
        if not _number(r["n"]) or r["n"] < 0:
            raise _bad(path, f"{where} ({r['metric']}): n is {r['n']!r}, not a count of images")
        if any(w in str(r["metric"]) for w in _RATE_WORDS):
            _check_rate(path, f"{where} ({r['metric']})", r["value"])
    images = doc.get("images")
    if images is not None:
        if not isinstance(images, list) or len(images) != len(doc["rows"]):
            raise _bad(path, f"has {len(images) if isinstance(images, list) else 'no list of'} per-image entries "
                             f"for {len(doc['rows'])} rows")
        for i, e in enumerate(images):
            _check_images(path, f"per-image entry {i + 1}", e)
    return doc


def read_transfer(path: str | Path) -> dict:
    """A ``transfer.json``, checked."""
    doc = _load(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise _bad(path, "has no rows (not the transfer file the transfer job writes)")
    _check_cell(path, doc.get("source"), "transfer results")
    for i, r in enumerate(doc["rows"]):
        where = f"row {i + 1}"
        if not isinstance(r, dict) or not isinstance(r.get("target"), dict) or "success_rate" not in r:
            raise _bad(path, f"{where} lacks its target or its success_rate")
        for k in ("success_rate", "error_rate", "rf_success_rate", "nrf_success_rate"):
            _check_rate(path, f"{where} ({k})", r.get(k))
        if "images" in r:
            _check_images(path, f"{where}", {"values": r["images"], "n": r.get("n_total")})
    return doc


def read_record(path: str | Path) -> dict:
    """A derived dataset's record (``results/data/<name>.json``), checked to be the JSON object derive-data writes."""
    doc = _load(path)
    if not isinstance(doc, dict) or "name" not in doc:
        raise _bad(path, "is not the record derive-data writes (no name)")
    return doc


def read_history(path: str | Path):
    """A ``history.csv``, checked: its columns, epochs increasing one by one, accuracies in [0, 1]."""
    import pandas as pd

    try:
        h = pd.read_csv(path)
    except UnicodeDecodeError:
        raise _bad(path, "is a binary file, not the CSV training writes") from None
    except (ValueError, pd.errors.ParserError) as e:  # empty, or a damaged row
        raise _bad(path, f"is not the CSV training writes ({str(e).splitlines()[0]})") from None
    if h.empty or not {"epoch", "clean_acc"} <= set(h.columns):
        raise _bad(path, "has no epochs (no rows, or no epoch / clean_acc column)")
    epochs = pd.to_numeric(h["epoch"], errors="coerce")
    if epochs.isna().any() or not (epochs.diff().dropna() == 1).all():
        raise _bad(path, f"has epochs {h['epoch'].tolist()}, not consecutive (a damaged or spliced file)")
    for col in [c for c in h.columns if c == "clean_acc" or c.startswith("robust_acc")]:
        v = pd.to_numeric(h[col], errors="coerce")
        if ((v < 0) | (v > 1)).any() or (v.isna() & h[col].notna()).any():
            raise _bad(path, f"column {col} holds {h[col].tolist()}, not fractions in [0, 1]")
    return h
