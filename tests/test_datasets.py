"""Real datasets through torchvision: layout, md5 checks, offline error messages, subsets, config-only shapes.

MNIST and Fashion-MNIST come from the shared read-only copy beside the repository (../shared/data; the tests
skip when it is absent and never write into it). CIFAR-10 is a tiny fake written here in the official pickle
layout; SVHN only has its missing-file message tested (no real copy offline).
"""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from normrobust.data import (
    DATASET_KINDS,
    DatasetFileError,
    dataset_num_classes,
    dataset_shape,
    resolve_data_dir,
    torchvision_sets,
)
from normrobust.data.loading import build_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_dir(sub: str) -> Path:
    if not (SHARED / sub / "raw").is_dir():
        pytest.skip(f"no shared {sub} copy at {SHARED / sub / 'raw'}")
    return SHARED


@pytest.fixture(scope="module")
def mnist():
    return build_dataset("mnist", {"kind": "mnist"}, shared_dir("MNIST"))


@pytest.mark.parametrize("kind, sub, mean, std", [("mnist", "MNIST", 0.1307, 0.3081),
                                                  ("fashion_mnist", "FashionMNIST", 0.2860, 0.3530)])
def test_mnist_like_full(kind, sub, mean, std, request):
    data = request.getfixturevalue("mnist") if kind == "mnist" else build_dataset(kind, {"kind": kind},
                                                                                 shared_dir(sub))
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = data[split]["x"], data[split]["y"]
        assert x.dtype == torch.uint8 and x.shape == (n, 1, 28, 28) and x.is_contiguous()
        assert y.dtype == torch.int64 and y.shape == (n,)
        assert y.unique().tolist() == list(range(10))
    meta = data["meta"]
    assert meta["name"] == kind and meta["num_classes"] == 10 and meta["shape"] == [1, 28, 28]
    assert meta["mean"][0] == pytest.approx(mean, abs=2e-3) and meta["std"][0] == pytest.approx(std, abs=2e-3)
    assert int(data["train"]["x"].max()) == 255 and int(data["train"]["x"].min()) == 0


def test_mnist_known_labels(mnist):
    assert mnist["train"]["y"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist["test"]["y"][:5].tolist() == [7, 2, 1, 0, 4]


def test_subset_is_seeded_and_repeatable(mnist):
    root = shared_dir("MNIST")
    cfg = {"kind": "mnist", "n_train": 500, "n_test": 200, "subset_seed": 3, "augment": {"crop_pad": 2},
           "verify": False}
    a, b = build_dataset("m", cfg, root), build_dataset("m", cfg, root)
    c = build_dataset("m", {**cfg, "subset_seed": 4}, root)
    assert a["train"]["x"].shape == (500, 1, 28, 28) and a["test"]["y"].shape == (200,)
    assert torch.equal(a["train"]["x"], b["train"]["x"]) and torch.equal(a["test"]["y"], b["test"]["y"])
    assert not torch.equal(a["train"]["y"], c["train"]["y"])
    # the subset is made of real samples of the full set, with matching labels
    full = mnist["train"]
    hit = (full["x"].flatten(1)[None] == a["train"]["x"][:5].flatten(1)[:, None]).all(-1)
    assert hit.any(1).all() and torch.equal(full["y"][hit.float().argmax(1)], a["train"]["y"][:5])
    assert a["meta"]["augment"] == {"crop_pad": 2} and a["meta"]["mean"] != mnist["meta"]["mean"]
    with pytest.raises(ValueError, match="n_train"):
        build_dataset("m", {"kind": "mnist", "n_train": 70000}, root)


def test_mnist_missing_and_damaged_files(tmp_path):
    src = shared_dir("MNIST") / "MNIST" / "raw"
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in src.glob("*.gz"):
        shutil.copyfile(f, raw / f.name)  # contents only: the copies are writable
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetFileError) as e:
        build_dataset("mnist", {"kind": "mnist"}, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "dataset 'mnist'" in msg
    assert str(raw / "t10k-labels-idx1-ubyte.gz") in msg and "ec29112dd5afa0611ce80d1b7f02629c" in msg
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz" in msg
    assert "datasets.mnist.download: true" in msg
    assert isinstance(e.value, FileNotFoundError)

    shutil.copyfile(src / "t10k-labels-idx1-ubyte.gz", raw / "t10k-labels-idx1-ubyte.gz")
    bad = raw / "train-labels-idx1-ubyte.gz"
    blob = bytearray(bad.read_bytes())
    blob[100] ^= 0xFF
    bad.write_bytes(bytes(blob))
    with pytest.raises(DatasetFileError, match=r"train-labels-idx1-ubyte.gz has md5 [0-9a-f]{32}, "
                                               r"expected d53e105ee54ea40749a09fcbcd1e9432"):
        build_dataset("mnist", {"kind": "mnist"}, tmp_path)


def write_fake_cifar(root: Path, n: int = 3, seed: int = 0) -> dict:
    """Official cifar-10-batches-py layout: pickled dicts with data uint8 [n, 3072] (R, G, B planes) and labels.

    The official files are Python 2 pickles, whose str keys torchvision reads (encoding="latin1") as str, as here.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"batch_label": name, "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n).tolist(), "filenames": [f"{name}_{i}.png" for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        batches[name] = batch
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names, "num_vis": 3072}, protocol=2))
    return batches


def test_fake_cifar10_layout_and_md5(tmp_path):
    batches = write_fake_cifar(tmp_path)
    data = build_dataset("c10", {"kind": "cifar10", "verify": False}, tmp_path)
    train_raw = np.concatenate([batches[f"data_batch_{i}"]["data"] for i in range(1, 6)])
    train_y = sum((batches[f"data_batch_{i}"]["labels"] for i in range(1, 6)), [])
    x = data["train"]["x"]
    assert x.dtype == torch.uint8 and x.shape == (15, 3, 32, 32) and x.is_contiguous()
    assert torch.equal(x, torch.from_numpy(train_raw).reshape(15, 3, 32, 32))  # CHW, values exact
    assert x[0, 1, 0, 0] == int(train_raw[0, 1024]) and x[0, 0, 0, 1] == int(train_raw[0, 1])
    assert data["train"]["y"].tolist() == train_y and data["train"]["y"].dtype == torch.int64
    assert torch.equal(data["test"]["x"].flatten(1), torch.from_numpy(batches["test_batch"]["data"]))
    meta = data["meta"]
    assert meta["shape"] == [3, 32, 32] and len(meta["mean"]) == 3 and meta["classes"][0] == "airplane"
    assert meta["mean"][1] == pytest.approx(train_raw[:, 1024:2048].mean() / 255)

    with pytest.raises(DatasetFileError) as e:
        build_dataset("c10", {"kind": "cifar10"}, tmp_path)
    msg = str(e.value)
    assert "data_batch_1 has md5" in msg and "expected c99cafc152244af753f735de768cd75f" in msg
    assert "cifar-10-python.tar.gz" in msg


def test_download_only_when_asked_and_missing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torchvision_sets, "_download",
                        lambda name, kind, root: calls.append(kind) or write_fake_cifar(root, n=2))
    cfg = {"kind": "cifar10", "verify": False}
    with pytest.raises(DatasetFileError, match="datasets.c10.download: true"):
        build_dataset("c10", cfg, tmp_path)
    assert calls == []
    data = build_dataset("c10", {**cfg, "download": True}, tmp_path)
    assert calls == ["cifar10"] and data["test"]["x"].shape == (2, 3, 32, 32)
    build_dataset("c10", {**cfg, "download": True}, tmp_path)
    assert calls == ["cifar10"]  # files present: nothing fetched


@pytest.mark.parametrize("kind, file, md5, url", [
    ("svhn", "train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373",
     "http://ufldl.stanford.edu/housenumbers/train_32x32.mat"),
    ("cifar10", "cifar-10-batches-py/data_batch_1", "c99cafc152244af753f735de768cd75f",
     "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz"),
])
def test_missing_file_message(tmp_path, kind, file, md5, url):
    with pytest.raises(DatasetFileError) as e:
        build_dataset("ds", {"kind": kind, "verify": True}, tmp_path / "nowhere")
    msg = str(e.value)
    assert msg.startswith("dataset 'ds': missing ") and "\n" not in msg
    assert str(tmp_path / "nowhere" / file) in msg and md5 in msg and url in msg
    assert f"into {(tmp_path / 'nowhere' / file).parent}/" in msg


def test_resolve_data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NORMROBUST_DATA", raising=False)
    assert resolve_data_dir(None) == tmp_path / "data"
    monkeypatch.setenv("NORMROBUST_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir("cfg") == tmp_path / "cfg"
    assert resolve_data_dir(tmp_path / "abs") == tmp_path / "abs"
    # build_dataset uses the same precedence
    with pytest.raises(DatasetFileError, match=str(tmp_path / "env" / "train_32x32.mat")):
        build_dataset("s", {"kind": "svhn"})


def test_config_only_shapes_and_errors(tmp_path):
    assert set(DATASET_KINDS) == {"generated", "derived", "mnist", "fashion_mnist", "cifar10", "svhn"}
    assert dataset_shape({"kind": "mnist"}) == (1, 28, 28) == dataset_shape({"kind": "fashion_mnist"})
    assert dataset_shape({"kind": "cifar10"}) == (3, 32, 32) == dataset_shape({"kind": "svhn", "n_train": 5})
    assert dataset_shape({"kind": "generated"}) == (3, 16, 16)
    assert dataset_shape({"kind": "generated", "image_size": 8}) == (3, 8, 8)
    assert dataset_num_classes({"kind": "svhn"}) == 10 == dataset_num_classes({"kind": "generated"})
    assert dataset_num_classes({"kind": "generated", "num_classes": 4}) == 4
    gen = build_dataset("g", {"kind": "generated", "n_train": 20, "n_test": 10, "image_size": 8, "num_classes": 4})
    assert tuple(gen["meta"]["shape"]) == dataset_shape({"kind": "generated", "image_size": 8})
    with pytest.raises(ValueError, match="unknown 'imagenet'"):
        dataset_shape({"kind": "imagenet"})
    with pytest.raises(ValueError, match="unknown 'imagenet'"):
        build_dataset("x", {"kind": "imagenet"})
    with pytest.raises(ValueError, match="unknown key.*image_size"):
        build_dataset("x", {"kind": "mnist", "image_size": 8}, tmp_path)


def test_fake_svhn_layout(tmp_path):
    """SVHN's .mat layout: X uint8 [H, W, C, N], y [N, 1] with digit 0 stored as 10."""
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    xs = {}
    for split, n in (("train", 4), ("test", 3)):
        xs[split] = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        savemat(tmp_path / f"{split}_32x32.mat", {"X": xs[split], "y": np.arange(n)[:, None] % 2 * 9 + 1})
    data = build_dataset("svhn", {"kind": "svhn", "verify": False}, tmp_path)
    x = data["train"]["x"]
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and x.is_contiguous()
    assert torch.equal(x, torch.from_numpy(xs["train"]).permute(3, 2, 0, 1))  # [H,W,C,N] → [N,C,H,W]
    assert data["train"]["y"].tolist() == [1, 0, 1, 0] and data["test"]["y"].dtype == torch.int64
    with pytest.raises(DatasetFileError, match="train_32x32.mat has md5 .*expected e26dedcc"):
        build_dataset("svhn", {"kind": "svhn"}, tmp_path)
