"""Building and loading dataset tensors: a config entry made into its dataset dict (``build_dataset``), a prepared
file loaded onto the device (``load_prepared``), uint8 → float, and the batched crop + flip augmentation.

What the datasets are (kinds, shapes, sizes) is the torch-free catalog, :mod:`normrobust.data`.
"""

from __future__ import annotations

import os

import torch

from . import DATASET_KINDS, resolve_data_dir, torchvision_sets


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
    """Load a prepared dataset file, every tensor moved to ``device``."""
    from ..utils import load_torch

    data = load_torch(path)
    return _to(data, torch.device(device))


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
