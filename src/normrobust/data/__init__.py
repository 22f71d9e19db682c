"""Dataset registry.

Every dataset is prepared once (``python -m normrobust prepare-data``) into one file,
``results/data/<name>.pt``, holding uint8 image tensors and labels::

    {"train": {"x": uint8 [N,C,H,W], "y": int64 [N]}, "test": {...},
     "counterfactual": {...}   # generated dataset only: rf_only / nrf_only / conflict test sets
     "meta": {"name", "num_classes", "shape", "mean", "std", ...}}

Kinds: ``generated`` (synthetic, see generated.py) and the real ``mnist``, ``fashion_mnist``, ``cifar10``,
``svhn`` (torchvision_sets.py: read from a data directory in torchvision's layout, md5-checked, offline), and
``derived`` (E3/E4: a base dataset's training images transformed by a trained model; built by
``python -m normrobust derive-data``, see derived.py, not by prepare-data; its shape, classes and test sets are
its base's, so the config-only helpers below need the config's ``datasets`` mapping to answer for it).

Training and evaluation load that file straight onto the device (``load_prepared``) and
batch by indexing: no DataLoader, no per-sample Python.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from . import torchvision_sets
from .torchvision_sets import DatasetFileError

DATASET_KINDS = ("generated", *torchvision_sets.TORCHVISION_CLASSES, "derived")
DATA_DIR_ENV = "NORMROBUST_DATA"

__all__ = ["DATASET_KINDS", "DatasetFileError", "augment", "build_dataset", "dataset_num_classes",
           "dataset_shape", "dataset_train_size", "load_prepared", "resolve_data_dir", "to_float"]


def resolve_data_dir(cfg_value: str | os.PathLike | None = None) -> Path:
    """Where real datasets live: the config value when given, else $NORMROBUST_DATA, else ./data (absolute)."""
    value = cfg_value or os.environ.get(DATA_DIR_ENV) or "data"
    return Path(os.path.abspath(Path(value).expanduser()))


def _kind(cfg: dict) -> str:
    kind = cfg.get("kind")
    if kind not in DATASET_KINDS:
        raise ValueError(f"dataset kind: unknown '{kind}' (allowed: {', '.join(DATASET_KINDS)})")
    return kind


def _generated_default(param: str):
    from .generated import generate

    return inspect.signature(generate).parameters[param].default


def _derived_base(cfg: dict, datasets: dict | None, seen: tuple = ()) -> tuple[dict, tuple]:
    """The config entry of a derived entry's base (and the chain walked so far, to catch cycles)."""
    if datasets is None:
        raise ValueError("dataset kind 'derived': the datasets mapping is needed to resolve its base "
                         "(pass datasets=config['datasets'])")
    base = cfg.get("base")
    if not isinstance(base, str) or base not in datasets:
        raise ValueError(f"derived dataset: base {base!r} is not defined under datasets "
                         f"(allowed: {', '.join(map(str, datasets))})")
    if base in seen:
        raise ValueError(f"derived dataset: base '{base}' derives from itself ({' -> '.join([*seen, base])})")
    return datasets[base], (*seen, base)


def dataset_shape(cfg: dict, datasets: dict | None = None, *, _seen: tuple = ()) -> tuple[int, int, int]:
    """(C, H, W) of the dataset a config entry describes, without reading any data.

    ``datasets``: the config's datasets mapping, needed (only) for kind ``derived`` (answered from its base)."""
    kind = _kind(cfg)
    if kind == "derived":
        base, seen = _derived_base(cfg, datasets, _seen)
        return dataset_shape(base, datasets, _seen=seen)
    if kind == "generated":
        size = cfg.get("image_size", _generated_default("image_size"))
        return (3, size, size)
    return torchvision_sets.SHAPES[kind]


def dataset_num_classes(cfg: dict, datasets: dict | None = None, *, _seen: tuple = ()) -> int:
    """Number of classes of the dataset a config entry describes, without reading any data.

    ``datasets``: the config's datasets mapping, needed (only) for kind ``derived`` (answered from its base)."""
    kind = _kind(cfg)
    if kind == "derived":
        base, seen = _derived_base(cfg, datasets, _seen)
        return dataset_num_classes(base, datasets, _seen=seen)
    if kind == "generated":
        return cfg.get("num_classes", _generated_default("num_classes"))
    return torchvision_sets.NUM_CLASSES


def dataset_train_size(cfg: dict, datasets: dict | None = None, *, _seen: tuple = ()) -> int:
    """Number of training images of the dataset a config entry describes (after subsetting).

    ``datasets``: the config's datasets mapping, needed (only) for kind ``derived``: its ``n`` if given, else
    its base's size."""
    kind = _kind(cfg)
    if kind == "derived":
        base, seen = _derived_base(cfg, datasets, _seen)
        base_size = dataset_train_size(base, datasets, _seen=seen)
        return cfg["n"] if cfg.get("n") is not None else base_size
    if kind == "generated":
        return cfg.get("n_train", _generated_default("n_train"))
    return cfg.get("n_train", torchvision_sets.TRAIN_SIZES[kind])


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
