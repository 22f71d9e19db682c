"""Tests for normrobust.attacks: closed forms on linear models, ball/box constraints, loss
increase on a small trained model, restarts, spec units/errors, input-only gradients, attack_mode."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normrobust import attacks
from normrobust.attacks import attack, attack_mode, fgsm, parse_spec, pgd
from tiny import fit_mlp

torch.set_num_threads(1)

SHAPE = (1, 6, 6)  # tiny images: 36 pixels
D = 36


# ------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------
def _linear(n_classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Flatten(), nn.Linear(D, n_classes))
    with torch.no_grad():
        m[1].weight.normal_(0, 1.0)
        m[1].bias.normal_(0, 0.1)
    return m


def _interior_x(n: int, seed: int = 1) -> torch.Tensor:
    """Images in [0.3, 0.7]: far enough from 0/1 that no clipping happens for the eps used."""
    g = torch.Generator().manual_seed(seed)
    return 0.3 + 0.4 * torch.rand((n, *SHAPE), generator=g)


def _synthetic(n_per_class: int = 100, seed: int = 0):
    """3 separable classes: fixed random patterns + small noise, some pixels saturated at 0/1."""
    g = torch.Generator().manual_seed(seed)
    means = 0.35 + 0.3 * torch.rand((3, *SHAPE), generator=g)
    means[:, 0, 0, :] = 0.0  # saturated pixels so that clipping matters
    means[:, 0, -1, :] = 1.0
    y = torch.arange(3).repeat_interleave(n_per_class)
    x = (means[y] + 0.05 * torch.randn((3 * n_per_class, *SHAPE), generator=g)).clamp(0, 1)
    return x, y


@pytest.fixture(scope="module")
def trained():
    """A tiny MLP trained for ~200 full-batch Adam steps on the synthetic data (< 1 s)."""
    x, y = _synthetic()
    model = fit_mlp(x, y, classes=3)
    model.eval()
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95, acc
    return model, x, y


def _ce(model, x, y):
    with torch.no_grad():
        return F.cross_entropy(model(x), y, reduction="none")


def _assert_no_param_grads(model):
    for name, p in model.named_parameters():
        assert p.grad is None, f"attack wrote a gradient into parameter {name}"


# ------------------------------------------------------------------------------------------
# closed forms on linear models
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 5])
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_linear_closed_form(n_classes, targeted):
    model = _linear(n_classes)
    x = _interior_x(16)
    y = torch.arange(16) % n_classes
    eps = 0.05
    W, b = model[1].weight.detach(), model[1].bias.detach()
    p = torch.softmax(x.flatten(1) @ W.T + b, dim=1)
    grad = (p - F.one_hot(y, n_classes).float()) @ W  # ∇ₓ CE, analytically
    direction = -grad if targeted else grad
    expected = (x + eps * direction.sign().view_as(x)).clamp(0, 1)
    out = fgsm(model, x, y, eps, targeted=targeted)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # the perturbation really is a full-size step in every pixel (no clipping in the interior)
    assert torch.allclose((out - x).abs(), torch.full_like(x, eps), atol=1e-6)


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_one_step_equals_fgsm(trained, targeted):
    model, x, y = trained
    tgt = (y + 1) % 3 if targeted else y
    a = fgsm(model, x, tgt, 0.1, targeted=targeted)
    b = pgd(model, x, tgt, 0.1, 0.1, 1, norm="linf", targeted=targeted)
    assert torch.equal(a, b)


@pytest.mark.parametrize("random_start", [False, True])
@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_linf_linear_reaches_corner(random_start, targeted):
    model = _linear(2)
    x = _interior_x(8)
    eps = 0.05
    w = model[1].weight.detach()
    d = (w[1] - w[0]).view(1, *SHAPE)  # CE to class 0 grows along w1 - w0
    y = torch.ones(8, dtype=torch.long) if targeted else torch.zeros(8, dtype=torch.long)
    g = torch.Generator().manual_seed(3)
    out = pgd(model, x, y, eps, eps / 4, 10, norm="linf", targeted=targeted,
              random_start=random_start, generator=g)
    expected = x + eps * d.sign()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("targeted", [False, True])
def test_pgd_l2_linear_reaches_boundary_along_gradient(targeted):
    model = _linear(2)
    x = _interior_x(8)
    eps = 0.25  # at most 0.25 per pixel: stays inside [0.05, 0.95]
    w = model[1].weight.detach()
    d = (w[1] - w[0]).view(1, *SHAPE)
    y = torch.ones(8, dtype=torch.long) if targeted else torch.zeros(8, dtype=torch.long)
    out = pgd(model, x, y, eps, eps / 4, 10, norm="l2", targeted=targeted)
    expected = x + eps * d / d.norm()
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    assert torch.allclose((out - x).flatten(1).norm(dim=1), torch.full((8,), eps), atol=1e-5)


# ------------------------------------------------------------------------------------------
# every attack: ε-ball, [0,1], loss moves the right way, input-only gradients
# ------------------------------------------------------------------------------------------
_CASES = [("fgsm", "linf", t, False, 1) for t in (False, True)] + [
    ("pgd", norm, t, rs, r)
    for norm in ("linf", "l2")
    for t in (False, True)
    for rs in (False, True)
    for r in (1, 3)
]


@pytest.mark.parametrize("kind,norm,targeted,random_start,restarts", _CASES)
def test_attack_constraints_and_effect(trained, kind, norm, targeted, random_start, restarts):
    model, x, y = trained
    eps = 0.1 if norm == "linf" else 1.0
    target = (y + 1) % 3 if targeted else y
    g = torch.Generator().manual_seed(7)
    x0 = x.clone()
    if kind == "fgsm":
        out = fgsm(model, x, target, eps, targeted=targeted)
    else:
        out = pgd(model, x, target, eps, eps / 4, 10, norm=norm, targeted=targeted,
                  random_start=random_start, restarts=restarts, generator=g)
    assert torch.equal(x, x0), "input modified in place"
    assert out.shape == x.shape and out.dtype == x.dtype and not out.requires_grad
    assert out.min() >= 0 and out.max() <= 1
    delta = (out - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps + 1e-6).all(), size.max()
    assert (size > 0.5 * eps).float().mean() > 0.9  # it actually moved
    _assert_no_param_grads(model)

    before, after = _ce(model, x, target), _ce(model, out, target)
    if targeted:  # CE to the target falls, its probability rises
        assert (after < before).float().mean() > 0.95
        assert after.mean() < 0.7 * before.mean()
    else:  # CE to the true label rises, accuracy falls
        assert (after > before).float().mean() > 0.95
        assert after.mean() > 3 * before.mean()
        with torch.no_grad():
            assert (model(out).argmax(1) == y).float().mean() < 0.75


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_beats_fgsm_like_single_step(trained, norm):
    """More steps of the same budget raise the loss at least as much as one step (sanity)."""
    model, x, y = trained
    eps = 0.05 if norm == "linf" else 0.5
    one = pgd(model, x, y, eps, eps, 1, norm=norm)
    many = pgd(model, x, y, eps, eps / 4, 10, norm=norm)
    assert _ce(model, many, y).sum() >= _ce(model, one, y).sum()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_projection_is_into_the_ball_not_onto_its_surface(trained, norm):
    """Two steps of eps/4 travel at most eps/2: the projection must leave such points alone."""
    model, x, y = trained
    eps = 0.1 if norm == "linf" else 1.0
    out = pgd(model, x, y, eps, eps / 4, 2, norm=norm)
    delta = (out - x).flatten(1)
    size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
    assert (size <= eps / 2 + 1e-6).all()
    assert (size > 0.3 * eps).all()


# ------------------------------------------------------------------------------------------
# random start and restarts
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_random_start_in_ball_reproducible(norm):
    x = _interior_x(64)
    eps = 0.1 if norm == "linf" else 0.5
    s1 = attacks._random_start(x, eps, norm, torch.Generator().manual_seed(5))
    s2 = attacks._random_start(x, eps, norm, torch.Generator().manual_seed(5))
    s3 = attacks._random_start(x, eps, norm, torch.Generator().manual_seed(6))
    assert torch.equal(s1, s2) and not torch.equal(s1, s3)
    delta = (s1 - x).flatten(1)
    if norm == "linf":
        assert delta.abs().max() <= eps + 1e-6
        assert abs(delta.abs().mean().item() - eps / 2) < 0.05 * eps  # uniform in [-eps, eps]
        assert abs(delta.mean().item()) < 0.05 * eps
    else:
        r = delta.norm(dim=1)
        assert (r <= eps + 1e-6).all() and (r > 0).all()
        # uniform in the ball: P(r < eps * q) = q^d — median radius eps * 0.5^(1/36)
        assert abs(r.median().item() - eps * 0.5 ** (1 / D)) < 0.03 * eps
        # directions are spread out: the mean unit vector is short
        assert (delta / r[:, None]).mean(0).norm() < 0.4


@pytest.mark.parametrize("targeted", [False, True])
def test_restarts_keep_best_per_sample(trained, targeted):
    model, x, y = trained
    target = (y + 1) % 3 if targeted else y
    eps, R = 0.06, 4  # eps where some samples succeed and some do not
    kw = dict(norm="linf", targeted=targeted, random_start=True)
    multi = pgd(model, x, target, eps, eps / 4, 5, restarts=R, generator=torch.Generator().manual_seed(11), **kw)
    g = torch.Generator().manual_seed(11)  # same stream, drawn one restart at a time
    runs = [pgd(model, x, target, eps, eps / 4, 5, generator=g, **kw) for _ in range(R)]
    with torch.no_grad():
        logits = torch.stack([model(r) for r in runs])  # [R,N,K]
    loss = torch.stack([F.cross_entropy(lg, target, reduction="none") for lg in logits])
    pred = logits.argmax(2)
    succ = pred == target if targeted else pred != target
    # score: success first, then loss (higher untargeted / lower targeted); first index on ties
    key = succ.double() * 1e6 + (-loss if targeted else loss).double()
    best = key.argmax(0)
    expected = torch.stack(runs)[best, torch.arange(x.shape[0])]
    torch.testing.assert_close(multi, expected, rtol=0, atol=0)
    assert 0 < succ.any(0).float().mean() < 1, "test needs a mix of successful / failed samples"
    # and the kept point is never worse than the first restart
    first_key, multi_key = key[0], key[best, torch.arange(x.shape[0])]
    assert (multi_key >= first_key).all()


@pytest.mark.parametrize("targeted", [False, True])
def test_restart_selection_rule(targeted):
    """Success beats failure whatever the loss; among equals the better loss wins; ties keep."""
    lo, hi = 0.5, 2.0
    good, bad = (lo, hi) if targeted else (hi, lo)  # the loss a "better" restart has
    T, Fa = True, False
    succ = torch.tensor([T, Fa, T, Fa, T, T])
    loss = torch.tensor([bad, good, good, good, good, lo])
    best_succ = torch.tensor([Fa, T, T, Fa, T, T])
    best_loss = torch.tensor([good, bad, bad, bad, good, lo])
    take = attacks._take_candidate(succ, loss, best_succ, best_loss, targeted)
    assert take.tolist() == [True, False, True, True, False, False]


def test_restarts_without_random_start_are_one_run(trained):
    model, x, y = trained
    a = pgd(model, x, y, 0.05, 0.01, 5, restarts=3)
    b = pgd(model, x, y, 0.05, 0.01, 5)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------------------
# attack(spec): units and errors
# ------------------------------------------------------------------------------------------
def test_attack_spec_units(trained):
    model, x, y = trained
    x, y = x[:60], y[:60]
    assert torch.equal(attack(model, x, y, {"type": "fgsm", "norm": "linf", "eps": 8}), fgsm(model, x, y, 8 / 255))
    assert torch.equal(
        attack(model, x, y, {"type": "pgd", "norm": "linf", "eps": 8, "step": 2, "steps": 3}),
        pgd(model, x, y, 8 / 255, 2 / 255, 3, norm="linf"),
    )
    assert torch.equal(
        attack(model, x, y, {"type": "pgd", "norm": "linf", "eps": 8, "rel_step": 0.25, "steps": 3}),
        pgd(model, x, y, 8 / 255, 2 / 255, 3, norm="linf"),
    )
    assert torch.equal(
        attack(model, x, y, {"type": "pgd", "norm": "l2", "eps": 0.5, "rel_step": 0.4, "steps": 3}),
        pgd(model, x, y, 0.5, 0.2, 3, norm="l2"),
    )
    spec = {"type": "pgd", "norm": "l2", "eps": 0.5, "step": 0.1, "steps": 7, "targeted": True,
            "random_start": True, "restarts": 2}
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(
        attack(model, x, (y + 1) % 3, spec, generator=g1),
        pgd(model, x, (y + 1) % 3, 0.5, 0.1, 7, norm="l2", targeted=True, random_start=True, restarts=2, generator=g2),
    )
    p = parse_spec({"type": "pgd", "norm": "linf", "eps": 4, "rel_step": 0.25, "steps": 10})
    assert p["eps"] == pytest.approx(4 / 255) and p["step"] == pytest.approx(1 / 255) and p["steps"] == 10
    assert p["targeted"] is False and p["random_start"] is False and p["restarts"] == 1
    p = parse_spec({"type": "pgd", "norm": "l2", "eps": 0.25, "step": 0.1, "steps": 10})
    assert p["eps"] == 0.25 and p["step"] == 0.1
    out = attack(model, x, y, {"type": "fgsm", "norm": "linf", "eps": 8})
    assert (out - x).abs().max() == pytest.approx(8 / 255, abs=1e-6)


_BAD = [
    ({"type": "cw", "norm": "linf", "eps": 8}, "type"),
    ({"norm": "linf", "eps": 8}, "type"),
    ({"type": "pgd", "norm": "l1", "eps": 8, "step": 1, "steps": 3}, "norm"),
    ({"type": "pgd", "eps": 8, "step": 1, "steps": 3}, "norm"),
    ({"type": "pgd", "norm": "linf", "eps": 0, "step": 1, "steps": 3}, "eps"),
    ({"type": "pgd", "norm": "linf", "eps": -1, "step": 1, "steps": 3}, "eps"),
    ({"type": "pgd", "norm": "linf", "eps": [2, 4], "step": 1, "steps": 3}, "eps"),
    ({"type": "pgd", "norm": "linf", "step": 1, "steps": 3}, "eps"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 0}, "steps"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 2.5}, "steps"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1}, "steps"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "steps": 3}, "step"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "rel_step": 0.25, "steps": 3}, "step"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 0, "steps": 3}, "step"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "rel_step": -0.1, "steps": 3}, "rel_step"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 3, "restarts": 0}, "restarts"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 3, "targeted": "yes"}, "targeted"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 3, "random_start": 1}, "random_start"),
    ({"type": "pgd", "norm": "linf", "eps": 8, "step": 1, "steps": 3, "epsilon": 8}, "epsilon"),
    ({"type": "fgsm", "norm": "l2", "eps": 0.5}, "norm"),
    ({"type": "fgsm", "norm": "linf", "eps": 8, "steps": 3}, "steps"),
    ({"type": "fgsm", "norm": "linf", "eps": 8, "random_start": True}, "random_start"),
]


@pytest.mark.parametrize("spec,key", _BAD)
def test_attack_spec_errors(spec, key):
    model = _linear(3)
    x, y = _interior_x(2), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match=f"'{key}'"):
        attack(model, x, y, spec)


def test_direct_call_errors():
    model = _linear(3)
    x, y = _interior_x(2), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="norm"):
        pgd(model, x, y, 0.1, 0.01, 2, norm="l1")
    with pytest.raises(ValueError, match="eps"):
        fgsm(model, x, y, 0.0)
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, y, 0.1, 0.01, 0)


# ------------------------------------------------------------------------------------------
# input-only gradients
# ------------------------------------------------------------------------------------------
def test_gradients_wrt_input_only():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    model.eval()
    x, y = _interior_x(8), torch.arange(8) % 3
    x_req = x.clone().requires_grad_(True)  # even an input that requires grad gets no .grad
    fgsm(model, x_req, y, 0.1)
    pgd(model, x_req, y, 0.1, 0.02, 3, norm="l2", random_start=True, restarts=2)
    attack(model, x_req, y, {"type": "pgd", "norm": "linf", "eps": 4, "rel_step": 0.25, "steps": 2})
    _assert_no_param_grads(model)
    assert x_req.grad is None
    # existing parameter gradients are left exactly as they were
    F.cross_entropy(model(x), y).backward()
    saved = {n: p.grad.clone() for n, p in model.named_parameters()}
    pgd(model, x, y, 0.1, 0.02, 3)
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, saved[n]), n


# ------------------------------------------------------------------------------------------
# attack_mode
# ------------------------------------------------------------------------------------------
def _bn_model():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    with torch.no_grad():  # running stats far from any batch's statistics
        m[1].running_mean.fill_(0.7)
        m[1].running_var.fill_(3.0)
        m[1].num_batches_tracked.fill_(5)
    return m


def _buffers(m):
    return {n: b.clone() for n, b in m.named_buffers()}


@pytest.mark.parametrize("prior_train", [False, True])
def test_attack_mode_train_frozen(prior_train):
    model = _bn_model()
    model.train(prior_train)
    x, y = _interior_x(16), torch.arange(16) % 3
    before = _buffers(model)
    ref_train, ref_eval = copy.deepcopy(model).train(), copy.deepcopy(model).eval()
    with torch.no_grad():
        out_batch_stats, out_running_stats = ref_train(x), ref_eval(x)
    assert not torch.allclose(out_batch_stats, out_running_stats, atol=1e-3)
    with attack_mode(model, "train_frozen") as m:
        assert m is model
        assert all(mod.training for mod in model.modules())
        with torch.no_grad():
            out = model(x)
        torch.testing.assert_close(out, out_batch_stats)  # batch statistics in use
        x_adv = pgd(model, x, y, 0.1, 0.02, 5, random_start=True, restarts=2,
                    generator=torch.Generator().manual_seed(0))
    after = _buffers(model)
    for n in before:
        assert torch.equal(before[n], after[n]), f"buffer {n} changed"
    assert all(mod.training == prior_train for mod in model.modules())
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    # without the context, the same attack in train mode would have moved the running stats
    model.train()
    pgd(model, x, y, 0.1, 0.02, 2)
    assert not torch.equal(model[1].running_mean, before["1.running_mean"])


@pytest.mark.parametrize("prior_train", [False, True])
def test_attack_mode_eval(prior_train):
    model = _bn_model()
    model.train(prior_train)
    x, y = _interior_x(16), torch.arange(16) % 3
    before = _buffers(model)
    ref_eval = copy.deepcopy(model).eval()
    with attack_mode(model, "eval"):
        assert not any(mod.training for mod in model.modules())
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref_eval(x))  # running statistics in use
        pgd(model, x, y, 0.1, 0.02, 3)
    assert all(mod.training == prior_train for mod in model.modules())
    for n, b in _buffers(model).items():
        assert torch.equal(b, before[n])


@pytest.mark.parametrize("mode", ["eval", "train_frozen"])
def test_attack_mode_restores_mixed_modes_and_on_error(mode):
    model = _bn_model()
    model.train()
    model[1].eval()  # a mixed state must come back exactly
    flags = [m.training for m in model.modules()]
    before = _buffers(model)
    with pytest.raises(RuntimeError, match="boom"):
        with attack_mode(model, mode):
            model(_interior_x(8))  # updates running stats in train_frozen
            raise RuntimeError("boom")
    assert [m.training for m in model.modules()] == flags
    for n, b in _buffers(model).items():
        assert torch.equal(b, before[n])


def test_attack_mode_bad_mode():
    model = _bn_model()
    with pytest.raises(ValueError, match="train_frozen"):
        with attack_mode(model, "train"):
            pass
    assert model.training  # untouched


# ------------------------------------------------------------------------------------------
# device handling (only where a GPU exists)
# ------------------------------------------------------------------------------------------
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_with_cpu_generator_matches_cpu(trained):
    model, x, y = trained
    spec = {"type": "pgd", "norm": "l2", "eps": 0.5, "rel_step": 0.25, "steps": 5, "random_start": True}
    cpu = attack(model, x, y, spec, generator=torch.Generator().manual_seed(0))
    gpu_model = copy.deepcopy(model).cuda()
    gpu = attack(gpu_model, x.cuda(), y.cuda(), spec, generator=torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
    cuda_gen = torch.Generator(device="cuda").manual_seed(0)
    out = attack(gpu_model, x.cuda(), y.cuda(), spec, generator=cuda_gen)
    assert out.device.type == "cuda"
