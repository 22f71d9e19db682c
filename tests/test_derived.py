"""Derived datasets of E3 / E4 (D_R, D_NR, D_rand, D_det, conflict): normrobust.data.derived."""

import copy
import json
import re

import pytest
import torch
import torch.nn.functional as F

import tiny
from conftest import ROOT
from normrobust.data import (
    DATASET_KINDS,
    dataset_num_classes,
    dataset_shape,
    dataset_train_size,
    derived,
)
from normrobust.data.generated import generate
from normrobust.data.loading import build_dataset, load_prepared
from normrobust.models.build import build_model
from normrobust.utils import load_torch, save_torch

K = 4
ARCH = {"kind": "cnn", "widths": [8, 16]}
SOURCE = {"arch": "cnn", "norm": "bn", "regime": "standard", "seed": 0}


def entry(method, base="gen", **kw):
    """A derived entry; min_rate 0: the tiny fitted model need not implant the generated data's exact features
    (the checks are tested below with the ideal readers as sources)."""
    return {"kind": "derived", "method": method, "base": base, "source": dict(SOURCE), "min_rate": 0, **kw}


@pytest.fixture(scope="module")
def base():
    data = generate(n_train=120, n_test=40, image_size=8, num_classes=K, seed=0)
    data["meta"].update(name="gen", augment={"flip": True})
    return data


@pytest.fixture(scope="module")
def model(base):
    """A tiny BN CNN fitted to the base (full-batch Adam), in eval mode, no parameter grads."""
    torch.manual_seed(0)
    m = build_model(ARCH, "bn", base["meta"])
    x, y = base["train"]["x"].float() / 255, base["train"]["y"]
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        assert (m(x).argmax(1) == y).float().mean() > 0.6  # it has learnt something to attack
    return m


def predict(model, x_uint8):
    with torch.no_grad():
        return model(x_uint8.float() / 255).argmax(1)


# ------------------------------------------------------------------------------------------- attacks
@pytest.mark.parametrize("method", ["rand", "det"])
def test_targeted_sets_reach_their_target_within_eps(base, model, method):
    out = derived.derive(f"d_{method}", entry(method, steps=20), base, model)
    x0, y0 = base["train"]["x"], base["train"]["y"]
    x, t = out["train"]["x"], out["train"]["y"]
    assert x.dtype == torch.uint8 and x.shape == x0.shape and t.dtype == torch.int64
    assert torch.equal(out["train"]["base_y"], y0)
    if method == "det":
        assert torch.equal(t, (y0 + 1) % K)
    else:
        assert (t != y0).all()
        assert set(((t - y0) % K).tolist()) == set(range(1, K))  # every other class is drawn
    # the stored (uint8) images are classified as the target by the source model, for most images
    rate = (predict(model, x) == t).float().mean().item()
    assert rate >= 0.75
    meta = out["meta"]["derived"]
    assert meta["target_rate"] == pytest.approx(rate)
    assert meta["l2_max"] <= 0.5 + 1e-3
    # stored perturbations: eps plus at most half a grey level per pixel of rounding
    l2 = (x.float() / 255 - x0.float() / 255).flatten(1).norm(dim=1)
    assert (l2 <= 0.5 + 0.5 / 255 * x0[0].numel() ** 0.5 + 1e-4).all()
    assert l2.mean() > 0.3  # the attack did move the images


def test_targeted_pgd_respects_eps_before_rounding(base, model):
    x = base["train"]["x"][:60].float() / 255
    t = derived.choose_targets(base["train"]["y"][:60], "rand", K, seed=0)
    xa = derived.targeted_pgd(model, x, t, eps=0.3, step=0.1, steps=15, batch_size=25)
    l2 = (xa - x).flatten(1).norm(dim=1)
    assert (l2 <= 0.3 + 1e-3).all() and xa.min() >= 0 and xa.max() <= 1
    with torch.no_grad():
        before = (model(x).argmax(1) == t).float().mean()
        after = (model(xa).argmax(1) == t).float().mean()
    assert after >= 0.6 and after > before + 0.4


# ------------------------------------------------------------------------------------------- robust / nonrobust
def test_robust_matches_features_from_another_image(base, model):
    out = derived.derive("d_robust", entry("robust", steps=60, n=80), base, model)
    x0, y0 = base["train"]["x"], base["train"]["y"]
    start = out["train"]["start_index"]
    assert out["train"]["x"].shape[0] == 80 and out["train"]["x"].dtype == torch.uint8
    assert torch.equal(out["train"]["y"], y0[:80]) and torch.equal(out["train"]["base_y"], y0[:80])
    assert (start != torch.arange(80)).all() and (start >= 0).all() and (start < 120).all()
    assert len(set(start.tolist())) == 80  # distinct starts
    # independently: the stored images' penultimate features are much closer to the target's than the starts'
    with derived.penultimate_features(model) as feats, torch.no_grad():
        goal = feats(x0[:80].float() / 255)
        d_start = (feats(x0[start].float() / 255) - goal).norm(dim=1)
        d_final = (feats(out["train"]["x"].float() / 255) - goal).norm(dim=1)
    assert (d_start > 0).all()
    assert d_final.mean() < 0.4 * d_start.mean()
    meta = out["meta"]["derived"]
    assert meta["feature_dist_ratio"] < 0.4 and meta["feature_dist_final"] < meta["feature_dist_start"]
    assert meta["eps"] is None and meta["steps"] == 60 and meta["n"] == 80
    # and they no longer look like their start image
    assert ((out["train"]["x"].float() - x0[start].float()).flatten(1).norm(dim=1) > 0).all()


def test_robust_starts_from_the_start_image_not_from_x(base, model):
    """After one step of 0.1 each image is still next to its start image, far from the image it imitates."""
    out = derived.derive("d_nonrobust", entry("nonrobust", steps=1, n=40), base, model)
    x0 = base["train"]["x"].float() / 255
    z = out["train"]["x"].float() / 255
    start = out["train"]["start_index"]
    rounding = 0.5 / 255 * x0[0].numel() ** 0.5
    assert ((z - x0[start]).flatten(1).norm(dim=1) <= 0.1 + rounding + 1e-4).all()
    assert ((z - x0[:40]).flatten(1).norm(dim=1) > 0.5).all()
    assert torch.equal(out["train"]["y"], base["train"]["y"][:40])  # label y of x, not of the start image


def test_start_indices_are_a_seeded_derangement():
    s = derived.start_indices(50, 50, seed=3)
    assert sorted(s.tolist()) == list(range(50)) and (s != torch.arange(50)).all()
    assert torch.equal(s, derived.start_indices(50, 50, seed=3))
    assert not torch.equal(s, derived.start_indices(50, 50, seed=4))
    assert torch.equal(derived.start_indices(2, 2, 0), torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="at least 2"):
        derived.start_indices(1, 1, 0)


@pytest.mark.parametrize("kind,norm", [("cnn", "bn"), ("resnet", "bn"), ("vgg", "none"), ("maxout", "bn"),
                                       ("linear", "none")])
def test_penultimate_is_the_classifier_input_for_every_arch(kind, norm):
    size = 32 if kind == "vgg" else 8  # vgg pools five times
    meta = {"num_classes": 3, "shape": [3, size, size], "mean": [0.5] * 3, "std": [0.25] * 3}
    arch = {"kind": kind, **({"layers": 11, "width": 0.125} if kind == "vgg" else {}),
            **({"hidden": [12, 12], "pieces": 2} if kind == "maxout" else {}),
            **({"widths": [4, 8]} if kind in ("cnn", "resnet") else {})}
    torch.manual_seed(0)
    m = build_model(arch, norm, meta).eval()
    x = torch.rand(5, 3, size, size)
    fc = derived.last_linear(m)
    with derived.penultimate_features(m) as feats, torch.no_grad():
        f = feats(x)
        assert torch.allclose(fc(f), m(x), atol=1e-5)  # the captured input gives the logits
    assert not fc._forward_pre_hooks  # the hook is removed afterwards
    # robustify works on this arch and never increases the distance (the best iterate is kept)
    z, d0, d1 = derived.robustify(m, x, x.roll(1, 0), steps=5, step=0.1, batch_size=2)
    assert z.shape == x.shape and (d1 <= d0 + 1e-6).all() and z.min() >= 0 and z.max() <= 1


# ------------------------------------------------------------------------------------------- the dataset file
def test_test_set_copied_meta_and_determinism(base, model):
    cfg = entry("rand", steps=5, n=40)
    a, b = derived.derive("d_rand", cfg, base, model), derived.derive("d_rand", cfg, base, model)
    assert torch.equal(a["train"]["x"], b["train"]["x"]) and torch.equal(a["train"]["y"], b["train"]["y"])
    c = derived.derive("d_rand", {**cfg, "seed": 1}, base, model)
    assert not torch.equal(a["train"]["y"], c["train"]["y"])
    r1 = derived.derive("d_r", entry("nonrobust", steps=3, n=30), base, model)
    r2 = derived.derive("d_r", entry("nonrobust", steps=3, n=30), base, model)
    assert torch.equal(r1["train"]["x"], r2["train"]["x"])
    for key in ("x", "y", "rf_y", "nrf_y"):
        assert a["test"][key].dtype == base["test"][key].dtype and torch.equal(a["test"][key], base["test"][key])
    for split, d in base["counterfactual"].items():
        for key, v in d.items():
            assert torch.equal(a["counterfactual"][split][key], v)
    meta = a["meta"]
    assert meta["name"] == "d_rand" and meta["augment"] == {}
    assert meta["num_classes"] == K and meta["shape"] == base["meta"]["shape"] and meta["mean"] == base["meta"]["mean"]
    d = meta["derived"]
    assert {k: d[k] for k in ("method", "base", "source", "steps", "step", "eps", "n", "attack_mode")} == {
        "method": "rand", "base": "gen", "source": SOURCE, "steps": 5, "step": 0.1, "eps": 0.5, "n": 40,
        "attack_mode": "eval"}
    assert base["meta"]["name"] == "gen" and "derived" not in base["meta"]  # the base is left alone


def test_conflict_attacks_a_robust_base_toward_y_plus_1(base, model):
    d_r = derived.derive("d_robust", entry("robust", steps=10, n=60), base, model)
    out = derived.derive("d_conflict", entry("conflict", base="d_robust", steps=20), d_r, model)
    y = d_r["train"]["y"]
    assert torch.equal(out["train"]["y"], (y + 1) % K) and torch.equal(out["train"]["base_y"], y)
    assert (predict(model, out["train"]["x"]) == out["train"]["y"]).float().mean() >= 0.75
    assert out["meta"]["derived"]["base_derived"]["method"] == "robust"
    assert torch.equal(out["test"]["x"], base["test"]["x"])  # still the real test set
    with pytest.raises(SystemExit, match=r"datasets\.d_c\.base: method 'conflict' needs a derived 'robust' base"):
        derived.derive("d_c", entry("conflict"), base, model)


@pytest.mark.parametrize("change,pattern", [
    ({"method": "foo"}, r"^datasets\.d_x\.method: 'foo' is not allowed \(allowed: robust, nonrobust, rand, det, "
                        r"conflict\)$"),
    ({"eps": 0}, r"^datasets\.d_x\.eps: must be a number > 0"),
    ({"eps": -0.5}, r"^datasets\.d_x\.eps: must be a number > 0"),
    ({"n": 0}, r"^datasets\.d_x\.n: must be an integer >= 1"),
    ({"steps": 0}, r"^datasets\.d_x\.steps: must be an integer >= 1"),
    ({"step": "big"}, r"^datasets\.d_x\.step: must be a number > 0"),
    ({"batch_size": 0}, r"^datasets\.d_x\.batch_size: must be an integer >= 1"),
    ({"source": {"arch": "cnn"}}, r"^datasets\.d_x\.source: missing norm, regime, seed"),
    ({"colour": 1}, r"^datasets\.d_x: unknown key\(s\) colour for kind 'derived'"),
    ({"method": "robust", "eps": 0.5}, r"^datasets\.d_x\.eps: has no effect on method 'robust'"),
])
def test_bad_settings_one_line_naming_the_key(base, model, change, pattern):
    cfg = {**entry("rand"), **change}
    with pytest.raises(SystemExit) as e:
        derived.derive("d_x", cfg, base, model)
    msg = str(e.value)
    assert "\n" not in msg
    assert re.search(pattern, msg), msg


def test_cli_writes_the_dataset(tmp_path, base, model):
    """The CLI: base file + a model.pt as train.py writes it → the derived file, same as the library call."""
    base_path, model_path, out = tmp_path / "gen.pt", tmp_path / "cell" / "model.pt", tmp_path / "d_det.pt"
    save_torch(base, base_path)
    settings, seed = tiny.settings_of({"cell": {"dataset": "gen", "arch": "cnn", "norm": "bn", "regime": "standard"},
                                       "arch": ARCH, "regime": {"name": "standard", "attack": None},
                                       "training": {"epochs": 1, "batch_size": 16, "lr": 0.1,
                                                    "history": {"n_test": 10}}})
    plain_meta = {k: v for k, v in base["meta"].items() if not isinstance(v, torch.Tensor)}
    save_torch({"state_dict": model.state_dict(), "settings": settings.to_json(),
                "cell": settings.model.cell(seed).as_dict(), "meta": plain_meta, "epochs": 1}, model_path)
    cfg = entry("det", steps=10, n=50, batch_size=16)

    def argv(settings, dest):
        return ["--name", "d_det", "--settings", json.dumps(settings), "--base", str(base_path),
                "--source", str(model_path), "--device", "cpu", "--out", str(dest), "--threads", "1"]

    assert derived.main(argv(cfg, out)) == 0
    got = load_prepared(out)
    want = derived.derive("d_det", cfg, base, model)
    assert torch.equal(got["train"]["x"], want["train"]["x"]) and torch.equal(got["train"]["y"], want["train"]["y"])
    assert torch.equal(got["test"]["x"], base["test"]["x"]) and got["meta"]["name"] == "d_det"
    assert load_torch(out)["meta"]["derived"]["method"] == "det"  # loadable with weights_only
    # bad settings: one line naming the key, nothing written
    assert derived.main(argv({**cfg, "n": 10**6}, tmp_path / "all.pt")) == 0  # n is an upper bound
    assert len(load_prepared(tmp_path / "all.pt")["train"]["y"]) == len(base["train"]["y"])
    with pytest.raises(SystemExit, match=r"^datasets\.d_det\.method: 'foo' is not allowed"):
        derived.main(argv({**cfg, "method": "foo"}, tmp_path / "bad.pt"))
    assert not (tmp_path / "bad.pt").exists()


# ------------------------------------------------------------------------------------------- ground truth
class Reader(torch.nn.Module):
    """An ideal reader of one feature family as a model: logits = the generated data's template scores; with
    ``penultimate`` the scores pass an identity nn.Linear, so they are the features D_R / D_NR match."""

    def __init__(self, templates: torch.Tensor):
        super().__init__()
        k = templates.shape[0]
        t = templates.reshape(k, -1).float()
        self.read = torch.nn.Linear(t.shape[1], k)
        self.out = torch.nn.Linear(k, k)
        with torch.no_grad():
            self.read.weight.copy_(t)
            self.read.bias.copy_(-0.5 * t.pow(2).sum(1) - 0.5 * t.sum(1))  # ⟨x − 0.5, t⟩ − ½‖t‖²
            self.out.weight.copy_(torch.eye(k) * 255.0)  # scores are ~1/255-scaled: sharpen the softmax
            self.out.bias.zero_()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, x):
        return self.out(self.read(x.flatten(1)))


@pytest.fixture(scope="module")
def gt_base():
    data = generate(n_train=200, n_test=40, image_size=8, num_classes=K, seed=3, rf_agreement=1.0)
    data["meta"].update(name="gen", augment={})
    return data


def test_an_nrf_reader_source_implants_the_target_nrf_and_records_it(gt_base):
    src = Reader(gt_base["templates"]["nrf"]).eval()
    out = derived.derive("d_rand", entry("rand", steps=20, min_rate=0.8), gt_base, src)
    rec = out["meta"]["derived"]
    assert rec["intended"] == "nrf" and rec["target_rate"] >= 0.95
    assert rec["intended_rate"] == rec["nrf_rate"] >= 0.95  # the new label's NRF, by the ideal reader
    assert rec["rf_rate"] >= 0.95  # the RF (of the base label) is untouched by an eps-0.5 attack
    assert rec["rf_label_rate"] <= 0.05  # and so it is not the new label's


def test_an_rf_reader_source_cannot_implant_and_the_set_stops(gt_base):
    """The RF is far beyond L2 0.5: the targeted attack misses, and making the set stops, naming source and rate."""
    src = Reader(gt_base["templates"]["rf"]).eval()
    with pytest.raises(SystemExit) as e:
        derived.derive("d_rand", entry("rand", steps=20, min_rate=0.8), gt_base, src)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("datasets.d_rand: the targeted attacks on source cell cnn/bn/standard/s0")
    assert re.search(r"reach their target on \d+\.\d% of images \(< min_rate 80%\)", msg), msg


def test_d_r_from_an_rf_reader_carries_the_labels_rf(gt_base):
    src = Reader(gt_base["templates"]["rf"]).eval()
    out = derived.derive("d_robust", entry("robust", steps=100, step=0.1, min_rate=0.8), gt_base, src)
    rec = out["meta"]["derived"]
    assert rec["intended"] == "rf" and rec["intended_rate"] == rec["rf_label_rate"] >= 0.9
    assert rec["nrf_rate"] <= 0.6  # the NRF stays the start image's: not the label's beyond chance and collisions


def test_too_few_steps_for_d_r_stop_naming_the_rate(gt_base):
    src = Reader(gt_base["templates"]["rf"]).eval()
    with pytest.raises(SystemExit, match=r"only \d+\.\d% of images carry the label's robust feature"):
        derived.derive("d_robust", entry("robust", steps=2, step=0.1, min_rate=0.8), gt_base, src)


# ------------------------------------------------------------------------------------------- config-only helpers
def test_config_helpers_answer_from_the_base():
    ds = {"gen": {"kind": "generated", "image_size": 8, "num_classes": 5, "n_train": 300},
          "d_robust": entry("robust"), "d_small": entry("rand", n=100),
          "d_conflict": entry("conflict", base="d_robust"), "d_conflict_small": entry("conflict", base="d_small"),
          "loop_a": entry("det", base="loop_b"), "loop_b": entry("det", base="loop_a"),
          "orphan": entry("det", base="nowhere")}
    assert "derived" in DATASET_KINDS
    for name in ("d_robust", "d_small", "d_conflict", "d_conflict_small"):
        assert dataset_shape(ds[name], ds) == (3, 8, 8)
        assert dataset_num_classes(ds[name], datasets=ds) == 5
    assert dataset_train_size(ds["d_robust"], ds) == 300 == dataset_train_size(ds["d_conflict"], ds)
    assert dataset_train_size(ds["d_small"], ds) == 100 == dataset_train_size(ds["d_conflict_small"], ds)
    assert dataset_train_size(ds["gen"]) == 300 and dataset_shape(ds["gen"]) == (3, 8, 8)  # unchanged
    for fn in (dataset_shape, dataset_num_classes, dataset_train_size):
        with pytest.raises(ValueError, match="datasets mapping is needed"):
            fn(ds["d_robust"])
        with pytest.raises(ValueError, match="derives from itself"):
            fn(ds["loop_a"], ds)
        with pytest.raises(ValueError, match="base 'nowhere' is not defined"):
            fn(ds["orphan"], ds)
    with pytest.raises(ValueError, match=r"datasets\.d_robust: kind 'derived' is built by derive-data"):
        build_dataset("d_robust", ds["d_robust"])
    # resolve_settings is usable at config time (ValueError) and fills in the papers' defaults
    r = derived.resolve_settings("d_robust", ds["d_robust"], n_base=300)
    assert (r["steps"], r["step"], r["eps"], r["n"], r["batch_size"], r["seed"]) == (1000, 0.1, None, 300, 500, 0)
    r = derived.resolve_settings("d_small", ds["d_small"])
    assert (r["steps"], r["step"], r["eps"], r["n"]) == (100, 0.1, 0.5, 100)
    assert derived.resolve_settings("d_small", ds["d_small"], n_base=99)["n"] == 99, "n is an upper bound"


# ------------------------------------------------------------------------------------------- held-out readers
READERS = {"robust": {"arch": "cnn", "norm": "none", "regime": "pgd_linf", "seed": 0},
           "standard": {"arch": "cnn", "norm": "bn", "regime": "standard", "seed": 1}}


@pytest.mark.parametrize("readers,pattern", [
    ({**READERS, "robust": {**READERS["robust"], "colour": 1}},
     r"^datasets\.d_x\.readers\.robust\.colour: unknown key \(allowed: arch, norm, regime, seed, dataset; "),
    ({**READERS, "standard": dict(SOURCE)},  # its dataset defaults to the source's
     r"^datasets\.d_x\.readers\.standard: gen/cnn/bn/standard/s0 is the source cell, not held out \(allowed: "
     r"another seed, arch, norm or regime than the source's\)$"),
    ({"robust": READERS["robust"]}, r"^datasets\.d_x\.readers\.standard: missing: both readers are needed \(allowed: "
                                    r"robust, standard\)$"),
    ({**READERS, "weak": READERS["robust"]}, r"^datasets\.d_x\.readers\.weak: unknown reader kind \(allowed: robust, "),
    ({**READERS, "robust": {"arch": "cnn", "norm": "none", "regime": "pgd_linf"}},
     r"^datasets\.d_x\.readers\.robust\.seed: missing \(allowed: arch, norm, regime, seed, dataset"),
    ({**READERS, "robust": {**READERS["robust"], "seed": -1}}, r"^datasets\.d_x\.readers\.robust\.seed: must be an "
                                                               r"integer >= 0"),
    ({**READERS, "robust": READERS["standard"]},
     r"^datasets\.d_x\.readers\.standard: gen/cnn/bn/standard/s1 is the robust reader's cell too"),
])
def test_readers_are_validated_one_line_naming_the_key(base, model, readers, pattern):
    cfg = {**entry("robust"), "source": {**SOURCE, "dataset": "gen"}, "readers": readers}
    with pytest.raises(ValueError) as e:
        derived.resolve_settings("d_x", cfg)
    assert "\n" not in str(e.value) and re.search(pattern, str(e.value)), str(e.value)
    with pytest.raises(SystemExit) as e:  # derive-data says the same before making anything
        derived.derive("d_x", cfg, base, model)
    assert re.search(pattern, str(e.value)), str(e.value)


def test_readers_against_the_config_one_line():
    """With the config: a reader defaulting to the source's dataset is the source; a reader of the wrong kind."""
    from normrobust import config as config_module
    from normrobust.plan import PlanError

    cfg = config_module.load(ROOT / "config.yaml")
    src = dict(cfg["datasets"]["d_robust"]["source"])  # no dataset: the base's, generated
    cases = [({"robust": {**src, "dataset": "generated"}, "standard": {**src, "regime": "standard"}},
              r"^datasets\.d_robust\.readers\.robust: generated/cnn/none/pgd_linf/s0 is the source cell, not held out"),
             ({"robust": {**src, "regime": "standard", "seed": 1}, "standard": {**src, "regime": "standard"}},
              r"^datasets\.d_robust\.readers\.robust\.regime: 'standard' trains without attacks; the robust reader "
              r"must be adversarially trained \(allowed: pgd_linf, pgd_small, "),
             ({"robust": {**src, "seed": 1}, "standard": {**src, "regime": "pgd_small"}},
              r"^datasets\.d_robust\.readers\.standard\.regime: 'pgd_small' trains on attacks; the standard reader "
              r"must be standard trained \(allowed: standard, "),
             ({"robust": {**src, "seed": 7}, "standard": {**src, "regime": "standard"}},
              r"^datasets\.d_robust\.readers\.robust\.seed: 7 is not one of the config's seeds \(allowed: "
              + ", ".join(map(str, cfg["seeds"])) + r"\)$"),
             ({"robust": {**src, "seed": 1, "arch": "nope"}, "standard": {**src, "regime": "standard"}},
              r"^datasets\.d_robust\.readers\.robust\.arch: 'nope' is not defined under archs \(allowed: ")]
    for readers, pattern in cases:
        bad = copy.deepcopy(cfg)
        bad["datasets"]["d_robust"]["readers"] = readers
        with pytest.raises(PlanError) as e:
            config_module.validate(bad)
        assert "\n" not in str(e.value) and re.search(pattern, str(e.value)), str(e.value)


@pytest.fixture(scope="module")
def readers(base):
    """Two tiny held-out models fitted to the base (other seeds than the source; which is "robust" is only a name
    here: the rates are what each one reads)."""
    x, y = base["train"]["x"].float() / 255, base["train"]["y"]
    out = {"robust": tiny.fit_mlp(x, y, K, steps=150, seed=1), "standard": tiny.fit_mlp(x, y, K, steps=150, seed=2)}
    for m in out.values():
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return out


def without_ground_truth(data):
    """A base like a real dataset's: no feature templates, no counterfactual sets."""
    return {k: v for k, v in data.items() if k not in ("templates", "counterfactual")}


def reader_rates(readers, out):
    """What each reader predicts on the stored images, as the share of the set's labels (computed here)."""
    return {k: (predict(m, out["train"]["x"]) == out["train"]["y"]).double().mean().item() for k, m in readers.items()}


@pytest.mark.parametrize("method,kind,feature", [("robust", "robust", "rf"), ("nonrobust", "standard", "nrf"),
                                                 ("det", "standard", "nrf")])
def test_without_ground_truth_the_intended_rate_is_the_held_out_readers(base, model, readers, method, kind, feature,
                                                                         capsys):
    """On a base without ground truth: reader_<kind>_rate is what that reader predicts on the set's images, and the
    intended rate is the rate of the reader of the intended feature's kind; below min_rate it is logged, not a stop."""
    nogt = without_ground_truth(base)
    cfg = entry(method, steps=1 if method == "nonrobust" else 10, n=60, readers=READERS)
    cfg["min_rate"] = 0.8 if method in derived.FEATURE_METHODS else 0  # the attack's target rate is checked as ever
    out = derived.derive(f"d_{method}", cfg, nogt, model, readers)
    rec = out["meta"]["derived"]
    want = reader_rates(readers, out)
    assert rec["reader_robust_rate"] == want["robust"] and rec["reader_standard_rate"] == want["standard"]
    assert (rec["intended"], rec["intended_by"]) == (feature, f"held-out {kind} reader")
    assert rec["intended_rate"] == want[kind]
    assert "rf_rate" not in rec and "nrf_rate" not in rec  # no ideal readers here
    assert rec["readers"] == READERS  # recorded as named (the workflow names the source's dataset: theirs then too)
    if method == "nonrobust":  # one step from another image: the standard reader mostly reads the start's class
        assert rec["intended_rate"] < 0.8
        assert "by the held-out standard reader (< min_rate 80%" in capsys.readouterr().err
    # without readers, nothing is measured and nothing is claimed
    plain = derived.derive(f"d_{method}", {k: v for k, v in cfg.items() if k != "readers"}, nogt, model)
    assert not {"intended_rate", "intended_by", "reader_robust_rate"} & set(plain["meta"]["derived"])


def test_with_ground_truth_the_intended_rate_stays_the_ideal_readers(base, model, readers):
    out = derived.derive("d_det", entry("det", steps=10, n=60, readers=READERS), base, model, readers)
    rec = out["meta"]["derived"]
    want = reader_rates(readers, out)
    assert rec["reader_robust_rate"] == want["robust"] and rec["reader_standard_rate"] == want["standard"]
    assert rec["intended_by"] == "ground truth" and rec["intended"] == "nrf"
    assert rec["intended_rate"] == rec["nrf_rate"]  # the ideal NRF reader's, not a held-out model's
    with pytest.raises(SystemExit, match=r"^datasets\.d_det\.readers: \['robust', 'standard'\] named, models \[\] "):
        derived.derive("d_det", entry("det", steps=1, n=10, readers=READERS), base, model)


def test_the_cli_loads_and_checks_the_readers(tmp_path, base, model):
    """--reader KIND=model.pt and --reader-trained-with KIND=digest: loaded like the source, checked against the
    settings' digest; the record lands in <out>.json, and the derived table reads it (and older records)."""
    from normrobust.aggregate import derived_table

    base_path = tmp_path / "gen.pt"
    save_torch(without_ground_truth(base), base_path)
    settings, _ = tiny.settings_of({"cell": {"dataset": "gen", "arch": "cnn", "norm": "bn", "regime": "standard"},
                                    "arch": ARCH, "regime": {"name": "standard", "attack": None},
                                    "training": {"epochs": 1, "batch_size": 16, "lr": 0.1, "history": {"n_test": 10}}})
    plain_meta = {k: v for k, v in base["meta"].items() if not isinstance(v, torch.Tensor)}
    files = {}
    for name, seed in (("source", 0), ("robust", 2), ("standard", 1)):
        files[name] = tmp_path / name / "model.pt"
        save_torch({"state_dict": model.state_dict(), "settings": settings.to_json(),
                    "cell": settings.model.cell(seed).as_dict(), "meta": plain_meta, "epochs": 1}, files[name])
    cfg = entry("det", steps=5, n=30, batch_size=16, readers=READERS)

    def run(*extra, out=tmp_path / "d_det.pt"):
        return derived.main(["--name", "d_det", "--settings", json.dumps(cfg), "--base", str(base_path),
                             "--source", str(files["source"]), "--device", "cpu", "--out", str(out),
                             "--threads", "1", *extra])

    args = [f"--reader={k}={files[k]}" for k in READERS] + [f"--reader-trained-with={k}={settings.digest()}"
                                                            for k in READERS]
    assert run(*args) == 0
    rec = json.loads((tmp_path / "d_det.json").read_text())
    images = load_prepared(tmp_path / "d_det.pt")["train"]
    rate = (predict(model, images["x"]) == images["y"]).double().mean().item()  # every reader is the source's model
    assert rec["reader_robust_rate"] == rec["reader_standard_rate"] == rec["intended_rate"] == pytest.approx(rate)
    assert rec["intended_by"] == "held-out standard reader"
    with pytest.raises(SystemExit, match="trained with other settings"):
        run(*args[:2], f"--reader-trained-with=robust={'0' * 16}", out=tmp_path / "bad.pt")
    with pytest.raises(SystemExit, match=r"^--reader: 'weak=x' is not KIND=VALUE"):
        run("--reader=weak=x", out=tmp_path / "bad.pt")
    with pytest.raises(SystemExit, match=r"^datasets\.d_det\.readers: \['robust', 'standard'\] named, models "
                                         r"\['robust'\] given"):
        run(args[0], out=tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()
    older = {k: v for k, v in rec.items() if not k.startswith("reader") and k != "intended_by"}
    table = derived_table([rec, {**older, "name": "d_old"}])
    assert table["intended_by"].tolist()[0] == "held-out standard reader" and table["intended_by"].isna().tolist()[1]
    assert table["reader_robust_rate"].tolist()[0] == rec["reader_robust_rate"]
    assert table["reader_standard_rate"].isna().tolist()[1]


def test_carries_says_what_measured_the_rate():
    import pandas as pd

    from normrobust.analysis.preconditions import carries

    derived_csv = pd.DataFrame([dict(name="d_r", n=1000, intended_rate=0.95, intended_by="held-out robust reader"),
                                dict(name="d_g", n=1000, intended_rate=0.5, intended_by="ground truth"),
                                dict(name="d_old", n=1000, intended_rate=0.95, intended_by=None),
                                dict(name="d_none", n=1000, intended_rate=None, intended_by=None)])
    frames = {"derived": derived_csv}
    for name, by, verdict in (("d_r", "held-out robust reader", "PASS"), ("d_g", "ground truth", "FAIL"),
                              ("d_old", "ground truth", "PASS")):
        p = carries(name, 0.8, "the label's robust feature")
        j = p.judge(frames)
        assert j.verdict == verdict and j.note == f"by the {by}"
        assert p.describe(j).startswith(f"{name} carries the label's robust feature on at least 80% of its images "
                                        f"(by the {by}) ({verdict}: ")
    p = carries("d_none", 0.8, "x")
    j = p.judge(frames)
    assert j.verdict == "INCONCLUSIVE" and "no intended rate recorded for d_none" in p.describe(j)
