"""Loading a trained model: ``model.pt`` → the network, its settings and its dataset's meta.

``model.pt`` (written by training) holds the final weights, the cell's settings as JSON and the dataset's meta;
it is read with ``torch.load(..., weights_only=True)`` and checked to be ours before anything is built from it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..regimes import uses_aux_norm
from ..utils import load_torch
from .build import build_model


def read_model_file(path: str | Path, device="cpu") -> dict:
    """The contents of a ``model.pt``, checked to be ours (weights, settings, meta, peak GPU memory, ...)."""
    try:
        state = load_torch(path, map_location=device)
        json.loads(state["settings"])
    except Exception as e:  # truncated, tampered, or not ours: never trusted
        raise SystemExit(f"{path} is damaged or not a normrobust model ({type(e).__name__}: {str(e)[:120]}); "
                         f"delete it and rerun snakemake to retrain that cell") from None
    return state


def load_model(path: str | Path, device="cpu", state: dict | None = None):
    """Rebuild a trained model from its ``model.pt`` (or its contents ``state``, from :func:`read_model_file`);
    returns (model in eval mode, settings, meta).

    The plain network, in fp32 and contiguous; evaluate / transfer put it on the fast path (fast.wrap)."""
    state = state if state is not None else read_model_file(path, device)
    settings = json.loads(state["settings"])
    aux = uses_aux_norm(settings["regime"], settings["cell"]["norm"])
    model = build_model(settings["arch"], settings["cell"]["norm"], state["meta"], aux_norm=aux).to(device)
    model.load_state_dict(state["state_dict"])
    return model.eval(), settings, state["meta"]
