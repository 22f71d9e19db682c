"""Model catalog: what an arch config and a norm may be, checked without torch (``check_arch``); the models
themselves are built by :func:`normrobust.models.build.build_model` (``build.py``), which also checks the
feature-map shapes (``build.check_compatible``).

The registries: :data:`NORMS` (and :data:`LAYER_NORMS`, the ones that put a layer into the net), :data:`ARCH_KINDS`
with each kind's keys (:data:`KIND_KEYS`) and allowed norms (:data:`KIND_NORMS`), :data:`ACTIVATIONS`. The config
schema's allowed values come from them (``x-registry`` in the schema, filled in by :func:`normrobust.config.
load_schema`): a new norm is its name here and its layer in ``norms.py`` (README, "Adding a norm").

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

NORMS = ("none", "bn", "ln", "in", "gn", "fixup")
LAYER_NORMS = ("bn", "ln", "in", "gn")  # the norms that put a layer into the network
#: activation name → the torch.nn class that implements it (activations.py builds it)
ACTIVATION_CLASSES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "selu": "SELU", "elu": "ELU", "gelu": "GELU",
                      "tanh": "Tanh"}
ACTIVATIONS = tuple(ACTIVATION_CLASSES)
VGG_STAGES: dict[int, tuple[tuple[int, int], ...]] = {  # (channels, convs) per stage of VGG-11/13/16/19
    11: ((64, 1), (128, 1), (256, 2), (512, 2), (512, 2)),
    13: ((64, 2), (128, 2), (256, 2), (512, 2), (512, 2)),
    16: ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)),
    19: ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4)),
}

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
    s: dict = {"kind": kind, "act": act}
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


def check_arch(arch: dict, norm: str, shape: tuple[int, int, int], arch_name: str = "arch",
               aux_norm: bool = False) -> dict:
    """Raise ValueError (one line, naming ``arch_name``, ``norm`` and why) if the arch config ``arch`` is invalid or
    ``norm`` cannot be used with it on images of ``shape`` = (C, H, W); returns the resolved settings. Needs no torch;
    :func:`normrobust.models.build.check_compatible` adds the feature-map shape check. ``aux_norm``: also check that
    the norm has layers to duplicate for an auxiliary norm (AdvProp)."""
    try:
        s = _resolve(arch)
        _check_norm(s["kind"], norm, aux_norm)
        if not (isinstance(shape, (list, tuple)) and len(shape) == 3 and all(_pos_int(v) for v in shape)):
            raise ValueError(f"image shape must be (C, H, W) of positive integers, got {shape!r}")
    except ValueError as e:
        raise ValueError(f"arch '{arch_name}' with norm '{norm}': {e}") from None
    return s
