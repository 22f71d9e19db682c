"""Building models from the catalog's checked settings (:mod:`normrobust.models`):
``build_model(arch_cfg, norm, meta, aux_norm=False)``, and ``check_compatible``: the catalog's checks plus a walk of
the feature-map shapes on the meta device.

Every model starts with its input normalisation (``InputNorm``), so it takes images in [0,1] and every attack works
in pixel space.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _check_norm, _resolve, check_arch
from .activations import activation_class
from .auxnorm import add_aux_norms
from .cnn import SmallCNN
from .mlp import LinearClassifier, MaxoutNet
from .resnet import ResNet
from .vgg import VGG


class InputNorm(nn.Module):
    """(x - mean) / std per channel, as the model's first layer."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


def _make_net(s: dict, norm: str, num_classes: int, shape) -> nn.Module:
    c = shape[0]
    kind, act = s["kind"], activation_class(s["act"])
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


def walk_shapes(s: dict, norm: str, shape) -> None:
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
    """:func:`normrobust.models.check_arch`, then the feature-map shapes (every max-pool keeps 1x1, no instance norm
    over a 1x1 map), cheaply: on the meta device. One-line ValueError naming ``arch_name`` and ``norm``."""
    s = check_arch(arch, norm, shape, arch_name, aux_norm)
    if s["kind"] in ("cnn", "resnet", "vgg"):
        try:
            walk_shapes(s, norm, tuple(shape))
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
