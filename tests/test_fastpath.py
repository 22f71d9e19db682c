"""The fast path (fast.py) agrees with the plain fp32 path: exercised on the CPU where torch allows it
(channels_last, bf16 autocast), on a small trained model; the CPU default is fp32, channels_last where faster."""

import copy

import pytest
import torch

import tiny
from normrobust import fast, metrics, train
from normrobust.data.loading import build_dataset, to_float
from normrobust.models.load import load_model
from normrobust.settings import Execution
from normrobust.utils import load_torch, save_torch, seeded_generator

PGD = {"type": "pgd", "norm": "linf", "eps": 8, "rel_step": 0.25, "steps": 10}


def settings(norm="bn", **extra):
    return {"cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": "standard", "seed": 0},
            "arch": {"kind": "cnn", "widths": [8, 16, 32]}, "regime": {"name": "standard", "attack": None},
            "training": {"epochs": 3, "batch_size": 50, "lr": 0.05, "schedule": {"kind": "constant"},
                         "history": {"n_test": 20, "attack": {"type": "fgsm", "norm": "linf", "eps": 4}}},
            "device": "cpu", **extra}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    d = tmp_path_factory.mktemp("fast")
    data = build_dataset("generated", {"kind": "generated", "seed": 3, "n_train": 600, "n_test": 300})
    save_torch(data, d / "gen.pt")
    return d, to_float(data["test"]["x"]), data["test"]["y"]


def trained_model(dataset, norm):
    d, x, y = dataset
    if not (d / norm / "model.pt").exists():
        tiny.train(settings(norm), str(d / "gen.pt"), d / norm)
    model, _, _, _ = load_model(d / norm / "model.pt")
    return d, model, x, y


@pytest.fixture(scope="module")
def trained(dataset):
    return trained_model(dataset, "bn")


def measure(model, x, y):
    return {"acc": metrics.accuracy(model, x, y, batch_size=100),
            "robust": metrics.robust_accuracy(model, x, y, PGD, batch_size=100),
            "ligs": metrics.ligs(model, x, y, batch_size=100, generator=seeded_generator(0, 5))["ligs"]}


def test_cpu_default_is_fp32_with_channels_last_where_it_is_faster():
    for norm, cl in fast.CHANNELS_LAST_CPU.items():
        cfg = fast.resolve(None, "cpu", norm)
        assert cfg == {"amp": None, "channels_last": cl, "compile": False, "cudnn_benchmark": False,
                       "eval_batch_size": None}
    assert fast.CHANNELS_LAST_CPU["in"] is False and fast.CHANNELS_LAST_CPU["bn"] is True
    net = torch.nn.Linear(2, 2)
    assert fast.wrap(net, fast.resolve(None, "cpu", "in"), "cpu") is net  # the plain path
    assert fast.wrap(net, fast.resolve({"channels_last": False}, "cpu", "bn"), "cpu") is net
    assert fast.eval_batch(fast.resolve(None, "cpu", "bn"), 500) == 500


def test_resolve_on_cuda_per_norm_and_never_compiled_for_double_backward():
    for norm, cl in fast.CHANNELS_LAST.items():
        cfg = fast.resolve({"compile": True}, "cuda", norm)
        assert cfg["amp"] == "bfloat16" and cfg["channels_last"] is cl and cfg["compile"] and cfg["cudnn_benchmark"]
    assert fast.resolve({"compile": True}, "cuda", "bn", double_backward=True)["compile"] is False
    assert fast.resolve({"amp": False, "channels_last": False}, "cuda", "bn")["amp"] is None
    assert fast.eval_batch(fast.resolve(None, "cuda", "bn"), 500) == fast.EVAL_BATCH_CUDA
    with pytest.raises(ValueError, match="unknown key"):
        fast.resolve({"bogus": 1}, "cpu", "bn")


@pytest.mark.parametrize("norm", ["bn", "in"])
@pytest.mark.parametrize("block,tol", [({"channels_last": True}, {"acc": 0.0, "robust": 0.01, "ligs": 1e-3}),
                                       ({"channels_last": True, "amp": True}, {"acc": 0.03, "robust": 0.05,
                                                                               "ligs": 0.05})])
def test_fast_path_agrees_with_plain(dataset, norm, block, tol):
    _, model, x, y = trained_model(dataset, norm)
    plain = measure(model, x, y)
    wrapped = fast.wrap(copy.deepcopy(model), fast.resolve(block, "cpu", norm), "cpu")  # wrap converts in place
    assert isinstance(wrapped, fast.Fast)
    with torch.no_grad():
        assert wrapped(x[:4]).dtype == torch.float32  # fp32 logits even under bf16 autocast
    got = measure(wrapped, x, y)
    for k in plain:
        assert abs(got[k] - plain[k]) <= tol[k], (k, got, plain)
    assert plain["acc"] > 0.4 and 0 < plain["robust"] < plain["acc"]  # trained, and an attack that bites


def test_train_on_the_fast_path_records_it(trained, tmp_path):
    d, _, x, y = trained
    block = {"channels_last": True, "amp": True}
    tiny.train(settings(fast=block), str(d / "gen.pt"), tmp_path / "m")
    state = load_torch(tmp_path / "m" / "model.pt")
    assert state["fast"]["amp"] == "bfloat16" and state["fast"]["channels_last"] is True
    assert state["peak_gpu_mem_mib"] is None  # CPU
    assert not any(k.startswith("net.") for k in state["state_dict"])  # the plain network's weights
    model, _, _, _ = load_model(tmp_path / "m" / "model.pt")
    assert metrics.accuracy(model, x, y) > 0.5


def test_default_cpu_training_records_its_settings(trained):
    d, _, _, _ = trained
    state = load_torch(d / "bn" / "model.pt")
    assert state["fast"]["amp"] is None and state["fast"]["channels_last"] is fast.CHANNELS_LAST_CPU["bn"]
    assert "peak_gpu_mem_mib" in state and state["peak_gpu_mem_mib"] is None


@pytest.mark.parametrize("regime", [
    {"name": "ligs_reg", "attack": None, "objective": "ligs_reg", "ligs_weight": 0.5},  # double backward
    {"name": "pgd", "attack": {"type": "pgd", "norm": "linf", "eps": 8, "rel_step": 0.25, "steps": 2,
                               "random_start": True}, "attack_mode": "train_frozen"},
])
def test_other_objectives_run_on_the_fast_path(dataset, regime, tmp_path):
    d, x, y = dataset
    s = settings(fast={"channels_last": True, "amp": True, "compile": True})
    s["regime"], s["training"]["epochs"] = regime, 1
    if regime["name"] == "ligs_reg":  # compile is never used through double backward
        assert train.fast_settings(tiny.settings_of(s)[0], "cpu", Execution(train_fast=s["fast"]))["compile"] is False
        tiny.train(s, str(d / "gen.pt"), tmp_path / "m")
        assert load_torch(tmp_path / "m" / "model.pt")["fast"]["amp"] == "bfloat16"
    else:
        s["fast"]["compile"] = False
        tiny.train(s, str(d / "gen.pt"), tmp_path / "m")
    model, _, _, _ = load_model(tmp_path / "m" / "model.pt")
    assert 0 <= metrics.accuracy(model, x, y) <= 1


# A ResNet whose strided 1x1 shortcut has 4 input channels: channels_last made oneDNN's NHWC weight gradient
# (jit_1x1:avx2, the kernel of CPUs without AVX-512; capped to it here) write past its buffer, and the process died
# in the allocator. Trained in a child process, so a crash fails the test instead of killing it.
FEW_CHANNELS_SCRIPT = """
import torch, torch.nn.functional as F
from normrobust import fast
from normrobust.models.build import build_model
from normrobust.train import ligs_penalty
torch.manual_seed(0)
meta = {"num_classes": 10, "shape": [3, 16, 16], "mean": [0.5] * 3, "std": [0.25] * 3}
for norm in ("gn", "bn"):
    net = build_model({"kind": "resnet", "widths": [4, 4, 4]}, norm, meta)
    cfg = fast.resolve(None, "cpu", norm)
    model = fast.wrap(net, cfg, "cpu")
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 3, 16, 16, generator=g), torch.randint(0, 10, (64,), generator=g)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x), y)
        loss = loss + 0.5 * ligs_penalty(model, x, y, 0.1, g)  # double backward, as ligs_reg training
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    print(norm, cfg["channels_last"], cfg.get("channels_last_off", ""), losses[0], losses[-1], flush=True)
"""


def test_resnet_with_few_channels_trains_on_the_cpu_fast_path():
    import subprocess
    import sys

    from conftest import cli_env

    env = cli_env(ONEDNN_MAX_CPU_ISA="AVX2", OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", FEW_CHANNELS_SCRIPT], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    rows = [line.split(" ", 2) for line in p.stdout.splitlines()]
    assert [r[:2] for r in rows] == [["gn", "False"], ["bn", "False"]], p.stdout
    for r in rows:
        assert "1x1, stride 2, 4 input channels" in r[2], r
        first, last = map(float, r[2].rsplit(" ", 2)[1:])
        assert last < first, r  # it trains


def test_only_strided_1x1_convs_with_few_channels_turn_channels_last_off():
    from normrobust.models.build import build_model

    meta = {"num_classes": 10, "shape": [3, 16, 16], "mean": [0.5] * 3, "std": [0.25] * 3}
    for arch, norm in [({"kind": "resnet", "widths": [4, 4, 4]}, "bn"),
                       ({"kind": "resnet", "widths": [4, 8, 16]}, "gn"),
                       ({"kind": "resnet", "widths": [16, 32, 64], "width": 0.25}, "fixup")]:
        net = build_model(arch, norm, meta)
        assert fast.cpu_channels_last_hazard(net)
        for block in (None, {"channels_last": True}):
            cfg = fast.resolve(block, "cpu", norm)
            assert fast.wrap(net, cfg, "cpu") is net and cfg["channels_last"] is False  # the plain path
            assert "input channels" in cfg["channels_last_off"]
        cuda = fast.resolve(None, "cuda", norm)
        assert isinstance(fast.wrap(build_model(arch, norm, meta), cuda, "cuda"), fast.Fast)  # cuDNN: unaffected
        assert cuda["channels_last"] is fast.CHANNELS_LAST[norm] and "channels_last_off" not in cuda
    for arch in ({"kind": "resnet", "widths": [16, 32, 64]}, {"kind": "resnet", "widths": [8, 8, 8]},
                 {"kind": "cnn", "widths": [16, 32, 64]}, {"kind": "cnn", "widths": [4, 4, 4]}):
        for norm in ("none", "bn", "ln", "gn"):  # the default settings, exactly as before
            net = build_model(arch, norm, meta)
            cfg = fast.resolve(None, "cpu", norm)
            assert isinstance(fast.wrap(net, cfg, "cpu"), fast.Fast)
            assert cfg == {"amp": None, "channels_last": True, "compile": False, "cudnn_benchmark": False,
                           "eval_batch_size": None}
