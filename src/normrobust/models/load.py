"""Loading a trained model: ``model.pt`` → the network, its settings and its dataset's meta.

``model.pt`` (written by training) holds the final weights, the cell's settings as JSON and the dataset's meta;
it is read with ``torch.load(..., weights_only=True)`` and checked to be ours before anything is built from it.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import Cell, Layout, model_cell_named_by
from ..settings import TrainSettings
from ..utils import error_line, load_torch
from .build import build_model


def read_model_file(path: str | Path, device="cpu") -> dict:
    """The contents of a ``model.pt``, checked to be ours (weights, settings, cell, meta, peak GPU memory, ...), with
    ``settings`` parsed (a :class:`~normrobust.settings.TrainSettings`) and ``cell`` a
    :class:`~normrobust.layout.Cell`."""
    try:
        state = load_torch(path, map_location=device)
        state["settings"] = TrainSettings.from_json(state["settings"])
        state["cell"] = Cell.of(state["cell"])
    except Exception as e:  # truncated, tampered, or not ours: never trusted
        raise SystemExit(f"{path} is damaged or not a normrobust model ({type(e).__name__}: {error_line(e, 120)}); "
                         f"delete it and rerun snakemake to retrain that cell") from None
    check_cell(path, state["cell"])
    return state


def cell_named_by(path: str | Path) -> Cell | None:
    """The cell a model file's place in the results layout names; None for a file elsewhere."""
    return model_cell_named_by(path)


def check_cell(path: str | Path, found: Cell) -> None:
    """The model in ``path`` is of the cell its place names (a model copied from another cell or run stops here)."""
    expected = cell_named_by(path)
    if expected is not None and found != expected:
        raise SystemExit(f"{path} holds a model of {found.path}, not of the cell its place names "
                         f"({expected.path}): it was copied from elsewhere; delete it and rerun snakemake to "
                         f"retrain this cell")


def check_data(path: str | Path, cell: Cell, model_meta: dict, data_meta: dict) -> None:
    """The model in ``path`` was trained on the dataset it is about to see (name, shape, classes)."""
    mine = {**model_meta, "name": model_meta.get("name") or cell.dataset}
    differ = [k for k in ("name", "shape", "num_classes") if mine.get(k) is not None and data_meta.get(k) is not None
              and _plain(mine[k]) != _plain(data_meta[k])]
    if differ:
        found = ", ".join(f"{k} {mine[k]} vs {data_meta[k]}" for k in differ)
        raise SystemExit(f"{path} was trained on dataset '{mine.get('name')}', but the dataset given is "
                         f"'{data_meta.get('name')}' ({found}); use its own dataset's file, "
                         f"{Layout().data(mine.get('name'))}")


def _plain(v):
    """A shape as a list (a tuple or a list, as a meta may hold it), anything else as it is."""
    return list(v) if isinstance(v, (list, tuple)) else v


def check_settings(path: str | Path, settings: TrainSettings, cell: Cell, expect: str | None) -> None:
    """The model in ``path`` was trained with the settings this config asks for (``expect``: their digest,
    :meth:`~normrobust.settings.TrainSettings.digest`); a model of the right cell made by another config stops here."""
    if expect is None or settings.digest() == expect:
        return
    t = settings.training
    raise SystemExit(f"{path} holds a model of {cell.path} trained with other settings than this config asks for "
                     f"(it has arch {settings.arch}, {t.epochs} epochs, lr {t.lr:g}, batch {t.batch_size}; settings "
                     f"{settings.digest()}, this config's {expect}): it comes from another run or config; delete it "
                     f"and rerun snakemake to retrain this cell")


def load_model(path: str | Path, device="cpu", state: dict | None = None, data_meta: dict | None = None,
               expect: str | None = None):
    """Rebuild a trained model from its ``model.pt`` (or its contents ``state``, from :func:`read_model_file`);
    returns (model in eval mode, its training settings, its cell, the dataset's meta). With ``data_meta`` (the meta
    of the dataset it is about to see), checked to have been trained on that dataset; with ``expect`` (a settings
    digest), checked to have been trained with those settings.

    The plain network, in fp32 and contiguous; evaluate / transfer put it on the fast path (fast.wrap)."""
    state = state if state is not None else read_model_file(path, device)
    settings, cell = state["settings"], state["cell"]
    check_settings(path, settings, cell, expect)
    if data_meta is not None:
        check_data(path, cell, state["meta"], data_meta)
    model = build_model(settings.arch, cell.norm, state["meta"], aux_norm=settings.aux_norm).to(device)
    model.load_state_dict(state["state_dict"])
    return model.eval(), settings, cell, state["meta"]
