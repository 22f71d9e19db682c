import pytest
import torch
from torch import nn

from normrobust.models import NORMS, InputNorm, build_model
from normrobust.models.norms import gn_groups, make_norm

META = {"num_classes": 10, "shape": [3, 16, 16], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
NORM_TYPES = {"none": nn.Identity, "bn": nn.BatchNorm2d, "ln": nn.GroupNorm, "in": nn.InstanceNorm2d,
              "gn": nn.GroupNorm}


@pytest.mark.parametrize("kind", ["cnn", "resnet"])
@pytest.mark.parametrize("norm", NORMS)
def test_every_arch_and_norm_builds_and_runs(kind, norm):
    torch.manual_seed(0)
    model = build_model({"kind": kind, "widths": [8, 16, 32]}, norm, META)
    assert isinstance(model[0], InputNorm), "input normalisation must be the model's first layer"
    out = model(torch.rand(4, 3, 16, 16))
    assert out.shape == (4, 10)
    layers = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d))]
    if norm == "none":
        assert not layers
    else:
        assert layers and all(type(m) is NORM_TYPES[norm] for m in layers)
    out.sum().backward()


def test_norm_layers_are_the_named_ones():
    assert make_norm("ln", 16).num_groups == 1
    assert make_norm("gn", 64).num_groups == 16
    assert make_norm("gn", 512).num_groups == 32
    inorm = make_norm("in", 8)
    assert inorm.affine and not inorm.track_running_stats
    for c in (3, 8, 12, 16, 24, 64, 96, 128, 256, 512):
        g = gn_groups(c)
        assert c % g == 0 and 1 <= g <= 32


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
    with pytest.raises(ValueError, match=r"norm: unknown 'bogus' \(allowed: none, bn, ln, in, gn\)"):
        build_model({"kind": "cnn"}, "bogus", META)
    with pytest.raises(ValueError, match=r"arch kind: unknown 'mlp'"):
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
