"""Real image datasets (MNIST, Fashion-MNIST, CIFAR-10, SVHN), read offline through torchvision.

The files live in torchvision's layout under one data directory::

    <data_dir>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    <data_dir>/FashionMNIST/raw/...                      (same four names)
    <data_dir>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}
    <data_dir>/{train,test}_32x32.mat                    (SVHN)

Before anything is read, every file is checked against the md5 that torchvision publishes (taken from the
classes' ``resources`` / ``train_list`` / ``test_list`` / ``meta`` / ``split_list``, never retyped); a missing or
damaged file raises :class:`DatasetFileError` with a one-line message saying what to put where. Nothing is
downloaded unless the config says ``download: true``. MNIST's ``.gz`` files are decompressed into a temporary
folder, so a read-only data directory works. Images become uint8 ``[N,C,H,W]`` tensors in one step from the
datasets' ``.data`` arrays (no per-image PIL round trip).
"""

from __future__ import annotations

import gzip
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils import error_line, seeded_generator
from . import NUM_CLASSES, SHAPES, TORCHVISION_CLASSES, DatasetFileError

CONFIG_KEYS = ("kind", "n_train", "n_test", "subset_seed", "augment", "verify", "download", "training")
_MNIST_LIKE = ("mnist", "fashion_mnist")
_STREAM_TRAIN, _STREAM_TEST = 0, 1  # subset streams of seeded_generator(subset_seed, stream)


@dataclass(frozen=True)
class RawFile:
    path: Path
    md5: str
    source: str  # where the official file comes from


def _tv_class(kind: str):
    import torchvision.datasets as tvd

    return getattr(tvd, TORCHVISION_CLASSES[kind])


def required_files(kind: str, data_dir: str | Path) -> list[RawFile]:
    """The files ``kind`` needs under ``data_dir``, with torchvision's md5s and download addresses."""
    cls, root = _tv_class(kind), Path(data_dir)
    if kind in _MNIST_LIKE:
        raw = root / cls.__name__ / "raw"  # = torchvision's MNIST.raw_folder
        return [RawFile(raw / f, md5, cls.mirrors[0] + f) for f, md5 in cls.resources]
    if kind == "cifar10":
        entries = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
        return [RawFile(root / cls.base_folder / f, md5, f"{cls.url}, extracted") for f, md5 in entries]
    if kind == "svhn":
        return [RawFile(root / f, md5, url) for split, (url, f, md5) in cls.split_list.items()
                if split in ("train", "test")]
    raise ValueError(f"unknown torchvision dataset kind '{kind}'")


def check_files(name: str, files: list[RawFile], verify: bool = True) -> None:
    """Raise DatasetFileError for the first missing file, or (``verify``) the first with a wrong md5."""
    from torchvision.datasets.utils import calculate_md5

    missing = [f for f in files if not f.path.is_file()]
    if missing:
        f = missing[0]
        more = f" (and {len(missing) - 1} more files)" if len(missing) > 1 else ""
        raise DatasetFileError(
            f"dataset '{name}': missing {f.path} (md5 {f.md5}){more}; put the official file into {f.path.parent}/ "
            f"(from {f.source}) or set datasets.{name}.download: true")
    if verify:
        for f in files:
            actual = calculate_md5(f.path)
            if actual != f.md5:
                raise DatasetFileError(f"dataset '{name}': {f.path} has md5 {actual}, expected {f.md5}; "
                                       f"replace it with the official file (from {f.source})")


def _download(name: str, kind: str, root: Path) -> None:
    """Let torchvision fetch what is missing (only with ``download: true``)."""
    cls = _tv_class(kind)
    try:
        if kind == "svhn":
            for split in ("train", "test"):
                cls(str(root), split=split, download=True)
        else:
            cls(str(root), train=True, download=True)
    except Exception as e:  # torchvision's messages span lines; keep ours to one
        raise DatasetFileError(f"dataset '{name}': download into {root} failed: {type(e).__name__}: "
                               f"{error_line(e)}") from e


def _unverified(cls, **attrs):
    """A subclass of a torchvision dataset with the md5s set to None (we checked them already, or were told not to)."""
    return type(cls.__name__, (cls,), attrs)


def _read(kind: str, root: Path, files: list[RawFile]) -> tuple[dict, dict, list[str]]:
    cls = _tv_class(kind)
    if kind in _MNIST_LIKE:
        with tempfile.TemporaryDirectory(prefix="normrobust-") as tmp:
            raw = Path(tmp) / cls.__name__ / "raw"
            raw.mkdir(parents=True)
            for f in files:
                with gzip.open(f.path, "rb") as src, open(raw / f.path.stem, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            sets = {s: cls(tmp, train=(s == "train")) for s in ("train", "test")}
            out = {s: {"x": d.data.unsqueeze(1).contiguous(), "y": d.targets.long()} for s, d in sets.items()}
        classes = list(cls.classes)
    elif kind == "cifar10":
        U = _unverified(cls, train_list=[[f, None] for f, _ in cls.train_list],
                        test_list=[[f, None] for f, _ in cls.test_list], meta={**cls.meta, "md5": None})
        sets = {s: U(str(root), train=(s == "train")) for s in ("train", "test")}
        out = {s: {"x": torch.from_numpy(d.data).permute(0, 3, 1, 2).contiguous(),  # NHWC → NCHW
                   "y": torch.as_tensor(d.targets, dtype=torch.int64)} for s, d in sets.items()}
        classes = list(sets["train"].classes)
    else:  # svhn
        U = _unverified(cls, split_list={k: [url, f, None] for k, (url, f, _) in cls.split_list.items()})
        sets = {s: U(str(root), split=s) for s in ("train", "test")}
        out = {s: {"x": torch.from_numpy(d.data).contiguous(), "y": torch.from_numpy(d.labels).long()}
               for s, d in sets.items()}
        classes = [str(i) for i in range(NUM_CLASSES)]
    return out["train"], out["test"], classes


def _subset(split: dict, n: int | None, seed: int, stream: int, what: str) -> dict:
    """A seeded random subset of ``n`` samples, kept in the original order (all of them when n is None)."""
    total = len(split["y"])
    if n is None:
        return split
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= total:
        raise ValueError(f"{what} must be an integer in 1..{total}, got {n!r}")
    idx = torch.randperm(total, generator=seeded_generator(seed, stream))[:n].sort().values
    return {"x": split["x"][idx], "y": split["y"][idx]}


def build(name: str, cfg: dict, data_dir: str | Path) -> dict:
    """The dataset dict (train/test uint8 images, labels, meta) for a real dataset's config entry."""
    from .generated import _channel_stats

    kind = cfg["kind"]
    unknown = sorted(set(cfg) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"datasets.{name}: unknown key(s) {', '.join(unknown)} for kind '{kind}' "
                         f"(allowed: {', '.join(CONFIG_KEYS)})")
    root = Path(data_dir)
    files = required_files(kind, root)
    if cfg.get("download", False) and not all(f.path.is_file() for f in files):
        _download(name, kind, root)
    verify = cfg.get("verify", True)
    check_files(name, files, verify=verify)
    try:
        train, test, classes = _read(kind, root, files)
    except (OSError, EOFError, ValueError, AssertionError, RuntimeError, KeyError, IndexError) as e:
        # a damaged file that verify: false let through (gzip, torchvision's parsers, unpickling)
        hint = ("its md5 was checked, so the reader failed: see the log" if verify else
                f"a file is damaged or not the official one: set datasets.{name}.verify: true to check every md5")
        raise DatasetFileError(f"dataset '{name}': reading the files under {root} failed ({type(e).__name__}: "
                               f"{error_line(e, 160)}); {hint}") from e
    seed = cfg.get("subset_seed", 0)
    train = _subset(train, cfg.get("n_train"), seed, _STREAM_TRAIN, f"datasets.{name}.n_train")
    test = _subset(test, cfg.get("n_test"), seed, _STREAM_TEST, f"datasets.{name}.n_test")
    for split in (train, test):
        assert split["x"].dtype == torch.uint8 and tuple(split["x"].shape[1:]) == SHAPES[kind], split["x"].shape
    mean, std = _channel_stats(train["x"])
    meta = {"name": name, "kind": kind, "num_classes": NUM_CLASSES, "shape": list(SHAPES[kind]),
            "mean": mean, "std": std, "classes": classes, "verified": bool(cfg.get("verify", True))}
    return {"train": train, "test": test, "meta": meta}
