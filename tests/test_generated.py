"""The synthetic ground-truth dataset (PAPER.md E5) has the properties its design claims.

Each test targets one claim and fails for a generator that breaks it: determinism, the NRF being small
enough for an ε = 8/255 L∞ attack to swap while the RF is not, the NRF predicting the label better than
the RF (linear probes), the counterfactual sets, the agreement rates, and argument validation.
"""

from __future__ import annotations

import inspect
import math
import sys
import time
from pathlib import Path

import pytest
import torch

try:
    from normrobust.data.generated import generate, ideal_predict, template_scores
except ImportError:  # package not installed yet: run from the source tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from normrobust.data.generated import generate, ideal_predict, template_scores

EPS = 8 / 255
K, S = 10, 16


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data():
    return generate(seed=0)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).to(torch.float64)


def _low_pass(x: torch.Tensor) -> torch.Tensor:
    """Keep only Fourier components of at most one cycle per image in each direction (an ideal filter,
    written here independently of the generator): the band where the RF lives."""
    x = x.to(torch.float64) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float64)
    f = torch.fft.fftfreq(x.shape[-1], d=1.0 / x.shape[-1]).abs() <= 1
    mask = (f[:, None] & f[None, :]).to(torch.complex128)
    return torch.fft.ifft2(torch.fft.fft2(x) * mask).real


def _high_pass(x: torch.Tensor) -> torch.Tensor:
    x = x.to(torch.float64) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float64)
    return x - _low_pass(x)


def _linf_flip_distance(t: torch.Tensor) -> torch.Tensor:
    """For every pair (y, j) of templates: the smallest L∞ perturbation that moves the noise-free image
    0.5 + t_y onto the boundary between y and j of the ideal linear classifier, ½‖d‖² / ‖d‖₁, d = t_y − t_j.
    Diagonal set to +inf."""
    t = _flat(t)
    d = t[:, None] - t[None]
    out = 0.5 * d.pow(2).sum(-1) / d.abs().sum(-1).clamp_min(1e-30)
    return out + torch.diag(torch.full((t.shape[0],), math.inf, dtype=torch.float64))


# ------------------------------------------------------------------------------------------- structure

def test_api_signature_and_defaults():
    sig = inspect.signature(generate)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in sig.parameters.values())
    defaults = {k: p.default for k, p in sig.parameters.items()}
    assert defaults == dict(seed=0, n_train=4000, n_test=1000, image_size=16, num_classes=10, rf_amplitude=64,
                            nrf_amplitude=3, nrf_tile=4, noise_std=8, rf_agreement=0.75, nrf_agreement=1.0,
                            test_rf_agreement=None,  # None: the test split's RF agrees as rf_agreement says
                            rf_faint_share=0.0, rf_faint_amplitude=None)  # None: rf_amplitude / 8


def test_shapes_dtypes_ranges_and_meta(data):
    for split, n in (("train", 4000), ("test", 1000)):
        d = data[split]
        assert set(d) == {"x", "y", "rf_y", "nrf_y"}
        assert d["x"].dtype == torch.uint8 and d["x"].shape == (n, 3, S, S)
        for k in ("y", "rf_y", "nrf_y"):
            assert d[k].dtype == torch.int64 and d[k].shape == (n,)
            assert int(d[k].min()) >= 0 and int(d[k].max()) < K
        assert torch.bincount(d["y"], minlength=K).tolist() == [n // K] * K  # balanced classes
        assert 0 < int(d["x"].min()) and int(d["x"].max()) < 255  # no saturation at default settings
    cf = data["counterfactual"]
    assert set(cf) == {"rf_only", "nrf_only", "conflict"}
    assert set(cf["conflict"]) == {"x", "y", "y_nrf"}
    for part in cf.values():
        assert part["x"].dtype == torch.uint8 and part["x"].shape == (1000, 3, S, S)
        assert torch.equal(part["y"], data["test"]["y"])
    assert cf["conflict"]["y_nrf"].dtype == torch.int64
    for k in ("rf", "nrf"):
        assert data["templates"][k].dtype == torch.float32 and data["templates"][k].shape == (K, 3, S, S)

    meta = data["meta"]
    assert meta["name"] == "generated" and meta["num_classes"] == K and meta["shape"] == [3, S, S]
    assert meta["params"] == dict(seed=0, n_train=4000, n_test=1000, image_size=16, num_classes=10,
                                  rf_amplitude=64, nrf_amplitude=3, nrf_tile=4, noise_std=8, rf_agreement=0.75,
                                  nrf_agreement=1.0, test_rf_agreement=0.75, rf_faint_share=0.0,
                                  rf_faint_amplitude=8.0)
    x = data["train"]["x"].to(torch.float64) / 255
    assert meta["mean"] == pytest.approx(x.mean((0, 2, 3)).tolist(), abs=1e-9)
    assert meta["std"] == pytest.approx(x.std((0, 2, 3), correction=0).tolist(), abs=1e-9)
    assert all(isinstance(v, float) for v in meta["mean"] + meta["std"])


def _tensors(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _tensors(v, f"{prefix}/{k}")


def test_determinism_and_independent_streams():
    kw = dict(n_train=300, n_test=200)
    a, b, c = generate(seed=3, **kw), generate(seed=3, **kw), generate(seed=4, **kw)
    ta, tb, tc = dict(_tensors(a)), dict(_tensors(b)), dict(_tensors(c))
    assert ta.keys() == tb.keys() and len(ta) == 18  # templates["nrf_families"] included
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]), k
    assert a["meta"] == b["meta"]
    for k in ("/train/x", "/test/x", "/counterfactual/conflict/x", "/templates/rf", "/templates/nrf",
              "/train/y"):
        assert not torch.equal(ta[k], tc[k]), k
    # every split has its own random stream: the train split does not depend on the test size
    d = generate(seed=3, n_train=300, n_test=7)
    assert torch.equal(d["train"]["x"], a["train"]["x"])
    assert torch.equal(d["templates"]["nrf"], a["templates"]["nrf"])


def test_generation_is_fast():
    t0 = time.perf_counter()
    d = generate(seed=1, n_train=50_000, n_test=100)
    elapsed = time.perf_counter() - t0
    assert d["train"]["x"].shape == (50_000, 3, S, S)
    assert elapsed < 5.0, f"50k images took {elapsed:.1f}s"


# ------------------------------------------------------------------------------------ feature geometry

def test_nrf_below_eps_rf_far_above(data):
    rf, nrf = data["templates"]["rf"].double(), data["templates"]["nrf"].double()
    # amplitudes: NRF peak = 3/255 < ε/2 (an ε-attack can move the image from one NRF to another);
    # RF peak = 64/255 for every class, far above ε
    assert nrf.abs().amax((1, 2, 3)) == pytest.approx([3 / 255] * K, rel=1e-6)
    assert float(nrf.abs().max()) < EPS / 2
    assert rf.abs().amax((1, 2, 3)) == pytest.approx([64 / 255] * K, rel=1e-6)
    assert float(rf.pow(2).mean((1, 2, 3)).sqrt().min()) > 3 * EPS  # large energy, not one bright pixel
    # the L∞ distance to the ideal classifier's boundary: NRF pairs exactly at the amplitude, RF pairs far
    assert torch.allclose(_linf_flip_distance(nrf).min(), torch.tensor(3 / 255, dtype=torch.float64))
    assert float(_linf_flip_distance(nrf)[~torch.eye(K, dtype=torch.bool)].max()) < EPS / 2
    assert float(_linf_flip_distance(rf).min()) > 2.5 * EPS


def test_templates_live_in_orthogonal_frequency_bands(data):
    rf, nrf = data["templates"]["rf"].double(), data["templates"]["nrf"].double()
    # RF: smooth (all energy within one cycle per image); NRF: none there
    assert torch.allclose(_low_pass(rf), rf, atol=1e-6)
    assert float(_low_pass(nrf).abs().max()) < 1e-9
    # the families are orthogonal to each other, and each is orthogonal within itself
    f_rf, f_nrf = _flat(rf), _flat(nrf)
    norms = f_rf.norm(dim=1)[:, None] * f_nrf.norm(dim=1)[None]
    assert float(((f_rf @ f_nrf.T) / norms).abs().max()) < 1e-6  # float32 templates: zero to rounding
    for f in (f_rf, f_nrf):
        g = f @ f.T
        off = g - torch.diag(torch.diag(g))
        assert float(off.abs().max()) < 1e-5 * float(torch.diag(g).min())
    # the NRF is a ±amplitude pattern on every pixel and channel, and two NRFs differ on half the pixels
    assert torch.allclose(nrf.abs(), torch.full_like(nrf, 3 / 255))
    differ = (f_nrf[:, None] != f_nrf[None]).double().mean(-1)
    assert torch.allclose(differ[~torch.eye(K, dtype=torch.bool)], torch.tensor(0.5, dtype=torch.float64))
    # the colours of the RF classes differ (per-class channel means are not all equal)
    assert float(rf.mean((2, 3)).std(0).min()) > 1 / 255


def test_images_carry_the_stated_features(data):
    for split in ("train", "test"):
        d = data[split]
        assert float((ideal_predict(d["x"], data["templates"]["nrf"]) == d["nrf_y"]).double().mean()) > 0.995
        assert float((ideal_predict(d["x"], data["templates"]["rf"]) == d["rf_y"]).double().mean()) > 0.995
    # template_scores accepts [0,1] floats and uint8 alike
    x = data["test"]["x"][:50]
    assert torch.allclose(template_scores(x, data["templates"]["rf"]),
                          template_scores(x.double() / 255, data["templates"]["rf"]))


# ------------------------------------------------------------------------------------ usefulness (probes)

def _probe_accuracy(x_train, y_train, x_test, y_tests, steps=30):
    """Multinomial logistic regression (LBFGS, weak L2) on flattened, mean-centred features."""
    xtr, xte = _flat(x_train).float(), _flat(x_test).float()
    mu = xtr.mean(0)
    scale = (xtr - mu).std()
    xtr, xte = (xtr - mu) / scale, (xte - mu) / scale
    w = torch.zeros(xtr.shape[1], K, requires_grad=True)
    b = torch.zeros(K, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xtr @ w + b, y_train) + 1e-3 * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = (xte @ w + b).argmax(1)
    return [float((pred == y).double().mean()) for y in y_tests]


def test_nrf_predicts_the_label_better_than_rf(data):
    tr, te = data["train"], data["test"]
    # probe A sees only the high-frequency band (where the NRF lives), probe B only the low band (the RF)
    acc_nrf_y, = _probe_accuracy(_high_pass(tr["x"]), tr["y"], _high_pass(te["x"]), [te["y"]])
    acc_rf_y, acc_rf_rfy = _probe_accuracy(_low_pass(tr["x"]), tr["y"], _low_pass(te["x"]),
                                           [te["y"], te["rf_y"]])
    print(f"probe accuracy vs y: high-pass (NRF) {acc_nrf_y:.3f}, low-pass (RF) {acc_rf_y:.3f}; "
          f"low-pass vs rf_y {acc_rf_rfy:.3f}")
    assert acc_nrf_y > 0.95
    assert acc_nrf_y > acc_rf_y + 0.15
    assert 0.6 < acc_rf_y < 0.85  # the RF is useful (chance 0.1), but only as useful as rf_agreement = 0.75
    assert acc_rf_rfy > 0.95  # and what the low band carries is the RF itself


# ------------------------------------------------------------------------------------------- robustness

def _nrf_swap_attack(x, y_from, y_to, nrf, eps):
    """δ = ε·sign(nrf[t] − nrf[y]), clipped to the image range, returned as floats in [0,1]."""
    delta = eps * torch.sign(nrf[y_to] - nrf[y_from]).double()
    return (x.double() / 255 + delta).clamp(0, 1)


def test_eps_attack_flips_the_nrf_but_not_the_rf(data):
    te, t = data["test"], data["templates"]
    g = torch.Generator().manual_seed(0)
    target = (te["nrf_y"] + 1 + torch.randint(0, K - 1, te["y"].shape, generator=g)) % K
    nrf_clean, rf_clean = ideal_predict(te["x"], t["nrf"]), ideal_predict(te["x"], t["rf"])
    assert float((nrf_clean == te["y"]).double().mean()) > 0.99  # nrf_agreement = 1

    x_adv = _nrf_swap_attack(te["x"], te["nrf_y"], target, t["nrf"], EPS)
    assert float((x_adv - te["x"].double() / 255).abs().max()) <= EPS + 1e-12
    flip = float((ideal_predict(x_adv, t["nrf"]) == target).double().mean())
    rf_kept = float((ideal_predict(x_adv, t["rf"]) == rf_clean).double().mean())
    print(f"ε=8/255: NRF flipped to target {flip:.3f}, RF prediction unchanged {rf_kept:.3f}")
    assert flip > 0.95
    assert rf_kept > 0.99

    # the threshold sits at the NRF amplitude (3/255): a 2/255 attack does not swap it
    x_weak = _nrf_swap_attack(te["x"], te["nrf_y"], target, t["nrf"], 2 / 255)
    assert float((ideal_predict(x_weak, t["nrf"]) == target).double().mean()) < 0.05

    # the strongest ε = 8/255 attack on the RF itself (towards the closest RF) fails on almost every image
    rf = _flat(t["rf"])
    dist = _linf_flip_distance(t["rf"])[te["rf_y"]]
    closest = dist.argmin(1)
    delta = EPS * torch.sign(rf[closest] - rf[te["rf_y"]]).reshape(-1, 3, S, S)
    x_rf_adv = (te["x"].double() / 255 + delta).clamp(0, 1)
    assert float((ideal_predict(x_rf_adv, t["rf"]) == te["rf_y"]).double().mean()) > 0.99


# ------------------------------------------------------------------------------------------ counterfactual

def _normalised_corr(x, templates):
    """⟨x − 0.5, t_k⟩ / ‖t_k‖²: ≈ 1 when the image carries t_k, ≈ 0 when it carries no feature of the family."""
    t = _flat(templates)
    xx = (_flat(x) / 255 if x.dtype == torch.uint8 else _flat(x)) - 0.5
    return xx @ t.T / t.pow(2).sum(1)


def test_counterfactual_sets(data):
    cf, t, te = data["counterfactual"], data["templates"], data["test"]
    ar = torch.arange(len(te["y"]))

    # the normal test images carry a full NRF (correlation ~1) - the reference for "near zero" below
    c_test = _normalised_corr(te["x"], t["nrf"])
    assert float(c_test[ar, te["nrf_y"]].mean()) == pytest.approx(1.0, abs=0.05)

    # RF only: no NRF correlation, RF of y
    c = _normalised_corr(cf["rf_only"]["x"], t["nrf"])
    assert abs(float(c.mean())) < 0.01 and float((c.abs() < 0.5).double().mean()) > 0.999
    assert float((ideal_predict(cf["rf_only"]["x"], t["rf"]) == te["y"]).double().mean()) > 0.995

    # NRF only: flat grey plus noise in the low band, NRF of y
    r = _normalised_corr(cf["nrf_only"]["x"], t["rf"])
    assert float(r.abs().max()) < 0.1
    low = _low_pass(cf["nrf_only"]["x"]).mean(0)  # average image's low band: grey
    assert float((low - 0.5).abs().max()) < 2 / 255
    assert float((ideal_predict(cf["nrf_only"]["x"], t["nrf"]) == te["y"]).double().mean()) > 0.995

    # conflict: RF of y, NRF of another class y_nrf, every offset used
    conf = cf["conflict"]
    assert bool((conf["y_nrf"] != conf["y"]).all())
    offsets = torch.bincount((conf["y_nrf"] - conf["y"]) % K, minlength=K)
    assert offsets[0] == 0 and bool((offsets[1:] > 60).all())  # ~111 each
    assert float((ideal_predict(conf["x"], t["nrf"]) == conf["y_nrf"]).double().mean()) > 0.995
    assert float((ideal_predict(conf["x"], t["rf"]) == conf["y"]).double().mean()) > 0.995


# ------------------------------------------------------------------------------------------- faint images

FAINT = dict(seed=5, n_train=3000, n_test=1000, rf_amplitude=32, nrf_amplitude=[1.5, 3], nrf_tile=8,
             rf_agreement=0.9, test_rf_agreement=1.0)  # the default config's data, smaller


def test_faint_images_carry_a_faint_rf_and_change_nothing_else():
    plain = generate(**FAINT)
    d = generate(**FAINT, rf_faint_share=0.2, rf_faint_amplitude=3)
    t = d["templates"]["rf"]
    for split, n in (("train", 3000), ("test", 1000)):
        faint = d[split]["rf_faint"]
        assert faint.dtype == torch.bool and faint.shape == (n,)
        assert abs(float(faint.double().mean()) - 0.2) <= 4 * math.sqrt(0.2 * 0.8 / n)
        # the faint images' RF has 3/32 of the amplitude (projection on their RF template), the others the full one
        x, rf_y = d[split]["x"], d[split]["rf_y"]
        amp = _normalised_corr(x, t)[torch.arange(n), rf_y]
        assert float(amp[faint].mean()) == pytest.approx(3 / 32, abs=0.02)
        assert float(amp[~faint].mean()) == pytest.approx(1.0, abs=0.02)
        # its own random stream: every other image, label and feature is the one without faint images
        assert torch.equal(x[~faint], plain[split]["x"][~faint]) and not torch.equal(x[faint], plain[split]["x"][faint])
        for k in ("y", "rf_y", "nrf_y"):
            assert torch.equal(d[split][k], plain[split][k])
    assert "rf_faint" not in plain["train"] and torch.equal(d["templates"]["rf"], plain["templates"]["rf"])
    # the ideal reader (of the full-amplitude templates) reads every faint test image's RF: it assumes no amplitude
    faint = d["test"]["rf_faint"]
    assert float((ideal_predict(d["test"]["x"], t) == d["test"]["rf_y"])[faint].double().mean()) > 0.99
    # the counterfactual sets keep each test image's amplitude
    for name in ("rf_only", "conflict"):
        amp = _normalised_corr(d["counterfactual"][name]["x"], t)[torch.arange(1000), d["test"]["y"]]
        assert float(amp[faint].mean()) == pytest.approx(3 / 32, abs=0.02), name
        assert float(amp[~faint].mean()) == pytest.approx(1.0, abs=0.02), name


def test_a_small_eps_erases_the_faint_rf_only():
    """E1's design: at ε = 1.5/255 the ideal reader of the faint RF (its template at the faint amplitude, which reads
    every clean faint image right) loses many faint images; the full RF stays out of reach."""
    d = generate(**FAINT, rf_faint_share=0.2, rf_faint_amplitude=3)
    te, t = d["test"], d["templates"]["rf"]
    faint = te["rf_faint"]
    for scale, which, lo, hi in ((3 / 32, faint, 0.3, 1.0), (1.0, ~faint, 0.0, 0.0)):
        tt = t * scale
        x = te["x"][which]
        y = te["y"][which]
        assert float((ideal_predict(x, tt) == y).double().mean()) > 0.99
        rf = _flat(tt)
        closest = _linf_flip_distance(tt)[y].argmin(1)
        delta = 1.5 / 255 * torch.sign(rf[closest] - rf[y]).reshape(-1, 3, S, S)
        erased = float((ideal_predict((x.double() / 255 + delta).clamp(0, 1), tt) != y).double().mean())
        assert lo <= erased <= hi, (scale, erased)


# ------------------------------------------------------------------------------------------- agreement

@pytest.mark.parametrize("rf_agreement,nrf_agreement", [(0.75, 1.0), (0.5, 0.9), (0.0, 0.3), (1.0, 0.0)])
def test_agreement_rates_are_honoured(rf_agreement, nrf_agreement):
    n = 5000
    d = generate(seed=7, n_train=n, n_test=10, rf_agreement=rf_agreement, nrf_agreement=nrf_agreement)["train"]
    for key, p in (("rf_y", rf_agreement), ("nrf_y", nrf_agreement)):
        agree = d[key] == d["y"]
        frac = float(agree.double().mean())
        se = math.sqrt(p * (1 - p) / n)
        assert abs(frac - p) <= 4 * se + 1e-12, (key, frac, p)
        # disagreeing features come from a uniformly random *other* class
        off = torch.bincount(((d[key] - d["y"]) % K)[~agree], minlength=K)
        if int((~agree).sum()) > 1000:
            expected = int((~agree).sum()) / (K - 1)
            assert off[0] == 0 and bool(((off[1:] - expected).abs() < 5 * math.sqrt(expected)).all())


# ------------------------------------------------------------------------------------------- validation

@pytest.mark.parametrize("name,value", [
    ("rf_agreement", 1.5), ("rf_agreement", -0.1), ("nrf_agreement", float("nan")), ("nrf_agreement", 2),
    ("n_train", 0), ("n_test", -1), ("n_train", 10.5), ("seed", -1), ("seed", True),
    ("image_size", 0), ("image_size", 10), ("image_size", 4),
    ("num_classes", 1), ("num_classes", 16),
    ("nrf_amplitude", 0), ("nrf_amplitude", -3), ("rf_amplitude", 0), ("rf_amplitude", float("inf")),
    ("noise_std", -1), ("noise_std", "8"), ("rf_faint_share", 1.5), ("rf_faint_share", -0.1),
    ("rf_faint_amplitude", 0), ("rf_faint_amplitude", 65),
])
def test_bad_arguments_raise_value_error_naming_them(name, value):
    with pytest.raises(ValueError, match=name):
        generate(**{name: value, "n_train": 20, "n_test": 20} if name not in ("n_train", "n_test")
                 else {name: value})


def test_other_valid_sizes():
    d = generate(seed=2, n_train=60, n_test=30, image_size=32, num_classes=15, noise_std=0)
    assert d["train"]["x"].shape == (60, 3, 32, 32) and d["templates"]["nrf"].shape == (15, 3, 32, 32)
    assert int(d["train"]["y"].max()) == 14
    # noise-free: the images are exactly the rounded sum of grey, RF and NRF
    tr, t = d["train"], d["templates"]
    expect = ((0.5 + t["rf"][tr["rf_y"]] + t["nrf"][tr["nrf_y"]]) * 255).round().clamp(0, 255).to(torch.uint8)
    assert torch.equal(tr["x"], expect)
