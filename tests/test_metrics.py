"""Tests for normrobust.metrics: predict/accuracy on known outputs, robust and noise accuracy,
input gradients, LIGS (exact PAPER.md definition), NRF reliance."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normrobust import metrics
from normrobust.metrics import accuracy, input_gradients, ligs, noise_accuracy, nrf_reliance, predict, robust_accuracy
from tiny import fit_mlp

torch.set_num_threads(1)

SHAPE = (1, 6, 6)
D = 36


class Identity(nn.Module):
    """Logits are the flattened input: predictions are known by construction. Records the mode
    it was called in."""

    def __init__(self):
        super().__init__()
        self.seen_training = []

    def forward(self, x):
        self.seen_training.append(self.training)
        return x.flatten(1)


class Rule(nn.Module):
    """Two classes, logits [s, 0] with s = relu(sum(x) - t): zero input gradient where sum(x) < t."""

    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, x):
        s = torch.relu(x.flatten(1).sum(1) - self.t)
        return torch.stack([s, torch.zeros_like(s)], 1)


class Constant(nn.Module):
    def __init__(self):
        super().__init__()
        self.b = nn.Parameter(torch.tensor([0.3, -0.2, 0.1]))

    def forward(self, x):
        return self.b.expand(x.shape[0], -1) + 0 * x.flatten(1).sum(1, keepdim=True)


def _linear2(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(D, 2))


def _curvy(seed=0):
    """A random tanh MLP with huge first-layer weights: its input gradient turns within σ = 0.01."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(D, 128), nn.Tanh(), nn.Linear(128, 3))
    with torch.no_grad():
        m[1].weight.mul_(300)
        m[1].bias.copy_(-0.5 * m[1].weight.sum(1))  # units centred on the data
    return m


def _bn_cnn(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():
        m[1].running_mean.fill_(0.3)
        m[1].running_var.fill_(2.0)
    return m


def _x(n, seed=1):
    return torch.rand((n, *SHAPE), generator=torch.Generator().manual_seed(seed))


def _y(n, k=3, seed=2):
    return torch.randint(0, k, (n,), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def trained():
    g = torch.Generator().manual_seed(0)
    means = 0.35 + 0.3 * torch.rand((3, *SHAPE), generator=g)
    y = torch.arange(3).repeat_interleave(100)
    x = (means[y] + 0.05 * torch.randn((300, *SHAPE), generator=g)).clamp(0, 1)
    return fit_mlp(x, y, classes=3), x, y


# ------------------------------------------------------------------------------------------
# predict / accuracy
# ------------------------------------------------------------------------------------------
def test_predict_and_accuracy_known_outputs():
    model = Identity().train()
    logits = torch.tensor(
        [[0.9, 0.1, 0.0], [0.0, 0.2, 0.8], [0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.0, 0.1, 0.3],
         [0.3, 0.6, 0.1], [0.2, 0.1, 0.7]]
    )  # argmax: 0 2 1 0 2 1 2
    x = logits.view(7, 3, 1, 1)
    pred = predict(model, x, batch_size=3)
    assert pred.dtype == torch.long and pred.tolist() == [0, 2, 1, 0, 2, 1, 2]
    assert len(model.seen_training) == 3  # batches of 3, 3, 1
    assert not any(model.seen_training), "predict must run in eval mode"
    assert model.training, "previous mode must be restored"
    y = torch.tensor([0, 2, 0, 0, 1, 1, 2])  # 5 of 7 right
    for bs in (1, 2, 512):
        acc = accuracy(model, x, y, batch_size=bs)
        assert isinstance(acc, float) and acc == pytest.approx(5 / 7)
    assert accuracy(model, x, torch.tensor([1, 0, 0, 1, 0, 0, 0])) == 0.0
    assert accuracy(model, x, pred) == 1.0


def test_accuracy_uses_eval_mode_for_batchnorm():
    model = _bn_cnn().train()
    x, y = _x(20), _y(20)
    before = copy.deepcopy(model.state_dict())
    ref = copy.deepcopy(model).eval()
    with torch.no_grad():
        expected = (ref(x).argmax(1) == y).double().mean().item()
    assert accuracy(model, x, y, batch_size=7) == pytest.approx(expected)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


# ------------------------------------------------------------------------------------------
# robust / noise accuracy
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [
        {"type": "fgsm", "norm": "linf", "eps": 16},
        {"type": "pgd", "norm": "linf", "eps": 16, "rel_step": 0.25, "steps": 5},
        {"type": "pgd", "norm": "l2", "eps": 1.0, "rel_step": 0.25, "steps": 5, "random_start": True},
        {"type": "pgd", "norm": "l2", "eps": 1.0, "rel_step": 0.25, "steps": 5, "targeted": True},
    ],
)
def test_robust_accuracy_below_accuracy(trained, spec):
    model, x, y = trained
    model.train()
    clean = accuracy(model, x, y, batch_size=128)
    rob = robust_accuracy(model, x, y, spec, batch_size=128, generator=torch.Generator().manual_seed(0))
    assert isinstance(rob, float)
    assert 0.0 <= rob < clean - 0.1, (rob, clean)
    assert model.training
    for p in model.parameters():
        assert p.grad is None


def test_robust_accuracy_tiny_eps_equals_accuracy(trained):
    model, x, y = trained
    spec = {"type": "pgd", "norm": "linf", "eps": 1e-6, "rel_step": 0.25, "steps": 2}
    assert robust_accuracy(model, x, y, spec, batch_size=100) == pytest.approx(accuracy(model, x, y))


def test_noise_accuracy(trained):
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert noise_accuracy(model, x, y, 0.0, generator=torch.Generator().manual_seed(0)) == clean
    a = noise_accuracy(model, x, y, 0.3, batch_size=64, generator=torch.Generator().manual_seed(0))
    b = noise_accuracy(model, x, y, 0.3, batch_size=512, generator=torch.Generator().manual_seed(0))
    assert a == b  # reproducible, independent of batch size
    assert a < clean - 0.1
    with pytest.raises(ValueError, match="std"):
        noise_accuracy(model, x, y, -0.1)


def test_noise_accuracy_is_clipped():
    """Pixels pushed outside [0,1] are clipped: with logits = pixels, clipping decides the class."""
    model = Identity()
    x = torch.tensor([[1.0, 0.0]]).repeat(200, 1).view(200, 2, 1, 1)
    y = torch.zeros(200, dtype=torch.long)
    # unclipped, class 1 wins whenever noise_1 - noise_0 > 1 (~ 24% at std 1); clipped it needs
    # pixel_1 > pixel_0 i.e. noise_0 < 0 and a larger noise_1 (~ still possible, but rarer)
    acc = noise_accuracy(model, x, y, 1.0, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    xn = x + torch.randn(x.shape, generator=g)
    unclipped = (xn.flatten(1).argmax(1) == 0).double().mean().item()
    clipped = (xn.clamp(0, 1).flatten(1).argmax(1) == 0).double().mean().item()
    assert clipped != unclipped
    assert acc == pytest.approx(clipped)


# ------------------------------------------------------------------------------------------
# input gradients
# ------------------------------------------------------------------------------------------
def test_input_gradients_per_sample_eval_mode():
    model = _bn_cnn().train()
    x, y = _x(10), _y(10)
    before = copy.deepcopy(model.state_dict())
    g = input_gradients(model, x, y)
    assert g.shape == x.shape and not g.requires_grad
    ref = copy.deepcopy(model).eval()
    for i in range(10):  # one sample at a time, eval mode
        xi = x[i : i + 1].clone().requires_grad_(True)
        (gi,) = torch.autograd.grad(F.cross_entropy(ref(xi), y[i : i + 1]), xi)
        torch.testing.assert_close(g[i : i + 1], gi, rtol=1e-4, atol=1e-7)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for p in model.parameters():
        assert p.grad is None


# ------------------------------------------------------------------------------------------
# LIGS
# ------------------------------------------------------------------------------------------
def _ligs_reference(model, x, y, sigma, seed):
    """Straight from PAPER.md, one sample at a time: v ~ N(0, σ²I) drawn for the whole set from the
    seeded generator, not clipped; cos of flattened CE input gradients; eval mode; drop non-finite."""
    model = copy.deepcopy(model).eval()
    v = sigma * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    cos = []
    for i in range(x.shape[0]):
        gs = []
        for xi in (x[i : i + 1], x[i : i + 1] + v[i : i + 1]):
            xi = xi.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(xi), y[i : i + 1]), xi)
            gs.append(g.flatten().double())
        c = (gs[0] @ gs[1]) / (gs[0].norm() * gs[1].norm())
        cos.append(c.item())
    kept = [c for c in cos if math.isfinite(c)]
    return sum(kept) / len(kept) if kept else math.nan, len(kept), len(cos) - len(kept)


@pytest.mark.parametrize("sigma", [0.01, 0.5])
def test_ligs_linear_two_class_is_one(sigma):
    model = _linear2()
    x, y = _x(50), _y(50, k=2)
    out = ligs(model, x, y, sigma=sigma, batch_size=16, generator=torch.Generator().manual_seed(0))
    assert set(out) >= {"ligs", "n", "dropped"}
    assert isinstance(out["ligs"], float) and isinstance(out["n"], int) and isinstance(out["dropped"], int)
    assert out["ligs"] == pytest.approx(1.0, abs=1e-5)
    assert out["n"] == 50 and out["dropped"] == 0


def test_ligs_uses_ground_truth_label():
    """Points on a 2-class linear model's decision boundary: with the ground-truth label every
    cosine is +1; an implementation using the predicted label would see sign flips (cos = -1)."""
    model = _linear2()
    w, b = model[1].weight.detach(), model[1].bias.detach()
    d = (w[1] - w[0])
    x = _x(40).flatten(1)
    x = x - ((x @ d + (b[1] - b[0])) / (d @ d))[:, None] * d  # project onto the boundary
    x = x.view(40, *SHAPE)
    y = _y(40, k=2)
    out = ligs(model, x, y, sigma=0.05, generator=torch.Generator().manual_seed(0))
    assert out["ligs"] == pytest.approx(1.0, abs=1e-5)


def test_ligs_curved_model_is_lower():
    model = _curvy()
    x, y = _x(100), _y(100)
    out = ligs(model, x, y, generator=torch.Generator().manual_seed(0))
    assert out["ligs"] < 0.9
    assert out["n"] + out["dropped"] == 100


def test_ligs_matches_reference_definition():
    """Agrees with a per-sample implementation of the definition, on a nonlinear BN model in
    train mode (LIGS must use eval mode) with pixels at 0 and 1 (the noise must not be clipped)."""
    model = _bn_cnn().train()
    x = _x(24)
    x[:12] = (x[:12] > 0.5).float()  # half the images are all-0/1 pixels
    y = _y(24)
    before = copy.deepcopy(model.state_dict())
    out = ligs(model, x, y, sigma=0.2, batch_size=5, generator=torch.Generator().manual_seed(4))
    ref, n, dropped = _ligs_reference(model, x, y, 0.2, 4)
    assert out["ligs"] == pytest.approx(ref, abs=1e-5)
    assert (out["n"], out["dropped"]) == (n, dropped) == (24, 0)
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for p in model.parameters():
        assert p.grad is None


def test_ligs_drops_zero_gradients():
    x, y = _x(30), _y(30)
    out = ligs(Constant(), x, y, generator=torch.Generator().manual_seed(0))
    assert out["n"] == 0 and out["dropped"] == 30 and math.isnan(out["ligs"])
    # half the samples sit where the gradient is zero, the others where it is a constant vector
    x = torch.cat([torch.full((10, *SHAPE), 0.2), torch.full((14, *SHAPE), 0.8)])
    y = torch.cat([torch.zeros(12, dtype=torch.long), torch.ones(12, dtype=torch.long)])
    out = ligs(Rule(t=18.0), x, y, batch_size=7, generator=torch.Generator().manual_seed(0))
    assert out["dropped"] == 10 and out["n"] == 14
    assert out["ligs"] == pytest.approx(1.0, abs=1e-6)


def test_ligs_batch_size_invariant_and_reproducible():
    model = _curvy()
    x, y = _x(60), _y(60)
    runs = [ligs(model, x, y, batch_size=bs, generator=torch.Generator().manual_seed(9)) for bs in (7, 60, 512)]
    for r in runs[1:]:
        assert r["ligs"] == pytest.approx(runs[0]["ligs"], abs=1e-6)
        assert (r["n"], r["dropped"]) == (runs[0]["n"], runs[0]["dropped"])
    other = ligs(model, x, y, generator=torch.Generator().manual_seed(10))
    assert other["ligs"] != pytest.approx(runs[0]["ligs"], abs=1e-6)
    ref, _, _ = _ligs_reference(model, x, y, 0.01, 9)
    assert runs[0]["ligs"] == pytest.approx(ref, abs=1e-4)


# ------------------------------------------------------------------------------------------
# NRF reliance
# ------------------------------------------------------------------------------------------
def test_nrf_reliance_hand_made():
    model = Identity()
    # predictions 0,0,0,1,1,2,2,2,2,2 (one-hot logits)
    pred = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    x = F.one_hot(pred, 3).float().view(10, 3, 1, 1)
    y_rf = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    y_nrf = torch.tensor([1, 1, 1, 1, 1, 2, 2, 0, 0, 0])
    # pred == y_rf: samples 0,1,2 -> 0.3 ; pred == y_nrf: samples 3,4,5,6 -> 0.4
    out = nrf_reliance(model, x, y_rf, y_nrf, batch_size=4)
    assert out["rf_rate"] == pytest.approx(0.3)
    assert out["nrf_rate"] == pytest.approx(0.4)
    assert out["reliance"] == pytest.approx(0.4 / 0.7)
    none = nrf_reliance(model, x, (pred + 1) % 3, (pred + 2) % 3)
    assert none["rf_rate"] == 0 and none["nrf_rate"] == 0 and math.isnan(none["reliance"])
    full = nrf_reliance(model, x, (pred + 1) % 3, pred)
    assert full["reliance"] == 1.0


def test_bad_batch_size_and_shapes():
    model = Identity()
    x = torch.rand(4, 3, 1, 1)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, x, batch_size=0)
    with pytest.raises(ValueError, match="labels"):
        accuracy(model, x, torch.zeros(3, dtype=torch.long))
    assert math.isnan(metrics.accuracy(model, x[:0], torch.zeros(0, dtype=torch.long)))  # empty set


# ------------------------------------------------------------------------------------------
# per-image outcomes
# ------------------------------------------------------------------------------------------
def _same(a: dict, b: dict) -> bool:
    """Equal to the bit, NaN equal to NaN."""
    return a.keys() == b.keys() and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


SPECS = [{"type": "pgd", "norm": "linf", "eps": 16, "rel_step": 0.25, "steps": 3, "random_start": True},
         {"type": "pgd", "norm": "l2", "eps": 1.0, "rel_step": 0.25, "steps": 3, "targeted": True}]


def test_per_image_outcomes_give_back_the_numbers_which_stay_as_they_were(trained):
    """per_image=True adds each image's outcome (in order; NaN where none) and changes no number: the same random
    streams are drawn."""
    import numpy as np

    model, x, y = trained
    acc, each = accuracy(model, x, y, batch_size=64, per_image=True)
    assert acc == accuracy(model, x, y, batch_size=64) and each.shape == (300,) and each.mean() == acc
    assert set(np.unique(each)) <= {0.0, 1.0}
    for spec in SPECS:
        plain = metrics.robust_eval(model, x, y, spec, batch_size=64, generator=torch.Generator().manual_seed(3))
        full = metrics.robust_eval(model, x, y, spec, batch_size=64, generator=torch.Generator().manual_seed(3),
                                   per_image=True)
        assert _same({k: v for k, v in full.items() if not k.endswith("images")}, plain)
        assert full["acc_images"].mean() == plain["acc"] and (full["acc_images"] <= each).all()
        assert full["confidence_images"].mean() == pytest.approx(plain["confidence"], abs=1e-12)
        wrong = full["wrong_confidence_images"]
        assert (~np.isnan(wrong)).sum() == plain["n_wrong"]
        assert np.nanmean(wrong) == pytest.approx(plain["wrong_confidence"], abs=1e-12)
    noisy, each = noise_accuracy(model, x, y, 0.3, batch_size=64, generator=torch.Generator().manual_seed(0),
                                 per_image=True)
    assert noisy == noise_accuracy(model, x, y, 0.3, batch_size=64, generator=torch.Generator().manual_seed(0))
    assert each.mean() == noisy


def test_ligs_per_image_is_the_cosine_with_nan_for_a_dropped_pair():
    import numpy as np

    x = torch.cat([torch.full((10, *SHAPE), 0.2), torch.full((14, *SHAPE), 0.8)])
    y = torch.cat([torch.zeros(12, dtype=torch.long), torch.ones(12, dtype=torch.long)])
    plain = ligs(Rule(t=18.0), x, y, batch_size=7, generator=torch.Generator().manual_seed(0))
    full = ligs(Rule(t=18.0), x, y, batch_size=7, generator=torch.Generator().manual_seed(0), per_image=True)
    assert _same({k: v for k, v in full.items() if k != "images"}, plain)
    assert np.isnan(full["images"][:10]).all() and np.isfinite(full["images"][10:]).all()
    model, x, y = _curvy(), _x(60), _y(60)
    out = ligs(model, x, y, batch_size=7, generator=torch.Generator().manual_seed(9), per_image=True)
    assert out["ligs"] == ligs(model, x, y, batch_size=7, generator=torch.Generator().manual_seed(9))["ligs"]
    assert np.nanmean(out["images"]) == pytest.approx(out["ligs"], abs=1e-12) and len(out["images"]) == 60


def test_nrf_reliance_per_image_hand_made():
    import numpy as np

    pred = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    x = F.one_hot(pred, 3).float().view(10, 3, 1, 1)
    y_rf = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    y_nrf = torch.tensor([1, 1, 1, 1, 1, 2, 2, 0, 0, 0])
    out = nrf_reliance(Identity(), x, y_rf, y_nrf, batch_size=4, per_image=True)
    np.testing.assert_array_equal(out["rf_images"], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(out["nrf_images"], [0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    nan = math.nan
    np.testing.assert_array_equal(out["reliance_images"], [0, 0, 0, 1, 1, 1, 1, nan, nan, nan])
    assert np.nanmean(out["reliance_images"]) == pytest.approx(out["reliance"])
    assert out["rf_images"].mean() == out["rf_rate"] and out["nrf_images"].mean() == out["nrf_rate"]
