import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from normrobust.models import ACTIVATIONS, ARCH_KINDS, KIND_NORMS, NORMS
from normrobust.models.build import InputNorm, build_model, check_compatible
from normrobust.models.norms import gn_groups, is_norm_layer, make_norm
from normrobust.models.resnet import FixupBlock

META = {"num_classes": 10, "shape": [3, 16, 16], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
META32 = dict(META, shape=[3, 32, 32])
MNIST = {"num_classes": 10, "shape": [1, 28, 28], "mean": [0.13], "std": [0.31]}
TINY_MNIST = dict(MNIST, shape=[1, 8, 8])
NORM_TYPES = {"none": nn.Identity, "bn": nn.BatchNorm2d, "ln": nn.GroupNorm, "in": nn.InstanceNorm2d,
              "gn": nn.GroupNorm}

# one small config and input per kind
TINY = {
    "cnn": ({"kind": "cnn", "widths": [8, 16, 32]}, META),
    "resnet": ({"kind": "resnet", "widths": [8, 16, 32]}, META),
    "vgg": ({"kind": "vgg", "layers": 11, "width": 0.0625}, META32),
    "linear": ({"kind": "linear"}, TINY_MNIST),
    "maxout": ({"kind": "maxout", "hidden": [12, 10], "pieces": 3, "dropout": 0.2}, TINY_MNIST),
}
ALLOWED = [(k, n) for k in ARCH_KINDS for n in KIND_NORMS[k]]
FORBIDDEN = [(k, n) for k in ARCH_KINDS for n in NORMS if n not in KIND_NORMS[k]]


def norm_layers(model):
    return [m for m in model.modules() if is_norm_layer(m)]


def convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_kinds_and_norms_are_exported():
    assert set(ARCH_KINDS) == {"cnn", "resnet", "vgg", "linear", "maxout"}
    assert NORMS == ("none", "bn", "ln", "in", "gn", "fixup")
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "selu", "elu", "gelu", "tanh"}
    assert KIND_NORMS["linear"] == ("none",) and set(KIND_NORMS["maxout"]) == {"none", "bn"}
    assert "fixup" in KIND_NORMS["resnet"] and all("fixup" not in KIND_NORMS[k] for k in ARCH_KINDS if k != "resnet")


@pytest.mark.parametrize("kind,norm", ALLOWED)
def test_every_arch_and_norm_builds_and_runs(kind, norm):
    torch.manual_seed(0)
    arch, meta = TINY[kind]
    model = build_model(arch, norm, meta)
    assert isinstance(model[0], InputNorm), "input normalisation must be the model's first layer"
    model.train()
    out = model(torch.rand(4, *meta["shape"]))
    assert out.shape == (4, 10)
    layers = norm_layers(model)
    if norm in ("none", "fixup"):
        assert not layers
    elif kind == "maxout":
        assert layers and all(type(m) is nn.BatchNorm1d for m in layers)
    else:
        assert layers and all(type(m) is NORM_TYPES[norm] for m in layers)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    assert torch.isfinite(model(torch.rand(2, *meta["shape"]))).all()


@pytest.mark.parametrize("kind,norm", FORBIDDEN)
def test_forbidden_norms_raise_at_build(kind, norm):
    arch, meta = TINY[kind]
    with pytest.raises(ValueError, match=rf"arch '{kind}' with norm '{norm}'"):
        build_model(arch, norm, meta)


def test_norm_layers_are_the_named_ones():
    assert make_norm("ln", 16).num_groups == 1
    assert make_norm("gn", 64).num_groups == 16
    assert make_norm("gn", 512).num_groups == 32
    inorm = make_norm("in", 8)
    assert inorm.affine and not inorm.track_running_stats
    for c in (1, 3, 8, 12, 16, 24, 64, 96, 128, 256, 512):
        g = gn_groups(c)
        assert c % g == 0 and 1 <= g <= 32
    with pytest.raises(ValueError, match="fixup"):
        make_norm("fixup", 8)


def test_layer_norm_normalises_each_image_over_c_h_w():
    ln = make_norm("ln", 4)
    x = torch.randn(3, 4, 5, 5) * 7 + 3
    y = ln(x)
    assert torch.allclose(y.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std(dim=(1, 2, 3), unbiased=False), torch.ones(3), atol=1e-3)


def test_input_norm_is_per_channel():
    n = InputNorm([0.5, 0.0, 1.0], [0.5, 1.0, 2.0])
    x = torch.ones(1, 3, 2, 2)
    assert torch.allclose(n(x)[0, :, 0, 0], torch.tensor([1.0, 1.0, 0.0]))


def test_unknown_norm_and_arch_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"norm: unknown 'bogus' \(allowed: none, bn, ln, in, gn, fixup\)"):
        build_model({"kind": "cnn"}, "bogus", META)
    with pytest.raises(ValueError, match=r"arch kind: unknown 'mlp' \(allowed: cnn, resnet, vgg, linear, maxout\)"):
        build_model({"kind": "mlp"}, "bn", META)


def test_batchnorm_train_and_eval_differ_only_through_statistics():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META)
    x = torch.rand(8, 3, 16, 16)
    model.train()
    model(x)
    model.eval()
    a = model(x)
    b = model(x)
    assert torch.equal(a, b), "eval mode must be deterministic and not update statistics"


# ----------------------------------------------------------------------------- architectures

def test_resnet18_has_the_published_parameter_count():
    with torch.device("meta"):
        model = build_model({"kind": "resnet", "blocks": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}, "bn",
                            META32)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962
    net = model[1]
    assert net.stem[0].kernel_size == (3, 3) and net.stem[0].stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules()), "CIFAR ResNet has no max-pool"
    assert len(net.layers) == 8 and len(convs(model)) == 1 + 16 + 3


@pytest.mark.parametrize("layers,n_convs", [(11, 8), (13, 10), (16, 13), (19, 16)])
def test_vgg_layer_counts(layers, n_convs):
    with torch.device("meta"):
        model = build_model({"kind": "vgg", "layers": layers}, "bn", META32)
    assert len(convs(model)) == n_convs
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 512 and linears[0].out_features == 10
    assert sum(isinstance(m, nn.MaxPool2d) for m in model.modules()) == 5
    assert [c.out_channels for c in convs(model)][:2] == [64, 64 if layers > 11 else 128]


def test_vgg_default_is_vgg16():
    with torch.device("meta"):
        assert len(convs(build_model({"kind": "vgg"}, "none", META32))) == 13


def test_linear_and_maxout_shapes():
    lin = build_model({"kind": "linear"}, "none", MNIST)
    assert [(m.in_features, m.out_features) for m in lin.modules() if isinstance(m, nn.Linear)] == [(784, 10)]
    mx = build_model({"kind": "maxout"}, "none", MNIST)
    assert [(m.in_features, m.out_features) for m in mx.modules() if isinstance(m, nn.Linear)] == \
        [(784, 1200), (240, 1200), (240, 10)]
    assert not any(isinstance(m, nn.Dropout) for m in mx.modules())
    mx = build_model({"kind": "maxout", "hidden": [6], "pieces": 4, "dropout": 0.5}, "bn", TINY_MNIST)
    maxout = mx[1].features[0]
    assert isinstance(maxout.norm, nn.BatchNorm1d) and maxout.norm.num_features == 24
    assert any(isinstance(m, nn.Dropout) and m.p == 0.5 for m in mx.modules())
    # the unit is the max over its pieces
    maxout.eval()
    x = torch.randn(3, 64)
    z = maxout.norm(maxout.linear(x)).view(3, 6, 4)
    assert torch.equal(maxout(x), z.max(dim=2).values)


def test_width_multiplier_scales_channels_and_units():
    def chans(arch, meta=META):
        with torch.device("meta"):
            return [c.out_channels for c in convs(build_model(arch, "bn", meta))]

    assert chans({"kind": "cnn", "widths": [16, 32, 64], "width": 0.5}) == [8, 16, 32]
    assert chans({"kind": "cnn", "widths": [16, 32], "width": 0.01}) == [1, 1], "at least one channel"
    r = chans({"kind": "resnet", "widths": [16, 32, 64], "width": 1.5})
    assert sorted(set(r)) == [24, 48, 96]
    assert sorted(set(chans({"kind": "vgg", "layers": 11, "width": 0.25}, META32))) == [16, 32, 64, 128]
    mx = build_model({"kind": "maxout", "hidden": [240, 240], "width": 0.5}, "none", TINY_MNIST)
    assert [m.units for m in mx[1].features] == [120, 120]


def test_depth_multiplier_scales_blocks_and_convs():
    with torch.device("meta"):
        res = build_model({"kind": "resnet", "blocks": [1, 2], "widths": [8, 16], "depth": 2}, "bn", META)
        cnn = build_model({"kind": "cnn", "widths": [8, 16], "convs_per_stage": 1, "depth": 3}, "bn", META)
        vgg = build_model({"kind": "vgg", "layers": 16, "depth": 0.5, "width": 0.125}, "bn", META32)
        res_small = build_model({"kind": "resnet", "blocks": [2, 1], "widths": [8, 16], "depth": 0.1}, "bn", META)
    assert len(res[1].layers) == 6
    assert len(res_small[1].layers) == 2, "at least one block per stage"
    assert len(convs(cnn)) == 6
    assert len(convs(vgg)) == 1 + 1 + 2 + 2 + 2  # (2, 2, 3, 3, 3) x 0.5, rounded half up


def test_multiplier_one_builds_the_same_network():
    for arch in ({"kind": "cnn", "widths": [16, 32, 64]},
                 {"kind": "resnet", "blocks": [1, 1, 1], "widths": [16, 32, 64]}):
        torch.manual_seed(0)
        a = build_model(arch, "bn", META).state_dict()
        torch.manual_seed(0)
        b = build_model(dict(arch, width=1.0, depth=1, activation="relu"), "bn", META).state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", ["cnn", "resnet", "vgg"])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_activation_setting_is_used(kind, act):
    arch, meta = TINY[kind]
    with torch.device("meta"):
        model = build_model(dict(arch, activation=act), "bn", meta)
    want = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "selu": nn.SELU, "elu": nn.ELU, "gelu": nn.GELU,
            "tanh": nn.Tanh}[act]
    acts = [m for m in model.modules() if isinstance(m, tuple({nn.ReLU, nn.LeakyReLU, nn.SELU, nn.ELU, nn.GELU,
                                                                 nn.Tanh}))]
    assert acts and all(type(m) is want for m in acts)


def test_selu_changes_the_resnet_function():
    x = torch.rand(2, 3, 16, 16)
    outs = []
    for act in ("relu", "selu"):
        torch.manual_seed(0)
        outs.append(build_model({"kind": "resnet", "widths": [8, 8, 8], "activation": act}, "none", META)(x))
    assert not torch.allclose(outs[0], outs[1])


# ----------------------------------------------------------------------------- FixUp

def test_fixup_has_no_norm_layers_and_zero_init_branch_ends():
    torch.manual_seed(0)
    model = build_model({"kind": "resnet", "blocks": [2, 1], "widths": [8, 16]}, "fixup", META)
    net = model[1]
    assert not norm_layers(model)
    assert all(isinstance(b, FixupBlock) for b in net.layers)
    for b in net.layers:
        assert torch.count_nonzero(b.conv2.weight) == 0
        assert torch.count_nonzero(b.conv1.weight) > 0
        assert b.scale.item() == 1.0 and b.bias1a.item() == b.bias1b.item() == b.bias2a.item() == b.bias2b.item() == 0
        assert all(c.bias is None for c in convs(b))
    assert torch.count_nonzero(net.fc.weight) == 0 and torch.count_nonzero(net.fc.bias) == 0
    x = torch.rand(3, 3, 16, 16)
    assert torch.equal(model(x), torch.zeros(3, 10)), "zero-init classifier: zero logits at init"
    # each block with an identity shortcut is the identity on (non-negative) post-ReLU inputs
    h = torch.relu(torch.randn(2, 8, 16, 16))
    assert torch.equal(net.layers[1](h), h)
    # a downsampling block is act(projection shortcut) at init
    blk = net.layers[2]
    assert torch.allclose(blk(h), torch.relu(blk.shortcut(h)))


def test_fixup_scales_branch_convs_by_depth():
    torch.manual_seed(0)
    model = build_model({"kind": "resnet", "blocks": [2, 2, 2], "widths": [32, 32, 32]}, "fixup", META)
    n_branches = 6
    for b in model[1].layers:
        w = b.conv1.weight
        he = math.sqrt(2 / (w.shape[0] * 9))
        assert w.std().item() == pytest.approx(he * n_branches ** -0.5, rel=0.05)


def test_fixup_trains_without_nan():
    torch.manual_seed(0)
    model = build_model({"kind": "resnet", "blocks": [1, 1], "widths": [8, 16]}, "fixup", dict(META, shape=[3, 8, 8]))
    x, y = torch.rand(32, 3, 8, 8), torch.randint(0, 10, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
    assert torch.count_nonzero(model[1].layers[0].conv2.weight) > 0, "zero-init convs must start learning"


# ----------------------------------------------------------------------------- check_compatible

VALID = [
    ({"kind": "cnn", "widths": [16, 32, 64]}, n, (3, 32, 32)) for n in ("none", "bn", "ln", "in", "gn")
] + [
    ({"kind": "resnet", "blocks": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}, n, (3, 32, 32)) for n in NORMS
] + [
    ({"kind": "vgg", "layers": 16}, n, (3, 32, 32)) for n in ("none", "bn", "ln", "in", "gn")
] + [
    ({"kind": "linear"}, "none", (1, 28, 28)),
    ({"kind": "maxout"}, "none", (1, 28, 28)),
    ({"kind": "maxout", "hidden": [240, 240], "pieces": 5, "dropout": 0.5}, "bn", (1, 28, 28)),
    ({"kind": "cnn", "widths": [16, 32, 64]}, "in", (1, 28, 28)),
    ({"kind": "resnet", "width": 2, "depth": 2, "activation": "selu"}, "gn", (3, 8, 8)),
]


@pytest.mark.parametrize("arch,norm,shape", VALID)
def test_check_compatible_accepts_valid_cells(arch, norm, shape):
    check_compatible(arch, norm, shape, arch_name="a")


REJECT = [
    ({"kind": "mlp"}, "bn", (3, 32, 32), r"arch kind: unknown 'mlp'"),
    ({"widths": [8]}, "bn", (3, 32, 32), r"arch kind: unknown 'None'"),
    ({"kind": "cnn"}, "batchnorm", (3, 32, 32), r"norm: unknown 'batchnorm'"),
    ({"kind": "cnn", "activation": "swish"}, "bn", (3, 32, 32), r"activation: unknown 'swish' \(allowed: relu,"),
    ({"kind": "cnn", "blocks": [1]}, "bn", (3, 32, 32), r"kind 'cnn' has no key 'blocks'"),
    ({"kind": "cnn", "widths": [8, 0]}, "bn", (3, 32, 32), r"widths: must be a non-empty list of positive integers"),
    ({"kind": "cnn", "widths": []}, "bn", (3, 32, 32), r"widths: must be"),
    ({"kind": "cnn", "convs_per_stage": 0}, "bn", (3, 32, 32), r"convs_per_stage: must be a positive integer"),
    ({"kind": "resnet", "blocks": [1, 1], "widths": [8, 16, 32]}, "bn", (3, 32, 32), r"same length"),
    ({"kind": "resnet", "blocks": [1, True]}, "bn", (3, 32, 32), r"blocks: must be"),
    ({"kind": "vgg", "layers": 18}, "bn", (3, 32, 32), r"layers: must be one of 11, 13, 16, 19, got 18"),
    ({"kind": "maxout", "pieces": 0}, "none", (1, 28, 28), r"pieces: must be a positive integer"),
    ({"kind": "maxout", "hidden": 240}, "none", (1, 28, 28), r"hidden: must be"),
    ({"kind": "maxout", "dropout": 1.0}, "none", (1, 28, 28), r"dropout: must be a number in \[0, 1\)"),
    ({"kind": "cnn", "width": 0}, "bn", (3, 32, 32), r"width: must be a positive number"),
    ({"kind": "cnn", "depth": -1}, "bn", (3, 32, 32), r"depth: must be a positive number"),
    ({"kind": "linear", "width": 2}, "none", (1, 28, 28), r"width: 2 has no effect on kind 'linear'"),
    ({"kind": "maxout", "depth": 2}, "none", (1, 28, 28), r"depth: 2 has no effect on kind 'maxout'"),
    ({"kind": "maxout", "activation": "selu"}, "none", (1, 28, 28), r"activation: 'selu' has no effect"),
    ({"kind": "cnn"}, "fixup", (3, 32, 32), r"norm 'fixup' is an init for residual nets \(kind 'resnet'\) only"),
    ({"kind": "vgg"}, "fixup", (3, 32, 32), r"norm 'fixup' .* not kind 'vgg'"),
    ({"kind": "maxout"}, "fixup", (1, 28, 28), r"norm 'fixup' .* not kind 'maxout'"),
    ({"kind": "linear"}, "bn", (1, 28, 28), r"kind 'linear' has no layer to normalise: its norm must be 'none'"),
    ({"kind": "maxout"}, "gn", (1, 28, 28), r"kind 'maxout' allows norms none, bn only"),
    ({"kind": "maxout"}, "in", (1, 28, 28), r"kind 'maxout' allows norms none, bn only"),
    ({"kind": "vgg"}, "in", (3, 16, 16), r"norm 'in' would normalise a 1x1 map at features\.\d+ \(input 16x16\)"),
    ({"kind": "cnn", "widths": [4, 4, 4, 4]}, "in", (3, 8, 8), r"norm 'in' would normalise a 1x1 map"),
    ({"kind": "resnet", "blocks": [1] * 5, "widths": [4] * 5}, "in", (3, 16, 16), r"norm 'in' would normalise a 1x1"),
    ({"kind": "vgg"}, "bn", (1, 28, 28), r"input 28x28 shrinks below 1x1: the max-pool features\.\d+ gets a 1x1 map"),
    ({"kind": "vgg"}, "none", (1, 28, 28), r"input 28x28 shrinks below 1x1"),
    ({"kind": "cnn", "widths": [4] * 6}, "bn", (3, 16, 16), r"input 16x16 shrinks below 1x1"),
    ({"kind": "cnn"}, "bn", (3, 32), r"image shape must be \(C, H, W\)"),
]


@pytest.mark.parametrize("arch,norm,shape,why", REJECT)
def test_check_compatible_rejects_with_a_one_line_message(arch, norm, shape, why):
    with pytest.raises(ValueError) as e:
        check_compatible(arch, norm, shape, arch_name="myarch")
    msg = str(e.value)
    assert msg.startswith(f"arch 'myarch' with norm '{norm}': "), msg
    assert "\n" not in msg
    assert re.search(why, msg), msg


def test_check_compatible_is_cheap_and_leaves_the_rng_alone():
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    check_compatible({"kind": "vgg", "layers": 19, "width": 4}, "bn", (3, 64, 64))  # ~300M params, on meta
    check_compatible({"kind": "resnet", "blocks": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}, "fixup", (3, 32, 32))
    assert torch.equal(torch.rand(3), a)


def test_check_compatible_aux_norm_needs_a_norm_layer():
    check_compatible({"kind": "cnn"}, "bn", (3, 32, 32), aux_norm=True)
    for kind, norm in (("cnn", "none"), ("resnet", "fixup"), ("linear", "none")):
        with pytest.raises(ValueError, match=rf"aux_norm needs norm layers to duplicate, and norm '{norm}' has none"):
            check_compatible({"kind": kind}, norm, (3, 32, 32), aux_norm=True)
