"""The CUDA path, on a CUDA device only (skipped without one; scripts/gpu-check.sh runs these): the fast path
(bf16 autocast, channels_last, cudnn.benchmark) trains and measures what the plain fp32 path does."""

from __future__ import annotations

import json

import pytest
import torch

import tiny
from normrobust import evaluate, fast, metrics
from normrobust.data.loading import build_dataset, load_prepared, to_float
from normrobust.models.load import load_model
from normrobust.settings import EvalSettings
from normrobust.utils import save_torch, seeded_generator

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
PGD = {"type": "pgd", "norm": "linf", "eps": 8, "rel_step": 0.25, "steps": 10}


def settings(norm, device, epochs=3):
    return {"cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": "standard", "seed": 0},
            "arch": {"kind": "cnn", "widths": [16, 32, 64]}, "regime": {"name": "standard", "attack": None},
            "training": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "schedule": {"kind": "constant"},
                         "history": {"n_test": 100, "ligs": True,
                                     "attack": {"type": "pgd", "norm": "linf", "eps": 4, "rel_step": 0.3,
                                                "steps": 3}}},
            "device": device}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("cuda")
    data = build_dataset("generated", {"kind": "generated", "seed": 3, "n_train": 2000, "n_test": 500})
    save_torch(data, d / "gen.pt")
    return d / "gen.pt"


@pytest.mark.parametrize("norm", ["none", "bn", "gn"])
def test_fast_path_training_learns_like_the_plain_path(data_file, tmp_path, norm):
    hist_gpu = tiny.train(settings(norm, "cuda"), str(data_file), tmp_path / "gpu")
    hist_cpu = tiny.train(settings(norm, "cpu"), str(data_file), tmp_path / "cpu")
    state = torch.load(tmp_path / "gpu" / "model.pt", weights_only=True)
    assert state["device"].startswith("cuda") and state["fast"]["amp"] == "bf16"
    assert state["peak_gpu_mem_mib"] > 0
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in hist_gpu if r["epoch"] > 0)
    # bf16 vs fp32 and other kernels: not bit-equal, but the same learning
    assert abs(hist_gpu[-1]["clean_acc"] - hist_cpu[-1]["clean_acc"]) < 0.08


def test_measurements_on_cuda_match_the_cpu(data_file, tmp_path):
    tiny.train(settings("bn", "cpu", epochs=2), str(data_file), tmp_path / "m")
    data = torch.load(data_file, weights_only=True)
    x, y = to_float(data["test"]["x"]), data["test"]["y"]
    model, _, _, _ = load_model(tmp_path / "m" / "model.pt")
    gpu = fast.wrap(load_model(tmp_path / "m" / "model.pt", "cuda")[0], fast.resolve(None, "cuda", "bn"), "cuda")
    acc_c, acc_g = metrics.accuracy(model, x, y), metrics.accuracy(gpu, x.cuda(), y.cuda())
    assert abs(acc_c - acc_g) <= 0.01
    rob_c = metrics.robust_accuracy(model, x, y, PGD, batch_size=250)
    rob_g = metrics.robust_accuracy(gpu, x.cuda(), y.cuda(), PGD, batch_size=250)
    assert abs(rob_c - rob_g) <= 0.03
    l_c = metrics.ligs(model, x, y, generator=seeded_generator(0, 5))["ligs"]
    l_g = metrics.ligs(gpu, x.cuda(), y.cuda(), generator=seeded_generator(0, 5, device="cuda"))["ligs"]
    assert abs(l_c - l_g) <= 0.03


def test_evaluate_on_cuda_records_the_device(data_file, tmp_path):
    tiny.train(settings("none", "cuda", epochs=1), str(data_file), tmp_path / "m")
    ev = EvalSettings.from_dict({"n_test": 200, "attacks": {"pgd_linf": {**PGD, "eps": [4]}}, "ligs_sigma": 0.01})
    device = torch.device("cuda")
    out = evaluate.evaluate_cell(str(tmp_path / "m" / "model.pt"), load_prepared(str(data_file), device), ev, device)
    assert out["device_name"].startswith("cuda (") and out["peak_gpu_mem_mib"] > 0
    json.dumps(out)  # plain values only
