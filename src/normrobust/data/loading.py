"""Building and loading dataset tensors: a config entry made into its dataset dict (``build_dataset``), a prepared
file loaded onto the device (``load_prepared``), uint8 → float, and the batched crop + flip augmentation.

What the datasets are (kinds, shapes, sizes) is the torch-free catalog, :mod:`normrobust.data`.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from . import DATASET_KINDS, DatasetFileError, resolve_data_dir, torchvision_sets


def build_dataset(name: str, cfg: dict, data_dir: str | os.PathLike | None = None) -> dict:
    """Make the dataset dict for the config entry ``cfg`` (``kind`` + its settings).

    ``data_dir`` (the config's top-level ``data_dir``) is only used by the real datasets; it goes through
    :func:`resolve_data_dir`.
    """
    kind = cfg.get("kind")
    if kind == "generated":
        from .generated import generate

        data = generate(**{k: v for k, v in cfg.items() if k not in ("kind", "augment", "training")})
    elif kind == "derived":
        raise ValueError(f"datasets.{name}: kind 'derived' is built by derive-data from a trained model "
                         f"(python -m normrobust derive-data), not by prepare-data")
    elif kind in DATASET_KINDS:
        data = torchvision_sets.build(name, cfg, resolve_data_dir(data_dir))
    else:
        raise ValueError(f"datasets.{name}.kind: unknown '{kind}' (allowed: {', '.join(DATASET_KINDS)})")
    data["meta"]["name"] = name
    data["meta"]["augment"] = cfg.get("augment") or {}
    return data


def load_prepared(path, device: torch.device | str = "cpu") -> dict:
    """Load a prepared dataset file, checked (:func:`check_prepared`), every tensor moved to ``device``."""
    from ..utils import error_line, load_torch

    try:
        data = load_torch(path)
    except FileNotFoundError:
        raise DatasetFileError(f"{path} not found; make it first (snakemake {path})") from None
    except Exception as e:  # truncated, tampered with, or not ours
        raise DatasetFileError(f"{path} is damaged or not a normrobust dataset file ({type(e).__name__}: "
                               f"{error_line(e, 120)}); delete it and rerun snakemake to rebuild it") from None
    check_prepared(path, data)
    return _to(data, torch.device(device))


def check_prepared(path, data) -> None:
    """A prepared dataset file in the results layout holds the dataset its name says (``results/data/<name>.pt``),
    and (anywhere) its splits are what its meta declares (shape, classes, as many labels as images);
    DatasetFileError naming both otherwise."""
    def bad(what: str):
        return DatasetFileError(f"{path}: {what}; delete it and rerun snakemake to rebuild it")

    if not isinstance(data, dict) or not all(k in data for k in ("train", "test", "meta")):
        raise bad("not a normrobust dataset file (no train / test / meta)")
    meta, stem = data["meta"], Path(path).name.removesuffix(".pt")
    if Path(path).parent.name == "data" and meta.get("name") not in (None, stem):  # the results layout
        raise bad(f"holds dataset '{meta.get('name')}' ({meta.get('kind', 'kind not recorded')}), not '{stem}' "
                  f"that its name says: it was copied from elsewhere")
    shape, k = list(meta.get("shape") or []), meta.get("num_classes")
    for split in ("train", "test"):
        x, y = data[split].get("x"), data[split].get("y")
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or len(x) != len(y) or not len(y):
            raise bad(f"its {split} split is not {{x, y}} tensors of one positive length")
        if shape and list(x.shape[1:]) != shape:
            raise bad(f"its {split} images are {list(x.shape[1:])}, the meta declares {shape}")
        if k is not None and (int(y.min()) < 0 or int(y.max()) >= k):
            raise bad(f"its {split} labels span {int(y.min())}..{int(y.max())}, the meta declares {k} classes")


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    return obj


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [0,1]."""
    return x.float().div_(255) if x.dtype == torch.uint8 else x


def augment(x: torch.Tensor, generator: torch.Generator, crop_pad: int = 0, flip: bool = False) -> torch.Tensor:
    """Batched random crop (zero padding ``crop_pad``) and horizontal flip, on x's device."""
    if flip:
        mask = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    if crop_pad:
        b, c, h, w = x.shape
        p = crop_pad
        xp = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=x.device)
        dx = torch.randint(0, 2 * p + 1, (b,), generator=generator, device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # [B,H]
        cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # [B,W]
        bidx = torch.arange(b, device=x.device)[:, None, None]
        x = xp.permute(0, 2, 3, 1)[bidx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return x
