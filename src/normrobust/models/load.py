"""Loading a trained model: ``model.pt`` → the network, its settings and its dataset's meta.

``model.pt`` (written by training) holds the final weights, the cell's settings as JSON and the dataset's meta;
it is read with ``torch.load(..., weights_only=True)`` and checked to be ours before anything is built from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..cells import CELL_KEYS, cell_from_path, cell_path
from ..regimes import uses_aux_norm
from ..utils import error_line, load_torch
from .build import build_model


def read_model_file(path: str | Path, device="cpu") -> dict:
    """The contents of a ``model.pt``, checked to be ours (weights, settings, meta, peak GPU memory, ...)."""
    try:
        state = load_torch(path, map_location=device)
        json.loads(state["settings"])
    except Exception as e:  # truncated, tampered, or not ours: never trusted
        raise SystemExit(f"{path} is damaged or not a normrobust model ({type(e).__name__}: {error_line(e, 120)}); "
                         f"delete it and rerun snakemake to retrain that cell") from None
    check_cell(path, json.loads(state["settings"]))
    return state


def cell_named_by(path: str | Path) -> dict | None:
    """The cell a file's place in the results layout names (``.../models/{dataset}/{arch}/{norm}/{regime}/s{seed}/
    model.pt`` or ``.../s{seed}/epochs/epoch{N}.pt``); None for a file elsewhere."""
    p = Path(path)
    if p.parent.name == "epochs":
        p = p.parent
    parts = p.parent.parts
    if len(parts) < 6 or parts[-6] != "models" or not re.fullmatch(r"s\d+", parts[-1]):
        return None
    return cell_from_path(p)


def check_cell(path: str | Path, settings: dict) -> None:
    """The model in ``path`` is of the cell its place names (a model copied from another cell or run stops here)."""
    expected = cell_named_by(path)
    found = {k: (settings.get("cell") or {}).get(k, "?") for k in CELL_KEYS}
    if expected is not None and found != expected:
        raise SystemExit(f"{path} holds a model of {cell_path(found)}, not of the cell its place names "
                         f"({cell_path(expected)}): it was copied from elsewhere; delete it and rerun snakemake to "
                         f"retrain this cell")


def check_data(path: str | Path, settings: dict, model_meta: dict, data_meta: dict) -> None:
    """The model in ``path`` was trained on the dataset it is about to see (name, shape, classes)."""
    mine = {**model_meta, "name": model_meta.get("name") or (settings.get("cell") or {}).get("dataset")}
    differ = [k for k in ("name", "shape", "num_classes") if mine.get(k) is not None and data_meta.get(k) is not None
              and _plain(mine[k]) != _plain(data_meta[k])]
    if differ:
        found = ", ".join(f"{k} {mine[k]} vs {data_meta[k]}" for k in differ)
        raise SystemExit(f"{path} was trained on dataset '{mine.get('name')}', but the dataset given is "
                         f"'{data_meta.get('name')}' ({found}); use its own dataset's file, results/data/"
                         f"{mine.get('name')}.pt")


def _plain(v):
    """A shape as a list (a tuple or a list, as a meta may hold it), anything else as it is."""
    return list(v) if isinstance(v, (list, tuple)) else v


def load_model(path: str | Path, device="cpu", state: dict | None = None, data_meta: dict | None = None):
    """Rebuild a trained model from its ``model.pt`` (or its contents ``state``, from :func:`read_model_file`);
    returns (model in eval mode, settings, meta). With ``data_meta`` (the meta of the dataset it is about to see),
    checked to have been trained on that dataset.

    The plain network, in fp32 and contiguous; evaluate / transfer put it on the fast path (fast.wrap)."""
    state = state if state is not None else read_model_file(path, device)
    settings = json.loads(state["settings"])
    if data_meta is not None:
        check_data(path, settings, state["meta"], data_meta)
    aux = uses_aux_norm(settings["regime"], settings["cell"]["norm"])
    model = build_model(settings["arch"], settings["cell"]["norm"], state["meta"], aux_norm=aux).to(device)
    model.load_state_dict(state["state_dict"])
    return model.eval(), settings, state["meta"]
