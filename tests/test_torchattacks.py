"""Our attacks against an established library: torchattacks' PGD / PGD-L2 / FGSM, same settings."""

import copy

import pytest
import torch

import tiny
from normrobust import metrics
from normrobust.data.loading import build_dataset, to_float
from normrobust.models.load import load_model
from normrobust.utils import save_torch

torchattacks = pytest.importorskip("torchattacks")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("ta")
    data = build_dataset("generated", {"kind": "generated", "seed": 2, "n_train": 1000, "n_test": 300})
    save_torch(data, d / "gen.pt")
    s = {"cell": {"dataset": "generated", "arch": "cnn", "norm": "bn", "regime": "standard", "seed": 0},
         "arch": {"kind": "cnn", "widths": [16, 32, 64]}, "regime": {"name": "standard", "attack": None},
         "training": {"epochs": 4, "batch_size": 50, "lr": 0.05, "schedule": {"kind": "constant"},
                      "history": {"n_test": 10, "attack": {"type": "fgsm", "norm": "linf", "eps": 4}}},
         "device": "cpu"}
    tiny.train(s, str(d / "gen.pt"), d / "m")
    model, _, _, _ = load_model(d / "m" / "model.pt")
    return model, to_float(data["test"]["x"]), data["test"]["y"]


def library_accuracy(model, atk, x, y):
    x_adv = atk(x, y)
    with torch.no_grad():
        return ((model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)).float().mean().item()


@pytest.mark.parametrize("eps", [4, 16, 24, 32])
def test_pgd_linf_agrees_with_torchattacks(trained, eps):
    model, x, y = trained
    ours = metrics.robust_accuracy(model, x, y, {"type": "pgd", "norm": "linf", "eps": eps, "step": eps / 4,
                                                 "steps": 10})
    theirs = library_accuracy(model, torchattacks.PGD(model, eps=eps / 255, alpha=eps / 4 / 255, steps=10,
                                                      random_start=False), x, y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


@pytest.mark.parametrize("eps", [0.5, 1.0, 1.5, 2.0])
def test_pgd_l2_agrees_with_torchattacks(trained, eps):
    model, x, y = trained
    ours = metrics.robust_accuracy(model, x, y, {"type": "pgd", "norm": "l2", "eps": eps, "rel_step": 0.4,
                                                 "steps": 10})
    theirs = library_accuracy(model, torchattacks.PGDL2(model, eps=eps, alpha=0.4 * eps, steps=10,
                                                        random_start=False), x, y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_fgsm_agrees_with_torchattacks(trained):
    model, x, y = trained
    ours = metrics.robust_accuracy(model, x, y, {"type": "fgsm", "norm": "linf", "eps": 4})
    theirs = library_accuracy(model, torchattacks.FGSM(model, eps=4 / 255), x, y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_the_comparison_is_not_trivial(trained):
    """Several settings leave robust accuracy strictly between 5% and 95% of the clean one."""
    model, x, y = trained
    clean = metrics.accuracy(model, x, y)
    accs = [metrics.robust_accuracy(model, x, y, {"type": "pgd", "norm": "l2", "eps": e, "rel_step": 0.4,
                                                  "steps": 10}) for e in (0.5, 1.0, 1.5, 2.0)]
    accs += [metrics.robust_accuracy(model, x, y, {"type": "pgd", "norm": "linf", "eps": e, "step": e / 4,
                                                   "steps": 10}) for e in (4, 16, 24, 32)]
    assert clean > 0.5
    assert sum(0.05 * clean < a < 0.95 * clean for a in accs) >= 3, (clean, accs)


# ------------------------------------------------------------------------------------------------ AutoAttack

AA_EPS = 12  # L∞ 12/255: AutoAttack leaves some accuracy here (at 24/255 it left none), so the comparison can fail


def test_autoattack_is_the_library_ensemble(trained):
    """Our AutoAttack (normrobust.autoattack: torchattacks' APGD-CE, APGD-T, FAB-T, Square) gives torchattacks'
    own AutoAttack's robust accuracy, with the library's iteration count (10) and the same seed."""
    from normrobust import autoattack

    model, x, y = trained
    x, y = x[:100], y[:100]
    spec = {"type": "autoattack", "norm": "linf", "eps": AA_EPS, "steps": 10}
    with torch.no_grad():
        clean = (model(x).argmax(1) == y)
        ours = (clean & (model(autoattack.run(model, x, y, spec, seed=0)).argmax(1) == y)).float().mean().item()
    lib = torchattacks.AutoAttack(model, norm="Linf", eps=AA_EPS / 255, version="standard", n_classes=10, seed=0)
    theirs = library_accuracy(model, lib, x, y)
    assert abs(ours - theirs) <= 0.01, (ours, theirs)
    assert 0 < theirs < clean.float().mean().item()  # a comparison that could have failed


@pytest.mark.parametrize("kind", ["apgd_ce", "apgd_t"])
def test_apgd_agrees_with_torchattacks(trained, kind):
    model, x, y = trained
    x, y = x[:100], y[:100]
    ours = metrics.robust_accuracy(model, x, y, {"type": kind, "norm": "linf", "eps": AA_EPS, "steps": 20},
                                   generator=torch.Generator().manual_seed(0))
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(0)).item())
    if kind == "apgd_ce":
        atk = torchattacks.APGD(model, norm="Linf", eps=AA_EPS / 255, steps=20, seed=seed, loss="ce")
    else:
        atk = torchattacks.APGDT(model, norm="Linf", eps=AA_EPS / 255, steps=20, seed=seed, n_classes=10)
    assert abs(ours - library_accuracy(model, atk, x, y)) <= 0.01


def test_autoattack_is_at_least_as_strong_as_pgd(trained):
    model, x, y = trained
    x, y = x[:100], y[:100]
    pgd = metrics.robust_accuracy(model, x, y, {"type": "pgd", "norm": "linf", "eps": AA_EPS, "rel_step": 0.25,
                                                "steps": 10})
    aa = metrics.robust_accuracy(model, x, y, {"type": "autoattack", "norm": "linf", "eps": AA_EPS, "steps": 10},
                                 generator=torch.Generator().manual_seed(1))
    assert aa <= pgd + 0.01, (aa, pgd)


def test_autoattack_leaves_the_model_mode_alone(trained):
    from normrobust import autoattack

    model, x, y = trained
    model = copy.deepcopy(model).train()  # a copy: in train mode BN's running statistics move
    autoattack.run(model, x[:8], y[:8], {"type": "apgd_ce", "norm": "linf", "eps": 8, "steps": 2})
    assert model.training  # torchattacks only ever sees the wrapper, whose mode it sets


@pytest.mark.parametrize("spec,why", [
    ({"type": "autoattack", "norm": "l1", "eps": 8}, "'norm' must be one of"),
    ({"type": "apgd_ce", "norm": "linf", "eps": 8, "step": 1}, "unknown key"),
    ({"type": "apgd_t", "norm": "linf", "eps": 8, "steps": 0}, "'steps' must be an integer >= 1"),
])
def test_autoattack_spec_errors_name_the_key(spec, why):
    from normrobust.attacks import parse_spec

    with pytest.raises(ValueError, match=why):
        parse_spec(spec)
