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

Training and evaluation load that file straight onto the device (``loading.load_prepared``) and
batch by indexing: no DataLoader, no per-sample Python.

This module is the catalog: what the config's datasets are (kind, shape, classes, size), answered without torch,
so config validation and DAG planning run where PyTorch is not installed. Building and loading the tensors is
``loading.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

TORCHVISION_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "svhn": "SVHN"}
SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}
NUM_CLASSES = 10
TRAIN_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "svhn": 73257}
TEST_SIZES = {"mnist": 10000, "fashion_mnist": 10000, "cifar10": 10000, "svhn": 26032}
DATASET_KINDS = ("generated", *TORCHVISION_CLASSES, "derived")
#: the generator's defaults the catalog answers from (generated.generate's signature reads them from here)
GENERATED_DEFAULTS = {"n_train": 4000, "n_test": 1000, "image_size": 16, "num_classes": 10}
DATA_DIR_ENV = "NORMROBUST_DATA"

__all__ = ["DATASET_KINDS", "DatasetFileError", "check_sizes", "dataset_num_classes", "dataset_shape",
           "dataset_test_size", "dataset_train_size", "resolve_data_dir"]


class DatasetFileError(FileNotFoundError):
    """A dataset file is missing or does not match the official md5."""


def resolve_data_dir(cfg_value: str | os.PathLike | None = None) -> Path:
    """Where real datasets live: the config value when given, else $NORMROBUST_DATA, else ./data (absolute)."""
    value = cfg_value or os.environ.get(DATA_DIR_ENV) or "data"
    return Path(os.path.abspath(Path(value).expanduser()))


def _kind(cfg: dict) -> str:
    kind = cfg.get("kind")
    if kind not in DATASET_KINDS:
        raise ValueError(f"dataset kind: unknown '{kind}' (allowed: {', '.join(DATASET_KINDS)})")
    return kind


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
        size = cfg.get("image_size", GENERATED_DEFAULTS["image_size"])
        return (3, size, size)
    return SHAPES[kind]


def dataset_num_classes(cfg: dict, datasets: dict | None = None, *, _seen: tuple = ()) -> int:
    """Number of classes of the dataset a config entry describes, without reading any data.

    ``datasets``: the config's datasets mapping, needed (only) for kind ``derived`` (answered from its base)."""
    kind = _kind(cfg)
    if kind == "derived":
        base, seen = _derived_base(cfg, datasets, _seen)
        return dataset_num_classes(base, datasets, _seen=seen)
    if kind == "generated":
        return cfg.get("num_classes", GENERATED_DEFAULTS["num_classes"])
    return NUM_CLASSES


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
        return cfg.get("n_train", GENERATED_DEFAULTS["n_train"])
    return cfg.get("n_train", TRAIN_SIZES[kind])


def dataset_test_size(cfg: dict, datasets: dict | None = None, *, _seen: tuple = ()) -> int:
    """Number of test images of the dataset a config entry describes (a derived dataset's test set is its base's)."""
    kind = _kind(cfg)
    if kind == "derived":
        base, seen = _derived_base(cfg, datasets, _seen)
        return dataset_test_size(base, datasets, _seen=seen)
    if kind == "generated":
        return cfg.get("n_test", GENERATED_DEFAULTS["n_test"])
    return cfg.get("n_test", TEST_SIZES[kind])


def check_sizes(name: str, cfg: dict) -> None:
    """A real dataset's ``n_train`` / ``n_test`` within what the official files hold (ValueError naming the key)."""
    kind = _kind(cfg)
    for key, sizes in (("n_train", TRAIN_SIZES), ("n_test", TEST_SIZES)):
        n = cfg.get(key)
        if kind in sizes and n is not None and n > sizes[kind]:
            raise ValueError(f"datasets.{name}.{key}: {n} is more than {kind}'s {key[2:]} split holds "
                             f"({sizes[kind]} images); allowed 1..{sizes[kind]}, or leave it out for all of them")
