"""Training regimes: each objective does what its paper says."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import tiny
from normrobust import train
from normrobust.data.loading import build_dataset
from normrobust.settings import History, Regime, Training
from normrobust.utils import save_torch

GEN = {"kind": "generated", "seed": 5, "n_train": 200, "n_test": 60, "image_size": 8}
PGD = {"type": "pgd", "norm": "linf", "eps": 8, "step": 4, "steps": 2, "random_start": True}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "gen.pt"
    save_torch(build_dataset("generated", dict(GEN)), path)
    return str(path)


def settings(norm="none", regime=None, epochs=2, optimizer="sgd", schedule=None):
    regime = {"name": "r", "attack": None, "attack_mode": "eval", **(regime or {})}
    return {
        "cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": "r", "seed": 0},
        "arch": {"kind": "cnn", "widths": [8, 16]},
        "regime": regime,
        "training": {"epochs": epochs, "batch_size": 50, "lr": 0.05, "optimizer": optimizer,
                     "schedule": schedule or {"kind": "constant"},
                     "history": {"n_test": 20, "attack": {"type": "fgsm", "norm": "linf", "eps": 4}}},
        "device": "cpu",
    }


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_weighted_objective_spans_clean_and_adversarial_training(data_file, tmp_path):
    """Goodfellow's J~ = a J(x) + (1-a) J(x+eta): a = 1 is standard training, a = 0 adversarial-only."""
    tiny.train(settings(), data_file, tmp_path / "std")
    tiny.train(settings(regime={"attack": PGD}), data_file, tmp_path / "adv")
    tiny.train(settings(regime={"attack": PGD, "objective": "weighted", "clean_weight": 1.0}), data_file,
                tmp_path / "w1")
    tiny.train(settings(regime={"attack": PGD, "objective": "weighted", "clean_weight": 0.0}), data_file,
                tmp_path / "w0")
    tiny.train(settings(regime={"attack": PGD, "objective": "weighted", "clean_weight": 0.5}), data_file,
                tmp_path / "w5")
    std, adv = weights(tmp_path / "std" / "model.pt"), weights(tmp_path / "adv" / "model.pt")
    w1, w0, w5 = (weights(tmp_path / d / "model.pt") for d in ("w1", "w0", "w5"))
    assert same(w1, std)
    assert same(w0, adv)
    assert not same(w5, std) and not same(w5, adv)


def test_mixed_sends_clean_and_adversarial_through_one_shared_norm(data_file, tmp_path, monkeypatch):
    seen = []
    real = train.build_model

    def spy(*a, **k):
        model = real(*a, **k)
        bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        bn.register_forward_hook(lambda m, i, o: seen.append((m.training, i[0].shape[0])))
        return model

    monkeypatch.setattr(train, "build_model", spy)
    tiny.train(settings(norm="bn", epochs=1, regime={"attack": PGD, "objective": "mixed"}), data_file, tmp_path / "m")
    train_batches = [n for training, n in seen if training]
    assert train_batches and set(train_batches) == {100}, "clean + adversarial (2 x 50) in one batch"


def test_targeted_training_attack_goes_to_a_random_wrong_label():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 10))
    x, y = torch.rand(64, 3, 4, 4), torch.randint(0, 10, (64,))
    spec = {"type": "pgd", "norm": "l2", "eps": 0.5, "step": 0.1, "steps": 7, "targeted": True}
    g = torch.Generator().manual_seed(1)
    x_adv = train.make_adversarial(model, x, y, Regime.from_config("r", {"attack": spec}), g, aux=False, num_classes=10)
    g = torch.Generator().manual_seed(1)
    target = (y + torch.randint(1, 10, y.shape, generator=g)) % 10
    assert (target != y).all()
    with torch.no_grad():
        before = F.cross_entropy(model(x), target, reduction="none")
        after = F.cross_entropy(model(x_adv), target, reduction="none")
    assert (after < before).float().mean() > 0.95
    assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()


def test_ligs_penalty_is_zero_for_a_linear_two_class_model_and_differentiable():
    torch.manual_seed(0)
    x, y = torch.rand(16, 3, 4, 4), torch.randint(0, 2, (16,))
    lin = nn.Sequential(nn.Flatten(), nn.Linear(48, 2))
    g = torch.Generator().manual_seed(0)
    assert train.ligs_penalty(lin, x, y, 0.01, g).item() == pytest.approx(0.0, abs=1e-5)
    curved = nn.Sequential(nn.Flatten(), nn.Linear(48, 64), nn.Tanh(), nn.Linear(64, 2))
    with torch.no_grad():
        for p in curved.parameters():
            p.mul_(20)
    pen = train.ligs_penalty(curved, x, y, 0.5, torch.Generator().manual_seed(0))
    assert pen.item() > 0.01
    pen.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in curved.parameters())


def test_ligs_regularisation_trains(data_file, tmp_path):
    h = tiny.train(settings(regime={"objective": "ligs_reg", "ligs_weight": 1.0}), data_file, tmp_path / "l")
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in h if r["epoch"] >= 1)  # epoch 0: initialisation


@pytest.mark.parametrize("optimizer, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                            ("adagrad", torch.optim.Adagrad)])
def test_optimizers(optimizer, cls):
    model = nn.Linear(3, 2)
    tr = Training(epochs=1, batch_size=8, lr=0.1, history=History(0), optimizer=optimizer)
    assert isinstance(train.make_optimizer(model, tr), cls)


def test_cosine_schedule_anneals_to_zero(data_file, tmp_path):
    h = tiny.train(settings(epochs=3, schedule={"kind": "cosine"}), data_file, tmp_path / "c")
    assert [r["lr"] for r in h if r["epoch"] >= 1] == pytest.approx([0.05, 0.0375, 0.0125])


def test_attack_mode_is_recorded_in_the_checkpoint(data_file, tmp_path):
    tiny.train(settings(norm="bn", epochs=1, regime={"attack": PGD, "attack_mode": "train_frozen"}), data_file,
            tmp_path / "f")
    state = torch.load(tmp_path / "f" / "model.pt", weights_only=True)
    assert state["attack_mode"] == "train_frozen"
