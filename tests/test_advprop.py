"""AdvProp: clean batches through the main norm, adversarial ones through the auxiliary norm."""

import torch

import tiny
from normrobust import train
from normrobust.data.loading import build_dataset
from normrobust.models.auxnorm import DualNorm
from normrobust.models.build import build_model
from normrobust.models.load import load_model
from normrobust.regimes import uses_aux_norm
from normrobust.settings import Regime
from normrobust.utils import save_torch

META = {"num_classes": 10, "shape": [3, 8, 8], "mean": [0.5] * 3, "std": [0.25] * 3}
REGIME = {"attack": {"type": "pgd", "norm": "linf", "eps": 4, "step": 1, "steps": 3}, "objective": "advprop",
          "attack_mode": "eval"}
ADVPROP = Regime.from_config("advprop", REGIME)


def record_routes(model):
    """For every forward of the model: (train mode?, input batch, which norm copies ran in train mode)."""
    events = []
    model.register_forward_pre_hook(lambda m, inp: events.append((m.training, inp[0].detach().clone(), set())))
    for mod in model.modules():
        if isinstance(mod, DualNorm):
            mod.main.register_forward_hook(lambda m, i, o: events[-1][2].add(("main", m.training)))
            mod.aux.register_forward_hook(lambda m, i, o: events[-1][2].add(("aux", m.training)))
    return events


def test_auxiliary_statistics_see_only_adversarial_batches_and_main_only_clean():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META, aux_norm=True)
    duals = [m for m in model.modules() if isinstance(m, DualNorm)]
    before = [(d.main.running_mean.clone(), d.aux.running_mean.clone()) for d in duals]
    events = record_routes(model)
    x, y = torch.rand(32, 3, 8, 8), torch.randint(0, 10, (32,))
    model.train()
    loss = train.batch_loss(model, x, y, ADVPROP, torch.Generator().manual_seed(0), aux=True, num_classes=10)
    loss.backward()

    train_fwd = [e for e in events if e[0]]
    attack_fwd = [e for e in events if not e[0]]
    assert len(train_fwd) == 2, "one clean and one adversarial batch"
    clean = [e for e in train_fwd if torch.equal(e[1], x)]
    adv = [e for e in train_fwd if not torch.equal(e[1], x)]
    assert len(clean) == 1 and len(adv) == 1
    assert clean[0][2] == {("main", True)}, "the clean batch goes through the main norm only"
    assert adv[0][2] == {("aux", True)}, "the adversarial batch goes through the auxiliary norm only"
    assert (adv[0][1] - x).abs().max() <= 4 / 255 + 1e-6
    # the attack itself is generated through the auxiliary norm, in eval mode (no statistics change)
    assert len(attack_fwd) == 3 and all(e[2] == {("aux", False)} for e in attack_fwd)
    for d, (m0, a0) in zip(duals, before):
        assert not torch.equal(d.main.running_mean, m0) and not torch.equal(d.aux.running_mean, a0)
    # each copy's statistics are exactly those of its own batch
    ref = build_model({"kind": "cnn", "widths": [8, 16]}, "bn", META)
    ref.load_state_dict({k.replace(".main", ""): v for k, v in _main_state(model, before).items()})
    ref.train()
    ref(x)
    first_main = duals[0].main.running_mean
    ref_first = next(m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)).running_mean
    assert torch.allclose(first_main, ref_first, atol=1e-6)


def _main_state(model, before):
    """The main-route weights of ``model`` with the main statistics reset to their values before the step."""
    state = {k: v.clone() for k, v in model.state_dict().items() if ".aux." not in k}
    duals = [(n, m) for n, m in model.named_modules() if isinstance(m, DualNorm)]
    for (name, _), (m0, _) in zip(duals, before):
        state[f"{name}.main.running_mean"] = m0
        state[f"{name}.main.running_var"] = torch.ones_like(m0)
        state[f"{name}.main.num_batches_tracked"] = torch.tensor(0)
    return state


def test_advprop_cell_trains_saves_and_evaluates_with_the_main_norm(tmp_path):
    data = build_dataset("generated", {"kind": "generated", "seed": 1, "n_train": 100, "n_test": 40,
                                       "image_size": 8})
    save_torch(data, tmp_path / "gen.pt")
    s = {"cell": {"dataset": "generated", "arch": "cnn", "norm": "bn", "regime": "advprop", "seed": 0},
         "arch": {"kind": "cnn", "widths": [8, 16]}, "regime": {"name": "advprop", **REGIME},
         "training": {"epochs": 1, "batch_size": 50, "lr": 0.05, "schedule": {"kind": "constant"},
                      "history": {"n_test": 20, "attack": {"type": "fgsm", "norm": "linf", "eps": 4}}},
         "device": "cpu"}
    tiny.train(s, str(tmp_path / "gen.pt"), tmp_path / "m")
    model, _, _, _ = load_model(tmp_path / "m" / "model.pt")
    events = record_routes(model)
    model(torch.rand(4, 3, 8, 8))
    assert events[0][2] == {("main", False)}, "evaluation uses the main norm only"


def test_advprop_without_norm_layers_sums_both_losses():
    torch.manual_seed(0)
    model = build_model({"kind": "cnn", "widths": [8, 16]}, "none", META)
    assert not uses_aux_norm(REGIME, "none")
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,))
    loss = train.batch_loss(model, x, y, ADVPROP, torch.Generator().manual_seed(0), aux=False, num_classes=10)
    assert torch.isfinite(loss)
