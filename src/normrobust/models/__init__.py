"""Model registry: ``build_model(arch_cfg, norm, meta, aux_norm=False)`` and ``check_compatible``.

Every model starts with its input normalisation (``InputNorm``), so it takes images in
[0,1] and every attack works in pixel space.

Arch config: ``kind`` plus its settings (defaults in brackets)

  cnn     widths [16, 32, 64], convs_per_stage [1]
  resnet  blocks [1 per stage], widths [16, 32, 64]   (ResNet-18: blocks [2,2,2,2], widths [64,128,256,512])
  vgg     layers [16] ∈ {11, 13, 16, 19}
  linear  (nothing of its own; norm must be none)
  maxout  hidden [240, 240], pieces [5], dropout [0.0]     (norm none or bn)

and, for every kind,

  width       [1.0]  multiplier of channel widths / hidden units (rounded half up, >= 1)
  depth       [1.0]  multiplier of blocks per stage (resnet) / convs per stage (cnn, vgg) (rounded half up, >= 1)
  activation  [relu] one of ACTIVATIONS

``width``, ``depth`` and ``activation`` must stay at their defaults where they would have no
effect (linear: all three; maxout: depth and activation), so a setting is never silently ignored.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

from .activations import ACTIVATIONS, activation_class
from .auxnorm import DualNorm, add_aux_norms, has_aux, use_aux
from .cnn import SmallCNN
from .mlp import LinearClassifier, MaxoutNet
from .norms import LAYER_NORMS, NORMS, is_norm_layer, make_norm
from .resnet import ResNet
from .vgg import VGG, VGG_STAGES

ARCH_KINDS = ("cnn", "resnet", "vgg", "linear", "maxout")
COMMON_KEYS = ("kind", "width", "depth", "activation")
KIND_KEYS = {
    "cnn": ("widths", "convs_per_stage"),
    "resnet": ("blocks", "widths"),
    "vgg": ("layers",),
    "linear": (),
    "maxout": ("hidden", "pieces", "dropout"),
}
KIND_NORMS = {
    "cnn": ("none", "bn", "ln", "in", "gn"),
    "resnet": NORMS,
    "vgg": ("none", "bn", "ln", "in", "gn"),
    "linear": ("none",),
    "maxout": ("none", "bn"),
}


class InputNorm(nn.Module):
    """(x - mean) / std per channel, as the model's first layer."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


# --------------------------------------------------------------------------- config → settings

def _scale(n: int, mult: float) -> int:
    """``n`` times a multiplier, rounded half up, at least 1 (exactly ``n`` for 1.0)."""
    return max(1, math.floor(n * mult + 0.5))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pos_int(v) -> bool:
    return _is_int(v) and v >= 1


def _pos_int_list(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(_pos_int(x) for x in v)


def _pos_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def _resolve(arch: dict) -> dict:
    """Validate an arch config and return its resolved settings (multipliers applied).

    Raises ValueError with the reason only (the caller adds which arch and norm)."""
    if not isinstance(arch, dict):
        raise ValueError(f"arch config must be a mapping with a 'kind', got {type(arch).__name__}")
    kind = arch.get("kind")
    if kind not in ARCH_KINDS:
        raise ValueError(f"arch kind: unknown '{kind}' (allowed: {', '.join(ARCH_KINDS)})")
    allowed = COMMON_KEYS + KIND_KEYS[kind]
    extra = [k for k in arch if k not in allowed]
    if extra:
        raise ValueError(f"kind '{kind}' has no key '{extra[0]}' (allowed: {', '.join(allowed)})")
    width, depth = arch.get("width", 1.0), arch.get("depth", 1.0)
    act = arch.get("activation", "relu")
    if not _pos_number(width):
        raise ValueError(f"width: must be a positive number (channel/unit multiplier), got {width!r}")
    if not _pos_number(depth):
        raise ValueError(f"depth: must be a positive number (blocks/convs multiplier), got {depth!r}")
    if act not in ACTIVATIONS:
        raise ValueError(f"activation: unknown '{act}' (allowed: {', '.join(ACTIVATIONS)})")
    if kind == "linear" and width != 1:
        raise ValueError(f"width: {width!r} has no effect on kind 'linear' (leave it at 1)")
    if kind in ("linear", "maxout") and depth != 1:
        raise ValueError(f"depth: {depth!r} has no effect on kind '{kind}' (leave it at 1)")
    if kind in ("linear", "maxout") and act != "relu":
        why = "it has no hidden layer" if kind == "linear" else "maxout units are their own nonlinearity"
        raise ValueError(f"activation: '{act}' has no effect on kind '{kind}' ({why}; leave it at relu)")
    s: dict = {"kind": kind, "act": activation_class(act)}
    if kind in ("cnn", "resnet"):
        widths = arch.get("widths", [16, 32, 64])
        if not _pos_int_list(widths):
            raise ValueError(f"widths: must be a non-empty list of positive integers, got {widths!r}")
        s["widths"] = tuple(_scale(w, width) for w in widths)
    if kind == "cnn":
        cps = arch.get("convs_per_stage", 1)
        if not _pos_int(cps):
            raise ValueError(f"convs_per_stage: must be a positive integer, got {cps!r}")
        s["convs_per_stage"] = _scale(cps, depth)
    elif kind == "resnet":
        blocks = arch.get("blocks", [1] * len(s["widths"]))
        if not _pos_int_list(blocks):
            raise ValueError(f"blocks: must be a non-empty list of positive integers, got {blocks!r}")
        if len(blocks) != len(s["widths"]):
            raise ValueError(f"blocks {list(blocks)} and widths {list(arch.get('widths', [16, 32, 64]))} "
                             f"must have the same length")
        s["blocks"] = tuple(_scale(b, depth) for b in blocks)
    elif kind == "vgg":
        layers = arch.get("layers", 16)
        if not _is_int(layers) or layers not in VGG_STAGES:
            raise ValueError(f"layers: must be one of {', '.join(map(str, VGG_STAGES))}, got {layers!r}")
        s["stages"] = tuple((_scale(c, width), _scale(n, depth)) for c, n in VGG_STAGES[layers])
    elif kind == "maxout":
        hidden, pieces, dropout = arch.get("hidden", [240, 240]), arch.get("pieces", 5), arch.get("dropout", 0.0)
        if not _pos_int_list(hidden):
            raise ValueError(f"hidden: must be a non-empty list of positive integers, got {hidden!r}")
        if not _pos_int(pieces):
            raise ValueError(f"pieces: must be a positive integer, got {pieces!r}")
        if not (isinstance(dropout, Real) and not isinstance(dropout, bool) and 0 <= dropout < 1):
            raise ValueError(f"dropout: must be a number in [0, 1), got {dropout!r}")
        s.update(hidden=tuple(_scale(h, width) for h in hidden), pieces=pieces, dropout=float(dropout))
    return s


def _check_norm(kind: str, norm: str, aux_norm: bool) -> None:
    if norm not in NORMS:
        raise ValueError(f"norm: unknown '{norm}' (allowed: {', '.join(NORMS)})")
    if norm not in KIND_NORMS[kind]:
        if norm == "fixup":
            raise ValueError(f"norm 'fixup' is an init for residual nets (kind 'resnet') only, not kind '{kind}'")
        if kind == "linear":
            raise ValueError("kind 'linear' has no layer to normalise: its norm must be 'none'")
        raise ValueError(f"kind '{kind}' allows norms {', '.join(KIND_NORMS[kind])} only"
                         + (" (BatchNorm1d before the max)" if kind == "maxout" else ""))
    if aux_norm and norm not in LAYER_NORMS:
        raise ValueError(f"aux_norm needs norm layers to duplicate, and norm '{norm}' has none")


def _make_net(s: dict, norm: str, num_classes: int, shape) -> nn.Module:
    c = shape[0]
    kind, act = s["kind"], s["act"]
    if kind == "cnn":
        return SmallCNN(norm=norm, num_classes=num_classes, in_channels=c, widths=s["widths"],
                        convs_per_stage=s["convs_per_stage"], act=act)
    if kind == "resnet":
        return ResNet(norm=norm, num_classes=num_classes, in_channels=c, blocks=s["blocks"], widths=s["widths"],
                      act=act)
    if kind == "vgg":
        return VGG(norm=norm, num_classes=num_classes, in_channels=c, stages=s["stages"], act=act)
    n_in = math.prod(shape)
    if kind == "linear":
        return LinearClassifier(n_in, num_classes)
    return MaxoutNet(norm=norm, in_features=n_in, num_classes=num_classes, hidden=s["hidden"], pieces=s["pieces"],
                     dropout=s["dropout"])


class _ShapeProblem(Exception):
    pass


def _walk_shapes(s: dict, norm: str, shape) -> None:
    """A forward pass on the meta device (no memory, no compute, RNG untouched) that checks
    every max-pool keeps at least 1x1 and that no InstanceNorm sees a 1x1 map."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        net = _make_net(s, norm, 2, shape).eval()
    h, w = shape[1], shape[2]

    def hook_for(name):
        def pre(mod, args):
            x = args[0]
            if x.dim() != 4:
                return
            xh, xw = x.shape[-2:]
            if isinstance(mod, nn.MaxPool2d) and (xh < 2 or xw < 2):
                raise _ShapeProblem(f"input {h}x{w} shrinks below 1x1: the max-pool {name} gets a {xh}x{xw} map "
                                    f"(needs a larger input or fewer stages)")
            if isinstance(mod, nn.InstanceNorm2d) and xh * xw == 1:
                raise _ShapeProblem(f"norm 'in' would normalise a 1x1 map at {name} (input {h}x{w}): "
                                    f"instance norm over one pixel is undefined")
        return pre

    for name, mod in net.named_modules():
        if isinstance(mod, (nn.MaxPool2d, nn.InstanceNorm2d)):
            mod.register_forward_pre_hook(hook_for(name))
    try:
        with torch.no_grad():
            net(torch.empty(2, *shape, device="meta"))
    except _ShapeProblem as e:
        raise ValueError(str(e)) from None
    except RuntimeError as e:  # any other shape failure of torch itself
        raise ValueError(f"input {h}x{w} does not fit: {str(e).splitlines()[0]}") from None


def check_compatible(arch: dict, norm: str, shape: tuple[int, int, int], arch_name: str = "arch",
                     aux_norm: bool = False) -> None:
    """Raise ValueError (one line, naming ``arch_name``, ``norm`` and why) if ``norm`` cannot be used with
    the arch config ``arch`` on images of ``shape`` = (C, H, W), or the config itself is invalid.

    Cheap: the shape check runs on the meta device. ``aux_norm``: also check that the norm has layers
    to duplicate for an auxiliary norm (AdvProp)."""
    try:
        s = _resolve(arch)
        _check_norm(s["kind"], norm, aux_norm)
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(_pos_int(v) for v in shape)):
            raise ValueError(f"image shape must be (C, H, W) of positive integers, got {shape!r}")
        if s["kind"] in ("cnn", "resnet", "vgg"):
            _walk_shapes(s, norm, tuple(shape))
    except ValueError as e:
        raise ValueError(f"arch '{arch_name}' with norm '{norm}': {e}") from None


def build_model(arch: dict, norm: str, meta: dict, aux_norm: bool = False) -> nn.Module:
    """``arch``: the config entry of an architecture (``kind`` + its settings);
    ``meta``: the dataset's meta (``num_classes``, ``shape``, ``mean``, ``std``).
    ``aux_norm``: replace every norm layer by a ``DualNorm`` (main + auxiliary copy, for AdvProp);
    the main copies are initialised exactly as without it.

    The arch and norm are checked (one line naming them), but not the feature-map shapes: that check runs on the
    meta device, whose first use costs seconds per process, and config validation has already made it for every
    cell (:func:`check_compatible`).

    Returns ``nn.Sequential(InputNorm, net)``."""
    shape = tuple(meta["shape"])
    try:
        s = _resolve(arch)
        _check_norm(s["kind"], norm, aux_norm)
    except ValueError as e:
        name = str(arch.get("kind")) if isinstance(arch, dict) else "arch"
        raise ValueError(f"arch '{name}' with norm '{norm}': {e}") from None
    net = _make_net(s, norm, meta["num_classes"], shape)
    if aux_norm:
        add_aux_norms(net)
    return nn.Sequential(InputNorm(meta["mean"], meta["std"]), net)


__all__ = ["build_model", "check_compatible", "make_norm", "NORMS", "ARCH_KINDS", "ACTIVATIONS", "InputNorm",
           "DualNorm", "use_aux", "has_aux", "is_norm_layer", "KIND_KEYS", "KIND_NORMS", "COMMON_KEYS"]
