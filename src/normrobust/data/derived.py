"""``python -m normrobust derive-data``: build a derived training set from a trained model (E3, E4; docs/science.md).

A derived dataset is a config entry ``{kind: derived, method, base, source: {arch, norm, regime, seed[, dataset]},
...}``; ``base`` names the dataset whose training images are transformed, ``source`` the trained cell whose
``model.pt`` does the transforming. Methods (Ilyas et al. 2019; Benz et al. 2021):

* ``robust`` (D_R) / ``nonrobust`` (D_NR): for each training image x (label y), start from another training image
  z0 (a seeded derangement: never x itself) and minimise ‖f(z) − f(x)‖₂, f = the penultimate-layer
  representation (the input of the model's last ``nn.Linear``, captured with a forward pre-hook, so it works for
  every arch), with normalised L2 gradient steps of ``step`` (z clipped to [0,1] after each step); the iterate
  with the smallest distance is kept (the robustness library's ``use_best``). Label y. ``robust`` takes an
  adversarially trained source, ``nonrobust`` a standard one: the config chooses, the code is the same.
* ``rand`` (D_rand): targeted PGD-L2 (``eps``, ``step``, ``steps``, no random start) toward t drawn uniformly
  from the K−1 other classes, on the source model. Label t.
* ``det`` (D_det): the same with t = (y+1) mod K. Label t.
* ``conflict`` (E4): the base is a derived ``robust`` set; its images of class y are attacked toward
  t = (y+1) mod K. Label t = y+1.

The source model runs in eval mode (``attack_mode(model, "eval")``), batched over the whole set. Settings and
their defaults (the papers'): ``n`` (all of the base's training images; else the first n), ``steps`` (robust /
nonrobust 1000, attacks 100), ``step`` (0.1), ``eps`` (0.5, attacks only), ``batch_size`` (500), ``seed`` (0);
``augment`` (crop / flip while training on it, default none) and ``training`` (settings overriding the config's
``training`` for every model trained on it, e.g. [B]'s lr 0.01 for D_NR and D_rand) do not change the images.

Checks (``min_rate``, default 0.8): the attack methods must move at least that fraction of the stored images to
their target class on the source model; on a base with ground truth (the generated dataset's templates), the
images must carry the intended feature by the ideal readers on at least that fraction: D_R the label's robust
feature, D_NR the label's non-robust feature, D_rand / D_det / conflict the new label's non-robust feature. A set
that falls short stops with one line naming the source cell and the rate: it does not implant what the study
needs. Held-out ``readers`` (trained cells other than the source, one robust, one standard) record the share of images
each classifies as the set's intended label; on real images that of the intended feature's kind is the intended rate.

Output: the prepared-dataset dict (see ``normrobust.data``): ``train`` = {x: uint8 derived images, y: new labels,
base_y: the base labels of the images they come from, start_index (robust / nonrobust): the base index of each
start image}; every other top-level entry of the base (``test``, ``counterfactual``, ``templates``) copied
unchanged, so models trained on it are evaluated on real test images; ``meta`` = the base's meta with ``name``,
``augment`` (the setting) and ``derived`` (settings + measured facts, see :func:`derive`); the same record is
written beside the dataset as ``<out>.json`` for the result tables.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from ..attacks import attack, attack_mode
from ..layout import Layout
from ..utils import log, pick_device, save_json, save_torch, seeded_generator, set_threads
from .derived_settings import (
    ATTACK_METHODS,
    DEFAULT_STEPS,
    DEFAULTS,
    FEATURE_METHODS,
    INTENDED,
    METHODS,
    check_rates,
    reader_pairs,
    resolve_settings,
)

# independent random streams of seeded_generator(seed, stream)
_STREAM_START, _STREAM_TARGET = 0, 1
_TINY = 1e-12
_LOG_EVERY_S = 30.0  # a progress line at least this often (and after the first and the last batch)

__all__ = ["METHODS", "DEFAULT_STEPS", "DEFAULTS", "resolve_settings", "last_linear", "penultimate_features",
           "start_indices", "choose_targets", "robustify", "targeted_pgd", "derive", "ground_truth", "read_by", "main"]


# ---------------------------------------------------------------------------------------------- features
def last_linear(model: nn.Module) -> nn.Linear:
    """The model's last registered ``nn.Linear`` (the classifier of every arch)."""
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ValueError(f"model {type(model).__name__} has no nn.Linear layer: no penultimate representation")
    return layers[-1]


@contextmanager
def penultimate_features(model: nn.Module):
    """Within the block, ``feats(x)`` returns the input of the model's last ``nn.Linear`` for images ``x``
    (flattened, fp32), through a forward pre-hook; differentiable when called under grad."""
    layer = last_linear(model)
    store: dict = {}

    def hook(_mod, args):
        store["f"] = args[0]

    handle = layer.register_forward_pre_hook(hook)

    def feats(x: Tensor) -> Tensor:
        store.clear()
        model(x)
        if "f" not in store:
            raise RuntimeError("the model's last nn.Linear was not called in its forward pass")
        return store.pop("f").flatten(1).float()

    try:
        yield feats
    finally:
        handle.remove()


# ---------------------------------------------------------------------------------------------- randomness
def start_indices(n: int, n_total: int, seed: int) -> Tensor:
    """For each of the first ``n`` of ``n_total`` images, the index of its start image: a seeded uniformly
    random cyclic permutation of all ``n_total`` (a derangement: never the image itself). CPU int64 [n]."""
    if n_total < 2:
        raise ValueError(f"robust / nonrobust need at least 2 training images to start from another one, "
                         f"got {n_total}")
    perm = torch.randperm(n_total, generator=seeded_generator(seed, _STREAM_START))
    nxt = torch.empty(n_total, dtype=torch.int64)
    nxt[perm] = perm.roll(-1)  # perm[i] starts from perm[i+1]: one n_total-cycle, no fixed point
    return nxt[:n]


def choose_targets(y: Tensor, method: str, num_classes: int, seed: int) -> Tensor:
    """Target labels of an attack method: rand → uniform among the K−1 other classes (seeded);
    det / conflict → (y+1) mod K. Same device as ``y``."""
    if method == "rand":
        shift = torch.randint(1, num_classes, y.shape, generator=seeded_generator(seed, _STREAM_TARGET))
        return (y + shift.to(y.device)) % num_classes
    if method in ("det", "conflict"):
        return (y + 1) % num_classes
    raise ValueError(f"choose_targets: method '{method}' has no targets (allowed: {', '.join(ATTACK_METHODS)})")


# ---------------------------------------------------------------------------------------------- the two transforms
class _Progress:
    def __init__(self, what: str, total: int):
        self.what, self.total, self.t0, self.last = what, total, time.perf_counter(), -math.inf

    def __call__(self, done: int, extra: str = "") -> None:
        now = time.perf_counter()
        if done in (1, self.total) or now - self.last >= _LOG_EVERY_S:
            self.last = now
            log(f"{self.what}: batch {done}/{self.total} ({now - self.t0:.1f}s){extra}")


def robustify(model: nn.Module, x: Tensor, z0: Tensor, *, steps: int, step: float, batch_size: int = 500,
              what: str = "robustify") -> tuple[Tensor, Tensor, Tensor]:
    """Minimise ‖f(z) − f(x)‖₂ over z from ``z0`` (f: :func:`penultimate_features`) with ``steps`` normalised
    L2 gradient steps of size ``step``, z clipped to [0,1] after each; per image the iterate with the smallest
    distance is returned (the start included). Model in eval mode. Float images in [0,1], [N,C,H,W].

    Returns (z, start distance [N], final distance [N]) (distances fp32, on x's device)."""
    if x.shape != z0.shape:
        raise ValueError(f"robustify: x {tuple(x.shape)} and z0 {tuple(z0.shape)} differ in shape")
    out, d_start, d_best = torch.empty_like(x), x.new_empty(len(x)), x.new_empty(len(x))
    n_batches = max(1, math.ceil(len(x) / batch_size))
    progress = _Progress(what, n_batches)
    view = (-1, *([1] * (x.dim() - 1)))
    with attack_mode(model, "eval"), penultimate_features(model) as feats:
        for b, i in enumerate(range(0, len(x), batch_size), 1):
            with torch.no_grad():
                goal = feats(x[i:i + batch_size].detach())
            z = z0[i:i + batch_size].detach().clone()
            best = z.clone()
            for k in range(steps + 1):
                if k < steps:
                    z.requires_grad_(True)
                    with torch.enable_grad():
                        d = (feats(z) - goal).pow(2).sum(1)  # squared distance: same direction, no sqrt at 0
                        (g,) = torch.autograd.grad(d.sum(), z)
                    d, z = d.detach(), z.detach()
                else:
                    with torch.no_grad():
                        d = (feats(z) - goal).pow(2).sum(1)
                if k == 0:
                    best_d = d.clone()
                    d_start[i:i + len(z)] = d.sqrt()
                else:
                    better = d < best_d
                    best = torch.where(better.view(view), z, best)
                    best_d = torch.where(better, d, best_d)
                if k < steps:
                    gn = g.flatten(1).norm(dim=1).clamp_min(_TINY).view(view)
                    z = (z - step * g / gn).clamp(0.0, 1.0)
            out[i:i + len(z)] = best
            d_best[i:i + len(z)] = best_d.sqrt()
            progress(b, f", feature distance {d_best[i:i + len(z)].mean().item():.4g} "
                        f"(from {d_start[i:i + len(z)].mean().item():.4g})")
    return out, d_start, d_best


def targeted_pgd(model: nn.Module, x: Tensor, target: Tensor, *, eps: float, step: float, steps: int,
                 batch_size: int = 500, what: str = "targeted PGD-L2") -> Tensor:
    """Targeted PGD-L2 (``normrobust.attacks.attack``, no random start) of ``x`` toward ``target``, batched,
    model in eval mode. Returns the adversarial images (float, [0,1], ‖x' − x‖₂ ≤ eps)."""
    spec = {"type": "pgd", "norm": "l2", "eps": eps, "step": step, "steps": steps, "targeted": True}
    out = torch.empty_like(x)
    n_batches = max(1, math.ceil(len(x) / batch_size))
    progress = _Progress(what, n_batches)
    with attack_mode(model, "eval"):
        for b, i in enumerate(range(0, len(x), batch_size), 1):
            t = target[i:i + batch_size]
            xa = attack(model, x[i:i + batch_size].detach(), t, spec)  # targeted: y is the target
            out[i:i + len(xa)] = xa
            with torch.no_grad():
                hit = (model(xa).argmax(1) == t).float().mean().item()
            progress(b, f", target rate {hit:.3f}")
    return out


# ---------------------------------------------------------------------------------------------- the dataset
def _uint8(x: Tensor) -> Tensor:
    return x.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def _float(x: Tensor) -> Tensor:
    return x.float().div(255) if x.dtype == torch.uint8 else x.float()


@torch.no_grad()
def _predict(model: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    with attack_mode(model, "eval"):
        return torch.cat([model(_float(x[i:i + batch_size])).argmax(1) for i in range(0, len(x), batch_size)])


def _cpu(obj):
    if isinstance(obj, Tensor):
        return obj.cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    return obj


def derive(name: str, cfg: dict, base: dict, model: nn.Module, readers: dict[str, nn.Module] | None = None) -> dict:
    """Build derived dataset ``name`` (config entry ``cfg``) from the prepared ``base`` dict and the trained
    source ``model`` (on the device the base's tensors are on). Returns the dataset dict, on the CPU.

    Bad settings raise SystemExit, one line naming the key. ``meta["derived"]`` holds ``method, base, source,
    readers, steps, step, eps, n, batch_size, seed, attack_mode`` ("eval"), ``seconds`` and measured facts:

    * robust / nonrobust: ``feature_dist_start`` / ``feature_dist_final`` (mean ‖f(z) − f(x)‖₂ at the start
      and at the kept iterate), ``feature_dist_ratio`` (mean per-image final/start), ``label_rate`` (fraction of
      the stored uint8 images the source model classifies as their label y);
    * attacks: ``source_acc`` (source model's accuracy on the base images, base labels), ``target_rate``
      (fraction of the stored uint8 images classified as their target), ``target_rate_float`` (the same before
      uint8 rounding), ``l2_mean`` / ``l2_max`` (‖x' − x‖₂ before rounding);
    * conflict also ``base_derived``: the base's own ``derived`` record;
    * with ground truth (a base with the generated dataset's templates): ``rf_rate`` (fraction of images the
      ideal RF reader assigns their base label y), ``nrf_rate`` (the ideal NRF reader assigns their new label),
      ``rf_label_rate`` (the RF reader assigns the new label), ``intended`` ("rf" / "nrf") and ``intended_rate``;
    * with ``readers`` (held-out models by kind, as the settings name them): :func:`read_by`'s rates, and by them
      ``intended`` / ``intended_rate`` without ground truth; ``intended_by``: "ground truth", "held-out <kind> reader".

    Stops (SystemExit, one line) when ``target_rate``, or ``intended_rate`` by the ground truth, is below ``min_rate``.
    """
    s, readers = _settings(name, cfg, base), readers or {}
    if set(readers) != set(s["readers"]):
        raise SystemExit(f"datasets.{name}.readers: {sorted(s['readers'])} named, models {sorted(readers)} given")
    n = s["n"]
    x = _float(base["train"]["x"][:n])
    y = base["train"]["y"][:n]
    t0 = time.perf_counter()
    record = {k: s[k] for k in _RECORD_KEYS}
    record["attack_mode"] = "eval"
    base_y = y.clone()
    _log_start(name, s, x.device)
    if s["method"] in FEATURE_METHODS:
        images, labels, extra = _feature_set(model, base, x, y, s, record)
    else:
        images, labels, extra = _attack_set(model, base["meta"], x, y, s, record)
    templates = base.get("templates")
    if templates is not None and "rf" in templates and "nrf" in templates:
        record.update(ground_truth(s["method"], images, y, labels, templates), intended_by="ground truth")
    record.update(read_by(readers, s["method"], images, labels, s["batch_size"], record))
    record["seconds"] = time.perf_counter() - t0
    check_rates(name, record, s["min_rate"])
    _log_facts(name, record)
    train = {"x": images, "y": labels, "base_y": base_y, **extra}
    out = {k: v for k, v in base.items() if k not in ("train", "meta")}  # test, counterfactual, ...: unchanged
    new_meta = {**base["meta"], "name": name, "augment": s["augment"], "derived": record}
    return _cpu({"train": train, **out, "meta": new_meta})


#: the settings copied into ``meta["derived"]``, in this order
_RECORD_KEYS = ("method", "base", "source", "readers", "steps", "step", "eps", "n", "batch_size", "seed")
#: the measured facts logged when a set is done
_FACT_KEYS = ("feature_dist_start", "feature_dist_final", "feature_dist_ratio", "label_rate", "source_acc",
              "target_rate", "l2_mean", "rf_rate", "nrf_rate", "reader_robust_rate", "reader_standard_rate",
              "intended_rate")


def _settings(name: str, cfg: dict, base: dict) -> dict:
    """:func:`resolve_settings` for this base, plus the checks that need the base; SystemExit, one line."""
    meta = base["meta"]
    n_base = int(base["train"]["x"].shape[0])
    try:
        s = resolve_settings(name, cfg, n_base)
        _check_base(name, s, meta, n_base)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    K = int(meta["num_classes"])
    if K < 2:
        raise SystemExit(f"datasets.{name}.base: '{s['base']}' has {K} class(es); derived datasets need >= 2")
    return s


def _check_base(name: str, s: dict, meta: dict, n_base: int) -> None:
    """robust / nonrobust need 2 training images; conflict needs a derived 'robust' base (ValueError)."""
    if s["method"] in FEATURE_METHODS and n_base < 2:
        raise ValueError(f"datasets.{name}.base: '{s['base']}' has {n_base} training image(s); "
                         f"method '{s['method']}' needs at least 2")
    if s["method"] == "conflict" and (meta.get("derived") or {}).get("method") != "robust":
        got = (meta.get("derived") or {}).get("method")
        raise ValueError(f"datasets.{name}.base: method 'conflict' needs a derived 'robust' base, "
                         f"but '{s['base']}' is " + (f"derived by '{got}'" if got else "not derived"))


def _log_start(name: str, s: dict, device) -> None:
    log(f"deriving '{name}' ({s['method']}) from '{s['base']}': {s['n']} images, {s['steps']} steps of {s['step']}"
        + (f", eps {s['eps']}" if s["eps"] is not None else "") + f", batch {s['batch_size']}, on {device}")


def _log_facts(name: str, record: dict) -> None:
    facts = {k: v for k, v in record.items() if k in _FACT_KEYS}
    log(f"derived '{name}': " + ", ".join(f"{k} {v:.4g}" for k, v in facts.items()) + f" ({record['seconds']:.1f}s)")


def _feature_set(model: nn.Module, base: dict, x: Tensor, y: Tensor, s: dict,
                 record: dict) -> tuple[Tensor, Tensor, dict]:
    """robust / nonrobust: :func:`robustify` from the seeded start images, label y. Adds the feature distances
    and ``label_rate`` to ``record``; returns (uint8 images, labels, {"start_index": start})."""
    bs = s["batch_size"]
    start = start_indices(s["n"], int(base["train"]["x"].shape[0]), s["seed"]).to(x.device)
    z0 = _float(base["train"]["x"][start])
    z, d0, d1 = robustify(model, x, z0, steps=s["steps"], step=s["step"], batch_size=bs, what=s["method"])
    images, labels = _uint8(z), y.clone()
    record.update(feature_dist_start=d0.mean().item(), feature_dist_final=d1.mean().item(),
                  feature_dist_ratio=(d1 / d0.clamp_min(_TINY)).mean().item(),
                  label_rate=(_predict(model, images, bs) == labels).float().mean().item())
    return images, labels, {"start_index": start}


def _attack_set(model: nn.Module, meta: dict, x: Tensor, y: Tensor, s: dict,
                record: dict) -> tuple[Tensor, Tensor, dict]:
    """rand / det / conflict: :func:`targeted_pgd` toward :func:`choose_targets`, label the target. Adds the
    rates and L2 norms (conflict: ``base_derived``) to ``record``; returns (uint8 images, targets, {})."""
    bs, method = s["batch_size"], s["method"]
    target = choose_targets(y, method, int(meta["num_classes"]), s["seed"])
    xa = targeted_pgd(model, x, target, eps=s["eps"], step=s["step"], steps=s["steps"], batch_size=bs,
                      what=method)
    l2 = (xa - x).flatten(1).norm(dim=1)
    images = _uint8(xa)
    record.update(source_acc=(_predict(model, x, bs) == y).float().mean().item(),
                  target_rate=(_predict(model, images, bs) == target).float().mean().item(),
                  target_rate_float=(_predict(model, xa, bs) == target).float().mean().item(),
                  l2_mean=l2.mean().item(), l2_max=l2.max().item())
    if method == "conflict":
        record["base_derived"] = meta["derived"]
    return images, target, {}


def ground_truth(method: str, images: Tensor, base_y: Tensor, labels: Tensor, templates: dict) -> dict:
    """What the derived images carry by the generated dataset's ideal readers (normrobust.data.generated):
    ``rf_rate`` (RF of the base label), ``rf_label_rate`` (RF of the new label), ``nrf_rate`` (NRF of the new
    label), ``intended`` and ``intended_rate`` (the fraction carrying the feature the method is meant to implant)."""
    from .generated import ideal_predict

    dev = images.device
    rf = ideal_predict(images, templates["rf"].to(dev))
    nrf = ideal_predict(images, templates["nrf"].to(dev))
    rates = {"rf_rate": (rf == base_y.to(dev)).double().mean().item(),
             "rf_label_rate": (rf == labels.to(dev)).double().mean().item(),
             "nrf_rate": (nrf == labels.to(dev)).double().mean().item()}
    feature = INTENDED[method]
    return {**rates, "intended": feature,
            "intended_rate": rates["rf_label_rate"] if feature == "rf" else rates["nrf_rate"]}


def read_by(readers: dict[str, nn.Module], method: str, images: Tensor, labels: Tensor, batch_size: int,
            record: dict) -> dict:
    """``reader_<kind>_rate``: the fraction of ``images`` each held-out reader classifies as the set's intended label,
    its stored one (D_R / D_NR: y; D_rand / D_det / conflict: t); without ground truth in ``record``, also
    ``intended``, ``intended_rate`` by the reader of the intended feature's kind and ``intended_by``."""
    out = {f"reader_{k}_rate": (_predict(m, images, batch_size) == labels.to(images.device)).double().mean().item()
           for k, m in sorted(readers.items())}
    if readers and record.get("intended_rate") is None:
        kind = {"rf": "robust", "nrf": "standard"}[INTENDED[method]]  # robust models read RFs, standard ones NRFs
        out.update(intended=INTENDED[method], intended_rate=out[f"reader_{kind}_rate"],
                   intended_by=f"held-out {kind} reader")
    return out


# ---------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust derive-data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="dataset name (a key of the config's datasets)")
    p.add_argument("--settings", required=True, help="the dataset's config entry, as JSON")
    p.add_argument("--base", required=True, help=f"the base's prepared file ({Layout().data('<base>')})")
    p.add_argument("--source", required=True, help="the source cell's model.pt")
    p.add_argument("--out", required=True, help="output .pt file")
    p.add_argument("--device", default=None,
                   help="auto (CUDA when available), cpu or cuda (default: $NORMROBUST_DEVICE, else auto)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--source-trained-with", default=None, help="the digest of the training settings the source "
                                                                "model must have (the workflow passes it)")
    p.add_argument("--reader", action="append", default=[], metavar="KIND=MODEL",
                   help="a held-out reader's model.pt (KIND: robust, standard), once per reader the settings name")
    p.add_argument("--reader-trained-with", action="append", default=[], metavar="KIND=DIGEST",
                   help="the digest of the training settings a reader model must have (the workflow passes it)")
    a = p.parse_args(argv)
    try:
        cfg = json.loads(a.settings)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--settings: not valid JSON ({e})") from None
    try:
        resolve_settings(a.name, cfg)  # fail before loading anything
    except ValueError as e:
        raise SystemExit(str(e)) from None
    files, digests = reader_pairs("--reader", a.reader), reader_pairs("--reader-trained-with", a.reader_trained_with)
    set_threads(a.threads)
    device = pick_device(a.device)
    from ..models.load import load_model
    from .loading import load_prepared

    def load(path: str, expect: str | None, where: str) -> nn.Module:
        model, _, cell, model_meta = load_model(path, device, expect=expect)
        for key, mine, theirs in (("num_classes", [model_meta["num_classes"]], [base["meta"]["num_classes"]]),
                                  ("shape", model_meta["shape"], base["meta"]["shape"])):
            if [int(v) for v in mine] != [int(v) for v in theirs]:
                raise SystemExit(f"datasets.{a.name}.{where}: the model {path} has {key} {model_meta[key]}, "
                                 f"but base '{cfg.get('base')}' has {base['meta'][key]}")
        for p_ in model.parameters():
            p_.requires_grad_(False)  # only input gradients are needed
        log(f"{where} model {path}: cell {cell.path}")
        return model

    base = load_prepared(a.base, device)
    model = load(a.source, a.source_trained_with, "source")
    readers = {k: load(f, digests.get(k), f"readers.{k}") for k, f in files.items()}
    data = derive(a.name, cfg, base, model, readers)
    save_torch(data, a.out)
    save_json({"name": a.name, **data["meta"]["derived"]}, str(a.out).removesuffix(".pt") + ".json")
    log(f"wrote {a.out}: train {tuple(data['train']['x'].shape)}, test {tuple(data['test']['x'].shape)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
