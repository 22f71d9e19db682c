"""Synthetic images with a known robust and a known non-robust feature (E5; docs/science.md).

x = clip(0.5 + RF[rf_y] + NRF[nrf_y] + N(0, noise_std²), 0, 1) as uint8; amplitudes in 1/255 units.
RF: a smooth coloured pattern made only of the 9 lowest real Fourier functions per channel (constant, cos/sin
of one cycle per image), peak `rf_amplitude` (64); the K patterns are exactly orthogonal and flattened toward
their peak, so the ideal RF classifier needs an L∞ change of ~30/255 (≫ ε = 8/255) to flip. It is the label's
with probability `rf_agreement` (0.75), otherwise a uniformly random other class's; on the test split with
probability `test_rf_agreement` (default: `rf_agreement`; 1.0 makes every test image's RF its label's, so a reader of
the RF scores 100 % and any loss is NRF use or the attack).
Faint images: a share ``rf_faint_share`` (default 0) of the images of both splits, drawn at random, carry their RF at
the smaller amplitude ``rf_faint_amplitude`` instead (default ``rf_amplitude`` / 8), as some real images show their
class only faintly: an attack of a given ε erases the RF of the faint images first, so even a reader of the RF alone
loses robust accuracy gradually with ε rather than all at once at one flip point. The counterfactual sets keep each
test image's amplitude.
NRF: one or more *families* of textures, family j of amplitude ``nrf_amplitude[j]`` (a number gives one family):
each a ±amplitude texture, one ``nrf_tile``×``nrf_tile`` tile repeated over the image; per channel each (family,
class) has its own non-constant Walsh-Hadamard tile with a random sign, so all F·K textures are exactly orthogonal
to each other and (tile-periodic, zero-mean: only ≥ 2 cycles per image) to every RF; F·K ≤ nrf_tile² − 1. Two
textures of a family differ by 2·amplitude on half the pixels, so any L∞ attack with ε > amplitude swaps them:
every family is non-robust at every ε above the largest amplitude. Families of different amplitude let reliance on
NRFs be graded: a model may read the strong family and not the weak one. A texture, unlike a fixed per-pixel
pattern, is learnable by translation-equivariant CNNs. All families carry the same class, which agrees with the
label with probability ``nrf_agreement`` (1.0): it predicts the label better than the RF. A family's SNR =
amplitude·sqrt(3·S²)/noise_std (≈ 10 at amplitude 3, 16×16, σ = 8).
Counterfactual test sets: RF only, NRF only (all families), RF of y with the NRF of another class; with F > 1
families also, per family j, ``nrf_only_f{j}`` (family j alone) and ``conflict_f{j}`` (RF of y, family j of
another class, no other family). `ideal_predict` reads one feature family exactly, at any amplitude. All
randomness derives from `seed` (one stream per purpose); no per-image loops.
"""

from __future__ import annotations

import math
import numbers

import torch

from normrobust.data import GENERATED_DEFAULTS
from normrobust.utils import seeded_generator

NRF_TILES = (4, 8)  # allowed sides of the NRF texture tile; image_size must be a multiple of it
NRF_TILE = NRF_TILES[0]  # the default
MAX_CLASSES = NRF_TILES[-1] ** 2 - 1  # distinct non-constant Walsh tiles per channel → exact orthogonality
_RF_FREQS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (fy, fx) in cycles per image, plus the constant
_RF_SATURATION_STEPS = 30
_CHUNK = 8192  # images per in-place update (bounds temporary memory; does not change the result)
# purpose keys of the independent random streams (see normrobust.utils.seeded_generator)
_STREAM_TEMPLATES, _STREAM_TRAIN, _STREAM_TEST, _STREAM_COUNTERFACTUAL, _STREAM_FAINT = 0, 1, 2, 3, 4


def generate(*, seed: int = 0, n_train: int = GENERATED_DEFAULTS["n_train"],
             n_test: int = GENERATED_DEFAULTS["n_test"], image_size: int = GENERATED_DEFAULTS["image_size"],
             num_classes: int = GENERATED_DEFAULTS["num_classes"], rf_amplitude: float = 64,
             nrf_amplitude: float | list = 3, noise_std: float = 8, rf_agreement: float = 0.75,
             nrf_agreement: float = 1.0, nrf_tile: int = NRF_TILE, test_rf_agreement: float | None = None,
             rf_faint_share: float = 0.0, rf_faint_amplitude: float | None = None) -> dict:
    """Build the dataset; amplitudes and noise in 1/255 units. See the module docstring for the design."""
    params = dict(seed=seed, n_train=n_train, n_test=n_test, image_size=image_size, num_classes=num_classes,
                  rf_amplitude=rf_amplitude, nrf_amplitude=nrf_amplitude, noise_std=noise_std,
                  rf_agreement=rf_agreement, nrf_agreement=nrf_agreement, nrf_tile=nrf_tile,
                  test_rf_agreement=rf_agreement if test_rf_agreement is None else test_rf_agreement,
                  rf_faint_share=rf_faint_share,
                  rf_faint_amplitude=rf_amplitude / 8 if rf_faint_amplitude is None else rf_faint_amplitude)
    params = _validate(params)
    K, S, amps = params["num_classes"], params["image_size"], nrf_amplitudes(params)
    sigma = params["noise_std"] / 255.0

    g_templates = seeded_generator(params["seed"], _STREAM_TEMPLATES)
    rf = (_rf_templates(K, S, g_templates) * (params["rf_amplitude"] / 255.0)).float()  # [K, 3*S*S]
    walsh = _nrf_templates(len(amps), K, S, params["nrf_tile"], g_templates)  # [F, K, 3*S*S], ±1
    families = walsh * (torch.tensor(amps, dtype=torch.float64) / 255.0)[:, None, None]
    nrf = families.sum(0).float()  # every family of class k: the texture an image of NRF class k carries

    g_faint = seeded_generator(params["seed"], _STREAM_FAINT)  # its own stream: without faint images, as before
    faint_scale = params["rf_faint_amplitude"] / params["rf_amplitude"]

    def rf_scales(n: int) -> torch.Tensor | None:
        """Each image's RF amplitude as a share of rf_amplitude (None: every image at full amplitude)."""
        if not params["rf_faint_share"]:
            return None
        faint = torch.rand(n, generator=g_faint, dtype=torch.float64) < params["rf_faint_share"]
        return torch.where(faint, faint_scale, 1.0).float()

    def split(n: int, stream: int, rf_agreement: float) -> tuple[dict, torch.Tensor | None]:
        """The split's tensors, and each image's RF scale (None: all full), which its counterfactuals keep."""
        g = seeded_generator(params["seed"], stream)
        y = torch.arange(n, dtype=torch.int64).remainder(K)[torch.randperm(n, generator=g)]  # balanced
        rf_y = _maybe_other(y, rf_agreement, K, g)
        nrf_y = _maybe_other(y, params["nrf_agreement"], K, g)
        scale = rf_scales(n)
        x = _render(rf, rf_y, nrf, nrf_y, sigma, g, rf_scale=scale)
        out = {"x": x, "y": y, "rf_y": rf_y, "nrf_y": nrf_y}
        if scale is not None:
            out["rf_faint"] = scale < 1
        return out, scale

    train, _ = split(params["n_train"], _STREAM_TRAIN, params["rf_agreement"])
    test, test_scale = split(params["n_test"], _STREAM_TEST, params["test_rf_agreement"])

    g = seeded_generator(params["seed"], _STREAM_COUNTERFACTUAL)
    y = test["y"]
    y_nrf = (y + 1 + torch.randint(0, K - 1, y.shape, generator=g)).remainder(K)
    counterfactual = {
        "rf_only": {"x": _render(rf, y, None, None, sigma, g, rf_scale=test_scale), "y": y.clone()},
        "nrf_only": {"x": _render(None, None, nrf, y, sigma, g), "y": y.clone()},
        "conflict": {"x": _render(rf, y, nrf, y_nrf, sigma, g, rf_scale=test_scale), "y": y.clone(), "y_nrf": y_nrf},
    }
    if len(amps) > 1:  # per family: read alone, and against the RF (drawn after the above: they stay unchanged)
        for j, fam in enumerate(families.float()):
            counterfactual[f"nrf_only_f{j}"] = {"x": _render(None, None, fam, y, sigma, g), "y": y.clone()}
            counterfactual[f"conflict_f{j}"] = {"x": _render(rf, y, fam, y_nrf, sigma, g, rf_scale=test_scale),
                                                "y": y.clone(),
                                                "y_nrf": y_nrf}

    mean, std = _channel_stats(train["x"])
    return {
        "train": train,
        "test": test,
        "counterfactual": counterfactual,
        "templates": {"rf": rf.reshape(K, 3, S, S), "nrf": nrf.reshape(K, 3, S, S),
                      "nrf_families": families.float().reshape(len(amps), K, 3, S, S)},
        "meta": {"name": "generated", "num_classes": K, "shape": [3, S, S], "mean": mean, "std": std,
                 "params": params},
    }


def nrf_amplitudes(params: dict) -> list[float]:
    """The NRF families' amplitudes (1/255 units) of a generated dataset's settings: a number is one family."""
    a = params.get("nrf_amplitude", 3)
    return [float(v) for v in a] if isinstance(a, (list, tuple)) else [float(a)]


def template_scores(x: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """Scores ⟨x − 0.5, t_k⟩ − ½‖t_k‖² of images against one template family ([N, K], float64).

    This is the Bayes-optimal linear read-out of that feature alone under Gaussian noise. ``x`` is uint8
    (0..255) or float in [0,1], shape [N, 3, S, S]; ``templates`` is [K, 3, S, S] in [0,1] units.
    """
    x = x.to(torch.float64) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float64)
    t = templates.to(torch.float64).reshape(templates.shape[0], -1)
    return (x.reshape(x.shape[0], -1) - 0.5) @ t.T - 0.5 * t.pow(2).sum(1)


def ideal_predict(x: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """The ideal classifier that reads only one feature (RF or NRF): the template most correlated with the image,
    argmax of ⟨x − 0.5, t_k⟩ / ‖t_k‖. It assumes no amplitude, so it reads a faint image's RF as surely as a full
    one's (the score of :func:`template_scores` assumes the templates' own amplitude: on faint images its −½‖t_k‖²
    term, which differs between the RF templates, outweighs the faint RF and it read 75 % of them right). With equal
    template norms (the NRF textures) the two choose the same class."""
    x = x.to(torch.float64) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float64)
    t = templates.to(torch.float64).reshape(templates.shape[0], -1)
    return ((x.reshape(x.shape[0], -1) - 0.5) @ (t / t.norm(dim=1, keepdim=True)).T).argmax(1)


# --------------------------------------------------------------------------------------------- internals

def _render(rf, rf_y, nrf, nrf_y, sigma, g, rf_scale: torch.Tensor | None = None) -> torch.Tensor:
    """0.5 + rf_scale·rf[rf_y] + nrf[nrf_y] + N(0, sigma²), clipped, as uint8 [N, 3, S, S] (None drops a term;
    ``rf_scale``: each image's RF amplitude as a share of the templates', None for all 1)."""
    y = rf_y if rf_y is not None else nrf_y
    n, d = y.shape[0], (rf if rf is not None else nrf).shape[1]
    S = math.isqrt(d // 3)
    x = torch.randn(n, d, generator=g, dtype=torch.float32)
    x.mul_(sigma).add_(0.5)
    for lo in range(0, n, _CHUNK):
        hi = min(n, lo + _CHUNK)
        if rf is not None:
            x[lo:hi] += rf[rf_y[lo:hi]] if rf_scale is None else rf[rf_y[lo:hi]] * rf_scale[lo:hi, None]
        if nrf is not None:
            x[lo:hi] += nrf[nrf_y[lo:hi]]
    x.mul_(255.0).round_().clamp_(0, 255)
    return x.to(torch.uint8).reshape(n, 3, S, S)


def _maybe_other(y: torch.Tensor, agreement: float, K: int, g: torch.Generator) -> torch.Tensor:
    """y with probability ``agreement``, else a uniformly random class other than y."""
    keep = torch.rand(y.shape, generator=g, dtype=torch.float64) < agreement
    other = (y + 1 + torch.randint(0, K - 1, y.shape, generator=g)).remainder(K)
    return torch.where(keep, y, other)


def _rf_basis(S: int) -> torch.Tensor:
    """Orthonormal low-frequency basis of one channel: [9, S*S] (constant, cos/sin of one cycle)."""
    i = torch.arange(S, dtype=torch.float64)
    yy, xx = torch.meshgrid(i, i, indexing="ij")
    funcs = [torch.full((S, S), 1.0 / S, dtype=torch.float64)]
    for fy, fx in _RF_FREQS:
        phase = 2 * math.pi * (fy * yy + fx * xx) / S
        funcs += [torch.cos(phase) * math.sqrt(2) / S, torch.sin(phase) * math.sqrt(2) / S]
    return torch.stack(funcs).reshape(len(funcs), S * S)


def _polar(m: torch.Tensor) -> torch.Tensor:
    """Nearest matrix with orthonormal columns (polar factor)."""
    u, _, vh = torch.linalg.svd(m, full_matrices=False)
    return u @ vh


def _rf_templates(K: int, S: int, g: torch.Generator) -> torch.Tensor:
    """K exactly orthogonal smooth patterns [K, 3*S*S], each with peak |value| 1.

    Random orthonormal coefficients in the 27-dim low-frequency space, then a few rounds of "saturate
    toward ±1, project back to the nearest orthonormal set": flatter patterns with more energy per unit of
    peak, which roughly doubles the L∞ distance an attack needs to cross between two RFs.
    """
    basis = torch.block_diag(*([_rf_basis(S)] * 3))  # [27, 3*S*S]
    q = _polar(torch.randn(basis.shape[0], K, generator=g, dtype=torch.float64))
    for _ in range(_RF_SATURATION_STEPS):
        r = q.T @ basis
        r = (1.5 * r / r.abs().amax(1, keepdim=True)).clamp(-1, 1)
        q = _polar(basis @ r.T)
    r = q.T @ basis
    return r / r.abs().amax(1, keepdim=True)


def _hadamard(n: int) -> torch.Tensor:
    """Sylvester Hadamard matrix of order n (a power of 2), ±1."""
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def _nrf_templates(F: int, K: int, S: int, tile: int, g: torch.Generator) -> torch.Tensor:
    """F·K exactly orthogonal ±1 textures [F, K, 3*S*S]: per channel a distinct tile×tile Walsh tile per
    (family, class), random sign. With one family of 4×4 tiles the draws are those of the single-family design."""
    h = _hadamard(tile)
    walsh = torch.einsum("ai,bj->abij", h, h).reshape(tile * tile, tile, tile)[1:]  # the non-constant ones
    n = F * K
    rows = torch.stack([torch.randperm(tile * tile - 1, generator=g)[:n] for _ in range(3)], 1)  # [F*K, 3]
    signs = torch.randint(0, 2, (n, 3, 1, 1), generator=g).to(torch.float64) * 2 - 1
    tiles = walsh[rows] * signs  # [F*K, 3, tile, tile]
    reps = S // tile
    return tiles.repeat(1, 1, reps, reps).reshape(F, K, 3 * S * S)


def _channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std of uint8 images, in [0,1] units (via a 256-bin histogram)."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    mean, std = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64)
        p = counts / counts.sum()
        m = float((p * levels).sum())
        mean.append(m)
        std.append(float((p * (levels - m).pow(2)).sum().sqrt()))
    return mean, std


def _validate(p: dict) -> dict:
    def fail(name: str, allowed: str) -> None:
        raise ValueError(f"generated dataset: '{name}' must be {allowed}, got {p[name]!r}")

    def integer(name: str, lo: int, hi: int | None = None) -> None:
        v = p[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo or (hi is not None and v > hi):
            fail(name, f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}")
        p[name] = int(v)

    def real(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
        v = p[name]
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) \
            and (v > lo if lo_open else v >= lo) and v <= hi
        if not ok:
            fail(name, f"a number in {'(' if lo_open else '['}{lo}, {hi}]")
        p[name] = float(v)

    integer("seed", 0)
    integer("n_train", 1)
    integer("n_test", 1)
    if p["nrf_tile"] not in NRF_TILES:
        fail("nrf_tile", f"one of {', '.join(map(str, NRF_TILES))}")
    tile = p["nrf_tile"]
    integer("num_classes", 2, tile * tile - 1)
    integer("image_size", 2 * tile)
    if p["image_size"] % tile:
        fail("image_size", f"a multiple of nrf_tile ({tile}), >= {2 * tile}")
    real("rf_amplitude", 0, 127, lo_open=True)
    amps = p["nrf_amplitude"]
    if isinstance(amps, (list, tuple)):
        ok = len(amps) >= 1 and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                                    and 0 < v <= 127 for v in amps)
        if not ok:
            fail("nrf_amplitude", "a number in (0, 127] or a non-empty list of them (one NRF family each)")
        p["nrf_amplitude"] = [float(v) for v in amps]
        if len(amps) * p["num_classes"] > tile * tile - 1:
            fail("nrf_amplitude", f"at most {(tile * tile - 1) // p['num_classes']} families for "
                                  f"{p['num_classes']} classes with nrf_tile {tile} (families × classes ≤ "
                                  f"{tile * tile - 1}; nrf_tile 8 allows {63 // p['num_classes']})")
        if len(amps) == 1:
            p["nrf_amplitude"] = p["nrf_amplitude"][0]
    else:
        real("nrf_amplitude", 0, 127, lo_open=True)
    real("noise_std", 0, 255)
    real("rf_agreement", 0, 1)
    real("test_rf_agreement", 0, 1)
    real("nrf_agreement", 0, 1)
    real("rf_faint_share", 0, 1)
    real("rf_faint_amplitude", 0, p["rf_amplitude"], lo_open=True)
    return p
