"""Adversarial attacks in [0,1] pixel space: FGSM and PGD (L∞ / L2), batched; AutoAttack's APGD-CE, APGD-T and
standard ensemble through torchattacks (normrobust.autoattack).

Conventions
-----------
* Images are float tensors in [0,1], shape [B,C,H,W]; input normalisation is the model's first
  layer, so every attack perturbs raw pixels and clips to [0,1].
* Gradients are taken with respect to the input only (``torch.autograd.grad(loss, x_adv)``); no
  parameter ``.grad`` is ever written, and autograd skips the weight gradients.
* Losses are computed on fp32 logits (``.float()``: a no-op in fp32, the cast back under bf16 autocast).
* The loss is cross-entropy with ``reduction="sum"``, so in eval mode each sample's gradient is its
  own (it does not shrink with the batch size).
* Untargeted attacks maximise CE(f(x'), y); targeted attacks minimise CE(f(x'), y_target) (then ``y``
  *is* the target label).
* Attacks never change the model's mode: the caller picks it, e.g. with :func:`attack_mode`.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import autoattack
from .attack_specs import AUTOATTACK_TYPES, NORMS, TYPES, parse_spec
from .settings import Attack

__all__ = [
    "fgsm",
    "pgd",
    "attack",
    "parse_spec",
    "attack_mode",
    "rand_like",
    "randn_like",
    "NORMS",
    "TYPES",
    "MODES",
]

MODES = ("eval", "train_frozen")

# Smallest norm we divide by in the L2 step; a zero gradient gives a zero step, never NaN.
_TINY = 1e-12


# --------------------------------------------------------------------------------------------
# random draws that honour an optional generator on any device
# --------------------------------------------------------------------------------------------
def _draw(kind: str, shape, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``rand``/``randn`` of ``shape`` with ``like``'s dtype and device, from ``generator`` if given.

    A generator on another device than ``like`` (e.g. a CPU generator for CUDA data) draws on its
    own device and the result is moved, so the stream is the same whichever device the data is on.
    """
    fn = torch.rand if kind == "rand" else torch.randn
    shape = tuple(shape)
    if generator is None:
        return fn(shape, dtype=like.dtype, device=like.device)
    out = fn(shape, dtype=like.dtype, device=generator.device, generator=generator)
    return out.to(like.device)


def rand_like(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Uniform [0,1) noise shaped like ``like`` (see :func:`_draw` for the generator rules)."""
    return _draw("rand", like.shape, like, generator)


def randn_like(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard normal noise shaped like ``like`` (see :func:`_draw` for the generator rules)."""
    return _draw("randn", like.shape, like, generator)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _flat_norm(t: Tensor) -> Tensor:
    """Per-sample L2 norm, shaped [B,1,1,...] for broadcasting."""
    n = t.flatten(1).norm(p=2, dim=1)
    return n.view(-1, *([1] * (t.dim() - 1)))


def _project(x_adv: Tensor, x: Tensor, eps: float, norm: str) -> Tensor:
    """Project onto the ε-ball around ``x`` (in ``norm``), then clip to [0,1].

    Clipping after the projection keeps the point inside the ball: for x in [0,1], clipping a
    coordinate to [0,1] only moves it towards x.
    """
    delta = x_adv - x
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        n = _flat_norm(delta)
        delta = delta * torch.clamp(eps / n.clamp_min(_TINY), max=1.0)
    return (x + delta).clamp(0.0, 1.0)


def _grad(model: nn.Module, x_adv: Tensor, y: Tensor, targeted: bool) -> Tensor:
    """Gradient of the attack objective w.r.t. the input (ascent direction)."""
    x_adv = x_adv.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x_adv).float(), y, reduction="sum")  # fp32 loss under autocast
        if targeted:
            loss = -loss
        (g,) = torch.autograd.grad(loss, x_adv)
    return g.detach()


def _random_start(x: Tensor, eps: float, norm: str, generator: torch.Generator | None) -> Tensor:
    """Uniform point of the ε-ball around x (then clipped to [0,1]).

    L∞: each coordinate uniform in [-ε, ε]. L2: uniform in the ball's volume — a uniform direction
    (normalised Gaussian) times a radius ε·U^(1/d), d = number of pixels per sample.
    """
    if norm == "linf":
        delta = (2.0 * rand_like(x, generator) - 1.0) * eps
    else:
        direction = randn_like(x, generator)
        direction = direction / _flat_norm(direction).clamp_min(_TINY)
        d = x[0].numel()
        u = _draw("rand", (x.shape[0],), x, generator)
        radius = eps * u.pow(1.0 / d)
        delta = direction * radius.view(-1, *([1] * (x.dim() - 1)))
    return (x + delta).clamp(0.0, 1.0)


def _check_inputs(x: Tensor, y: Tensor) -> None:
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a float tensor in [0,1], got dtype {x.dtype}")
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape [{x.shape[0]}], got {tuple(y.shape)}")


# --------------------------------------------------------------------------------------------
# attacks
# --------------------------------------------------------------------------------------------
def fgsm(model: nn.Module, x: Tensor, y: Tensor, eps: float, *, targeted: bool = False) -> Tensor:
    """FGSM (Goodfellow et al.): x' = clip(x ± eps·sign(∇ₓ CE(f(x), y)), 0, 1).

    ``eps`` is absolute (pixel units). Untargeted ascends CE to ``y``; targeted descends CE to the
    target ``y``. One step of size eps, no random start.
    """
    _check_inputs(x, y)
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    x = x.detach()
    g = _grad(model, x, y, targeted)
    return (x + eps * g.sign()).clamp(0.0, 1.0).detach()


def _pgd_once(model, x, y, eps, step, steps, norm, targeted, random_start, generator) -> Tensor:
    x_adv = _random_start(x, eps, norm, generator) if random_start else x.clone()
    for _ in range(steps):
        g = _grad(model, x_adv, y, targeted)
        if norm == "linf":
            x_adv = x_adv + step * g.sign()
        else:
            x_adv = x_adv + step * g / _flat_norm(g).clamp_min(_TINY)
        x_adv = _project(x_adv, x, eps, norm)
    return x_adv.detach()


@torch.no_grad()
def _score(model, x_adv, y, targeted):
    """Per-sample (success, loss) of an adversarial batch; loss is CE to y (maximised untargeted,
    minimised targeted)."""
    logits = model(x_adv).float()
    loss = F.cross_entropy(logits, y, reduction="none")
    pred = logits.argmax(1)
    success = (pred == y) if targeted else (pred != y)
    return success, loss


def _take_candidate(succ: Tensor, loss: Tensor, best_succ: Tensor, best_loss: Tensor, targeted: bool) -> Tensor:
    """Per sample: does a new restart (succ, loss) replace the kept one (best_succ, best_loss)?

    Success wins over failure; between equals the higher CE (untargeted) / lower CE to the target
    (targeted) wins; exact ties keep the kept one.
    """
    better_loss = (loss < best_loss) if targeted else (loss > best_loss)
    return (succ & ~best_succ) | ((succ == best_succ) & better_loss)


def pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    eps: float,
    step: float,
    steps: int,
    *,
    norm: str = "linf",
    targeted: bool = False,
    random_start: bool = False,
    restarts: int = 1,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Projected gradient descent (Madry et al.), L∞ or L2, all values absolute (pixel units).

    L∞: x ← clip(Π_ball(x + step·sign(g)), 0, 1). L2: x ← clip(Π_ball(x + step·g/‖g‖₂), 0, 1) with a
    per-sample normalised gradient (zero gradient → zero step). The final iterate of each restart is
    returned.

    Restarts (only meaningful with ``random_start``; without it every restart would be identical,
    so a single run is made): per sample, a successful restart (untargeted: misclassified;
    targeted: classified as the target) beats an unsuccessful one; among equals, the one with the
    highest CE to ``y`` (untargeted) / lowest CE to the target (targeted) is kept; ties keep the
    earlier restart. Restarts draw from ``generator`` one after another.
    """
    _check_inputs(x, y)
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps}")
    if int(restarts) != restarts or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts}")
    x = x.detach()
    n_runs = int(restarts) if random_start else 1

    best = _pgd_once(model, x, y, eps, step, int(steps), norm, targeted, random_start, generator)
    if n_runs == 1:
        return best
    best_succ, best_loss = _score(model, best, y, targeted)
    for _ in range(n_runs - 1):
        cand = _pgd_once(model, x, y, eps, step, int(steps), norm, targeted, True, generator)
        succ, loss = _score(model, cand, y, targeted)
        take = _take_candidate(succ, loss, best_succ, best_loss, targeted)
        mask = take.view(-1, *([1] * (x.dim() - 1)))
        best = torch.where(mask, cand, best)
        best_succ = torch.where(take, succ, best_succ)
        best_loss = torch.where(take, loss, best_loss)
    return best


def attack(model: nn.Module, x: Tensor, y: Tensor, spec: Attack | dict, *,
           generator: torch.Generator | None = None) -> Tensor:
    """Run the attack ``spec`` (an :class:`~normrobust.settings.Attack`, parsed once; or a config spec, parsed here:
    see :func:`parse_spec` for keys and units).

    With ``targeted: true``, ``y`` is the target label.
    """
    a = Attack.of(spec)
    if a.type == "fgsm":
        return fgsm(model, x, y, a.eps, targeted=a.targeted)
    if a.type in AUTOATTACK_TYPES:  # seeded from the generator, so a run is repeatable
        seed = 0 if generator is None else int(
            torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device).item())
        return autoattack.run(model, x, y, a.spec, seed=seed)
    return pgd(model, x, y, a.eps, a.step, a.steps, norm=a.norm, targeted=a.targeted, random_start=a.random_start,
               restarts=a.restarts, generator=generator)


# --------------------------------------------------------------------------------------------
# model mode while attacking
# --------------------------------------------------------------------------------------------
@contextmanager
def attack_mode(model: nn.Module, mode: str):
    """Put ``model`` in the mode used to generate attacks, and restore everything afterwards.

    * ``"eval"``: ``model.eval()`` (norm layers use their running statistics).
    * ``"train_frozen"``: ``model.train()`` (norm layers use batch statistics, dropout is active),
      but every buffer (BatchNorm running mean/var, num_batches_tracked, ...) is snapshotted and
      restored on exit, so generating the attack never changes them.

    On exit (also on error) each submodule's previous ``training`` flag is restored.
    """
    if mode not in MODES:
        raise ValueError(f"attack_mode: mode must be one of {list(MODES)}, got {mode!r}")
    flags = [(m, m.training) for m in model.modules()]
    snapshot = None
    try:
        if mode == "eval":
            model.eval()
        else:
            snapshot = [
                (m, name, b, b.detach().clone())
                for m in model.modules()
                for name, b in m._buffers.items()
                if b is not None
            ]
            model.train()
        yield model
    finally:
        if snapshot is not None:
            with torch.no_grad():
                for m, name, b, saved in snapshot:
                    b.copy_(saved)
                    m._buffers[name] = b  # also undoes a buffer that was replaced, not updated
        for m, flag in flags:
            m.training = flag
