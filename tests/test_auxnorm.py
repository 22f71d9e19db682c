"""The auxiliary norm of AdvProp: DualNorm, use_aux, build_model(..., aux_norm=True)."""

import pytest
import torch
from torch import nn

from normrobust.models.auxnorm import DualNorm, has_aux, use_aux
from normrobust.models.build import build_model
from normrobust.models.norms import is_norm_layer

META = {"num_classes": 10, "shape": [3, 16, 16], "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
MNIST = {"num_classes": 10, "shape": [1, 8, 8], "mean": [0.13], "std": [0.31]}
DEFAULT_CNN = {"kind": "cnn", "widths": [16, 32, 64]}


def duals(model):
    return [m for m in model.modules() if isinstance(m, DualNorm)]


def bn_stats(model, which):
    return [getattr(d, which).running_mean.clone() for d in duals(model)]


@pytest.mark.parametrize("kind,norm,meta", [("cnn", n, META) for n in ("bn", "ln", "in", "gn")]
                         + [("resnet", "bn", META), ("resnet", "gn", META), ("maxout", "bn", MNIST)])
def test_aux_norm_replaces_every_norm_layer(kind, norm, meta):
    arch = {"kind": kind, "widths": [8, 16]} if kind != "maxout" else {"kind": kind, "hidden": [6], "pieces": 2}
    torch.manual_seed(0)
    plain = build_model(arch, norm, meta)
    torch.manual_seed(0)
    model = build_model(arch, norm, meta, aux_norm=True)
    n_plain = sum(is_norm_layer(m) for m in plain.modules())
    assert len(duals(model)) == n_plain > 0
    assert has_aux(model) and not has_aux(plain)
    # every norm layer sits inside a DualNorm, in pairs of the same type
    for d in duals(model):
        assert type(d.main) is type(d.aux) and is_norm_layer(d.main)
        assert d.main is not d.aux
        assert all(p.data_ptr() != q.data_ptr() for p, q in zip(d.main.parameters(), d.aux.parameters()))
        assert all(b.data_ptr() != c.data_ptr() for b, c in zip(d.main.buffers(), d.aux.buffers()))
    assert not any(isinstance(m, DualNorm) for m in model[0].modules()), "InputNorm is not duplicated"
    x = torch.rand(4, *meta["shape"])
    with use_aux(model):
        model(x).sum().backward()
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("kind,norm", [("cnn", "none"), ("resnet", "none"), ("resnet", "fixup"), ("linear", "none"),
                                       ("maxout", "none")])
def test_aux_norm_without_a_norm_layer_is_an_error(kind, norm):
    meta = MNIST if kind in ("linear", "maxout") else META
    with pytest.raises(ValueError, match=f"aux_norm needs norm layers to duplicate, and norm '{norm}' has none"):
        build_model({"kind": kind}, norm, meta, aux_norm=True)


def test_main_and_aux_have_separate_parameters_and_statistics():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True)
    d = duals(model)[0]
    names = dict(model.named_parameters())
    assert any(k.endswith(".main.weight") for k in names) and any(k.endswith(".aux.weight") for k in names)
    keys = model.state_dict().keys()
    assert any(k.endswith(".aux.running_mean") for k in keys) and any(k.endswith(".main.running_var") for k in keys)
    with torch.no_grad():
        d.aux.weight.fill_(3.0)
    assert torch.all(d.main.weight == 1.0)
    d.aux.running_mean.fill_(0.5)
    assert torch.all(d.main.running_mean == 0.0)


def test_train_forward_updates_only_the_routed_statistics():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True).train()
    x = torch.rand(8, 3, 16, 16)
    main0, aux0 = bn_stats(model, "main"), bn_stats(model, "aux")
    with use_aux(model):
        model(x)
    main1, aux1 = bn_stats(model, "main"), bn_stats(model, "aux")
    assert all(torch.equal(a, b) for a, b in zip(main0, main1)), "an aux forward must leave main statistics alone"
    assert all(not torch.equal(a, b) for a, b in zip(aux0, aux1)), "an aux forward must update aux statistics"
    assert all(d.aux.num_batches_tracked.item() == 1 and d.main.num_batches_tracked.item() == 0 for d in duals(model))
    model(x + 0.5)
    main2, aux2 = bn_stats(model, "main"), bn_stats(model, "aux")
    assert all(torch.equal(a, b) for a, b in zip(aux1, aux2)), "a plain forward must leave aux statistics alone"
    assert all(not torch.equal(a, b) for a, b in zip(main1, main2))


def test_use_aux_routes_restores_and_nests():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True)
    x = torch.rand(8, 3, 16, 16)
    model.eval()
    before = model(x)
    with use_aux(model):
        assert torch.equal(model(x), before), "identical copies: same output before aux statistics change"
    model.train()
    with use_aux(model):
        model(x * 2 + 1)  # shifts the aux running statistics
    model.eval()
    main_out = model(x)
    assert torch.equal(main_out, before), "default routing is main, untouched by the aux pass"
    with use_aux(model) as m:
        assert m is model
        aux_out = model(x)
        assert all(d.route_aux for d in duals(model))
        with use_aux(model):
            assert torch.equal(model(x), aux_out)
        assert all(d.route_aux for d in duals(model)), "leaving the inner block keeps the outer routing"
        assert torch.equal(model(x), aux_out)
    assert not torch.allclose(aux_out, main_out)
    assert not any(d.route_aux for d in duals(model))
    assert torch.equal(model(x), main_out)
    with pytest.raises(RuntimeError, match="boom"):
        with use_aux(model):
            raise RuntimeError("boom")
    assert not any(d.route_aux for d in duals(model)), "routing restored after an exception"


def test_use_aux_on_a_model_without_aux_norm():
    model = build_model({"kind": "cnn", "widths": [8]}, "bn", META)
    with pytest.raises(ValueError, match="no auxiliary norm"):
        with use_aux(model):
            pass
    with use_aux(model, strict=False):
        model(torch.rand(2, 3, 16, 16))


def test_routing_is_not_part_of_the_state_dict():
    torch.manual_seed(0)
    a = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True)
    b = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True)
    with use_aux(a):
        b.load_state_dict(a.state_dict())
    assert not any(d.route_aux for d in duals(b))


@pytest.mark.parametrize("norm", ["bn", "gn"])
def test_aux_norm_on_the_default_cnn_changes_nothing_on_the_main_route(norm):
    torch.manual_seed(0)
    plain = build_model(DEFAULT_CNN, norm, META)
    r_plain = torch.rand(2)
    torch.manual_seed(0)
    model = build_model(DEFAULT_CNN, norm, META, aux_norm=True)
    assert torch.equal(torch.rand(2), r_plain), "aux_norm must not consume random numbers"
    sp, sa = plain.state_dict(), model.state_dict()
    for k, v in sp.items():
        if k in sa:
            assert torch.equal(sa[k], v), k
        else:
            head, _, leaf = k.rpartition(".")
            assert torch.equal(sa[f"{head}.main.{leaf}"], v) and torch.equal(sa[f"{head}.aux.{leaf}"], v), k
    x = torch.rand(8, 3, 16, 16)
    for mode in (True, False):
        plain.train(mode)
        model.train(mode)
        assert torch.equal(plain(x), model(x))
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.1)
    opt_m = torch.optim.SGD(model.parameters(), lr=0.1)
    for net, opt in ((plain, opt_p), (model, opt_m)):
        net.train()
        loss = nn.functional.cross_entropy(net(x), torch.arange(8))
        opt.zero_grad()
        loss.backward()
        opt.step()
    plain.eval()
    model.eval()
    assert torch.equal(plain(x), model(x)), "a training step on the main route matches the plain model"
