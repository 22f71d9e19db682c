"""Evaluation metrics: accuracy, robust / noise accuracy, LIGS, NRF reliance.

Every function puts the model in eval mode for its duration (restoring each submodule's previous
mode afterwards), works in batches of ``batch_size`` on ``x``'s device, and returns Python floats
or dicts of them. With ``per_image=True``, :func:`accuracy`, :func:`noise_accuracy`, :func:`robust_eval`,
:func:`ligs` and :func:`nrf_reliance` also give their per-image outcomes, one float64 value per image of ``x`` in
order (NaN where an image has none) whose ``np.nanmean`` is the number returned: a float-valued function then returns
``(value, per_image)``, a dict-valued one adds ``*images`` keys (normrobust.perimage encodes them). The default
results are computed as before, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .attacks import attack, attack_mode, randn_like
from .settings import Attack

__all__ = [
    "predict",
    "accuracy",
    "robust_accuracy",
    "robust_eval",
    "noise_accuracy",
    "input_gradients",
    "ligs",
    "nrf_reliance",
]


def _batches(n: int, batch_size: int):
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size}")
    for i in range(0, n, int(batch_size)):
        yield slice(i, min(i + int(batch_size), n))


def _check_xy(x: Tensor, y: Tensor) -> None:
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"labels must have shape [{x.shape[0]}], got {tuple(y.shape)}")


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    out = [model(x[s]).argmax(1) for s in _batches(x.shape[0], batch_size)]
    if not out:
        return torch.empty(0, dtype=torch.long, device=x.device)
    return torch.cat(out)


def _sd(v: Tensor) -> float:
    """Sample standard deviation (ddof=1) of a 1-d tensor; nan with fewer than 2 values."""
    return float(v.double().std().item()) if v.numel() > 1 else math.nan


def _mean(mask: Tensor) -> float:
    return float(mask.double().mean().item()) if mask.numel() else math.nan


def _per_image(v: Tensor) -> np.ndarray:
    """A per-image tensor (bool or float) as a float64 numpy vector on the CPU."""
    return v.detach().double().cpu().numpy()


def predict(model: nn.Module, x: Tensor, *, batch_size: int = 512) -> Tensor:
    """Predicted labels (LongTensor [N] on x's device), model in eval mode."""
    with attack_mode(model, "eval"):
        return _predict(model, x, batch_size)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 512,
             per_image: bool = False) -> float | tuple[float, np.ndarray]:
    """Fraction of ``x`` classified as ``y`` (nan for an empty set); ``per_image``: ``(fraction, 1 right / 0
    wrong per image)``."""
    _check_xy(x, y)
    ok = predict(model, x, batch_size=batch_size) == y.to(x.device)
    return (_mean(ok), _per_image(ok)) if per_image else _mean(ok)


def robust_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    spec: Attack | dict,
    *,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
) -> float:
    """Fraction of samples classified correctly both clean and after the attack ``spec``.

    ``spec`` is a config attack spec (see :func:`normrobust.attacks.parse_spec`), attacks generated
    in eval mode. Counting a sample only when it is right on the clean image too (δ = 0 lies in the
    ball) guarantees robust accuracy <= clean accuracy. For a targeted spec each sample is attacked
    toward a uniformly random wrong label (drawn from ``generator``) and success is still judged
    against the ground truth ``y``.
    """
    return robust_eval(model, x, y, spec, batch_size=batch_size, generator=generator)["acc"]


def robust_eval(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    spec: Attack | dict,
    *,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    per_image: bool = False,
) -> dict:
    """:func:`robust_accuracy` (``acc``) and, from the same adversarial examples, the mean top-class
    softmax probability over all of them (``confidence``) and over the misclassified ones only
    (``wrong_confidence``, nan when none is misclassified): [G]'s "high confidence" of FGSM errors; ``n`` and
    ``n_wrong`` images behind them and the per-image standard deviations ``confidence_sd`` /
    ``wrong_confidence_sd`` (for standard errors). ``per_image`` adds ``acc_images`` (1 if right both clean and
    adversarial), ``confidence_images`` and ``wrong_confidence_images`` (NaN where the adversarial image is
    classified right)."""
    _check_xy(x, y)
    spec = Attack.of(spec)  # parsed once, not per batch
    y = y.to(x.device)
    correct, conf, wrong = [], [], []
    with attack_mode(model, "eval"):
        for s in _batches(x.shape[0], batch_size):
            xb, yb = x[s], y[s]
            with torch.no_grad():
                logits = model(xb)
            clean_ok = logits.argmax(1) == yb
            target = yb
            if spec.targeted:
                k = logits.shape[1]
                if k < 2:
                    raise ValueError("robust_accuracy: a targeted attack needs at least 2 classes")
                dev = generator.device if generator is not None else xb.device
                shift = torch.randint(1, k, yb.shape, generator=generator, device=dev).to(xb.device)
                target = (yb + shift) % k
            x_adv = attack(model, xb, target, spec, generator=generator)
            with torch.no_grad():
                prob = model(x_adv).float().softmax(1)
            top, pred = prob.max(1)
            adv_ok = pred == yb
            correct.append(clean_ok & adv_ok)
            conf.append(top)
            wrong.append(~adv_ok)
    if not correct:
        out = {"acc": math.nan, "confidence": math.nan, "wrong_confidence": math.nan, "n": 0, "n_wrong": 0,
               "confidence_sd": math.nan, "wrong_confidence_sd": math.nan}
        empty = np.zeros(0)
        return {**out, "acc_images": empty, "confidence_images": empty, "wrong_confidence_images": empty} \
            if per_image else out
    conf_t, wrong_t = torch.cat(conf).double(), torch.cat(wrong)
    cw = conf_t[wrong_t]
    out = {"acc": _mean(torch.cat(correct)), "confidence": float(conf_t.mean()),
           "wrong_confidence": float(cw.mean()) if len(cw) else math.nan,
           "n": int(len(conf_t)), "n_wrong": int(len(cw)), "confidence_sd": _sd(conf_t),
           "wrong_confidence_sd": _sd(cw)}
    if per_image:
        out["acc_images"], out["confidence_images"] = _per_image(torch.cat(correct)), _per_image(conf_t)
        out["wrong_confidence_images"] = _per_image(torch.where(wrong_t, conf_t, math.nan))
    return out


def noise_accuracy(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    std: float,
    *,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    per_image: bool = False,
) -> float | tuple[float, np.ndarray]:
    """Accuracy on clip(x + N(0, std²), 0, 1). The noise is drawn once for the whole set (so the
    result does not depend on ``batch_size``). ``per_image``: ``(accuracy, 1 right / 0 wrong per image)``."""
    _check_xy(x, y)
    if not std >= 0:
        raise ValueError(f"noise_accuracy: std must be >= 0, got {std}")
    x_noisy = (x + std * randn_like(x, generator)).clamp(0.0, 1.0) if std > 0 else x
    return accuracy(model, x_noisy, y, batch_size=batch_size, per_image=per_image)


def _input_grads(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """∇ₓ CE(f(x), y) with sum reduction (per-sample gradients in eval mode); input only."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        (g,) = torch.autograd.grad(loss, x)
    return g.detach()


def input_gradients(model: nn.Module, x: Tensor, y: Tensor, *, batch_size: int = 512) -> Tensor:
    """Per-sample input gradients ∇ₓ CE(f(x), y), shape of ``x``, model in eval mode."""
    _check_xy(x, y)
    y = y.to(x.device)
    with attack_mode(model, "eval"):
        parts = [_input_grads(model, x[s], y[s]) for s in _batches(x.shape[0], batch_size)]
    return torch.cat(parts) if parts else torch.zeros_like(x)


def ligs(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    sigma: float = 0.01,
    batch_size: int = 512,
    generator: torch.Generator | None = None,
    per_image: bool = False,
) -> dict:
    """Local Input Gradient Similarity ([B]; docs/science.md).

    g(x) = ∇ₓ CE(f(x), y) w.r.t. the raw [0,1] input, ground-truth label, model in eval mode;
    v ~ N(0, σ²I), one draw per image, not clipped; LIGS = mean over samples of
    cos(g(x), g(x+v)) on the flattened gradients. Pairs whose cosine is not finite (a zero or
    non-finite gradient) are dropped and counted. x and x+v go through the model in one forward
    pass per batch. The noise is drawn once for the whole set, so the result does not depend on
    ``batch_size``.

    Returns ``{"ligs": mean cosine (nan if none kept), "sd": per-image standard deviation of the cosine,
    "n": kept, "dropped": dropped}``; ``per_image`` adds ``images``, the cosine per image (NaN for a dropped pair).
    """
    _check_xy(x, y)
    if not sigma >= 0:
        raise ValueError(f"ligs: sigma must be >= 0, got {sigma}")
    y = y.to(x.device)
    v = sigma * randn_like(x, generator)
    cosines, dropped, every = [], 0, []
    with attack_mode(model, "eval"):
        for s in _batches(x.shape[0], batch_size):
            xb, yb = x[s], y[s]
            b = xb.shape[0]
            g = _input_grads(model, torch.cat([xb, xb + v[s]]), torch.cat([yb, yb]))
            g = g.flatten(1).double()
            g1, g2 = g[:b], g[b:]
            # plain formula (no eps clamp as in F.cosine_similarity): a zero gradient gives nan
            cos = (g1 * g2).sum(1) / (g1.norm(dim=1) * g2.norm(dim=1))
            ok = torch.isfinite(cos)
            cosines.append(cos[ok])
            dropped += int((~ok).sum().item())
            if per_image:
                every.append(torch.where(ok, cos, math.nan))
    c = torch.cat(cosines) if cosines else torch.zeros(0, dtype=torch.float64)
    kept = int(c.numel())
    out = {"ligs": float(c.sum().item()) / kept if kept else math.nan, "sd": _sd(c), "n": kept, "dropped": dropped}
    if per_image:
        out["images"] = _per_image(torch.cat(every)) if every else np.zeros(0)
    return out


def nrf_reliance(
    model: nn.Module,
    x_conflict: Tensor,
    y_rf: Tensor,
    y_nrf: Tensor,
    *,
    batch_size: int = 512,
    per_image: bool = False,
) -> dict:
    """Reliance on non-robust features, on a counterfactual set whose images carry the robust
    feature of class ``y_rf`` and the non-robust feature of class ``y_nrf``.

    Returns ``{"rf_rate": P(pred == y_rf), "nrf_rate": P(pred == y_nrf),
    "reliance": nrf_rate / (rf_rate + nrf_rate) (nan if both are 0), "n": number of images}``; ``per_image`` adds
    ``rf_images`` (1 if pred == y_rf), ``nrf_images`` (1 if pred == y_nrf) and ``reliance_images`` (1 if the NRF's
    class, 0 if the RF's, NaN if neither; an image whose two classes are one, which a conflict set never holds, gives
    0.5 there and the nanmean is then not ``reliance``).
    """
    _check_xy(x_conflict, y_rf)
    _check_xy(x_conflict, y_nrf)
    pred = predict(model, x_conflict, batch_size=batch_size)
    rf_ok, nrf_ok = pred == y_rf.to(pred.device), pred == y_nrf.to(pred.device)
    rf, nrf = _mean(rf_ok), _mean(nrf_ok)
    denom = rf + nrf
    reliance = nrf / denom if denom > 0 else math.nan
    out = {"rf_rate": rf, "nrf_rate": nrf, "reliance": reliance, "n": int(x_conflict.shape[0])}
    if per_image:
        r, v = _per_image(rf_ok), _per_image(nrf_ok)
        with np.errstate(invalid="ignore"):
            out.update(rf_images=r, nrf_images=v, reliance_images=v / (r + v))  # 0 / 0: NaN
    return out
