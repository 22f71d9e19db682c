"""A derived dataset's settings (E3/E4): validated and completed with the papers' defaults, without torch.

Config validation checks them at planning time; ``normrobust.data.derived`` builds the dataset from them. A set may
name two held-out ``readers`` (``{robust: cell, standard: cell}``, each ``{arch, norm, regime, seed[, dataset]}``,
the dataset defaulting to the source's): trained cells other than the source, one adversarially trained and one
standard, that measure what the set carries where its base has no ground truth (real images).
"""

from __future__ import annotations

import math
from numbers import Real

METHODS = ("robust", "nonrobust", "rand", "det", "conflict")
FEATURE_METHODS = ("robust", "nonrobust")
ATTACK_METHODS = ("rand", "det", "conflict")
SETTING_KEYS = ("kind", "method", "base", "source", "readers", "n", "steps", "step", "eps", "batch_size", "seed",
                "min_rate", "augment", "training")
#: keys that change how models are trained on the dataset, not the dataset: they never rebuild it
TRAINING_KEYS = ("training",)
SOURCE_KEYS = ("arch", "norm", "regime", "seed", "dataset")
#: the held-out readers of a derived set: an adversarially trained model reads robust features, a standard one the
#: non-robust features (standard models rely on them)
READER_KINDS = ("robust", "standard")
#: min_rate: a derived set must reach its target (attacks) and, on the generated data, carry its intended feature
#: (by the ideal readers) on at least this fraction of its images, else making it stops (an implant that took on
#: fewer than 4 images in 5 is not the dataset the study describes); a held-out reader's rate is recorded, not a stop
DEFAULTS = {"step": 0.1, "eps": 0.5, "batch_size": 500, "seed": 0, "min_rate": 0.8}
DEFAULT_STEPS = {"robust": 1000, "nonrobust": 1000, "rand": 100, "det": 100, "conflict": 100}
#: the feature each method is meant to implant with the dataset's label: "rf" (robust) or "nrf" (non-robust)
INTENDED = {"robust": "rf", "nonrobust": "nrf", "rand": "nrf", "det": "nrf", "conflict": "nrf"}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def resolve_settings(name: str, cfg: dict, n_base: int | None = None) -> dict:
    """Validate a derived dataset's config entry and fill in the defaults.

    Returns ``{method, base, source, readers, n, steps, step, eps, batch_size, seed, min_rate, augment}`` (``eps`` is
    None for robust / nonrobust; ``n`` is None when not given and ``n_base`` is unknown; ``readers`` is {} or
    :func:`resolve_readers`'s). Raises ValueError, one line naming the
    key (``datasets.<name>.<key>``) and what is allowed. ``n_base``: the base's training set size, to check ``n``.
    """
    where = f"datasets.{name}"
    _check_entry(where, cfg)
    method = _method(where, cfg)
    base = _base(where, name, cfg)
    source = _source(where, cfg)
    readers = resolve_readers(name, cfg, source)
    n = _n(where, cfg.get("n"), n_base)
    steps = _int_at_least(where, "steps", cfg.get("steps", DEFAULT_STEPS[method]), 1)
    step = _positive_number(where, "step", cfg.get("step", DEFAULTS["step"]), "L2 step size")
    eps = _eps(where, method, cfg)
    batch_size = _int_at_least(where, "batch_size", cfg.get("batch_size", DEFAULTS["batch_size"]), 1)
    seed = _int_at_least(where, "seed", cfg.get("seed", DEFAULTS["seed"]), 0)
    min_rate = _min_rate(where, cfg)
    augment = _augment(where, cfg)
    _check_training(where, cfg)
    return {"method": method, "base": base, "source": dict(source), "readers": readers, "n": n, "steps": steps,
            "step": step, "eps": eps, "batch_size": batch_size, "seed": seed, "min_rate": min_rate, "augment": augment}


# ---------------------------------------------------------------------------------------------- one check each
def _check_entry(where: str, cfg) -> None:
    """The entry is a mapping of known keys, of kind 'derived' (the default)."""
    if not isinstance(cfg, dict):
        raise ValueError(f"{where}: must be a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - set(SETTING_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} for kind 'derived' "
                         f"(allowed: {', '.join(SETTING_KEYS)})")
    if cfg.get("kind", "derived") != "derived":
        raise ValueError(f"{where}.kind: '{cfg.get('kind')}' is not a derived dataset (allowed: derived)")


def _method(where: str, cfg: dict) -> str:
    method = cfg.get("method")
    if method not in METHODS:
        raise ValueError(f"{where}.method: {method!r} is not allowed (allowed: {', '.join(METHODS)})")
    return method


def _base(where: str, name: str, cfg: dict) -> str:
    """The base: the name of another dataset."""
    base = cfg.get("base")
    if not isinstance(base, str) or not base:
        raise ValueError(f"{where}.base: must be the name of another dataset, got {base!r}")
    if base == name:
        raise ValueError(f"{where}.base: '{base}' is the dataset itself (allowed: another dataset)")
    return base


def _source(where: str, cfg: dict) -> dict:
    """The source cell: a mapping {arch, norm, regime, seed[, dataset]} (returned as given)."""
    source = cfg.get("source")
    if not isinstance(source, dict):
        raise ValueError(f"{where}.source: must be a mapping {{arch, norm, regime, seed[, dataset]}}, got {source!r}")
    missing = [k for k in ("arch", "norm", "regime", "seed") if k not in source]
    extra = sorted(set(source) - set(SOURCE_KEYS))
    if missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"unknown key(s) {', '.join(extra)}"
        raise ValueError(f"{where}.source: {what} (allowed: {', '.join(SOURCE_KEYS)}; dataset optional)")
    return source


def resolve_readers(name: str, cfg: dict, source: dict, config: dict | None = None) -> dict[str, dict]:
    """The held-out readers of derived dataset ``name`` (entry ``cfg``, source cell ``source``): {} without
    ``readers``, else {robust: cell, standard: cell}, each cell's dataset defaulting to the source's. Neither may be the
    source cell (not held out), nor the two the same cell. With ``config``, also checked against it: arch, regime and
    dataset defined (not derived), seed one of the config's, the robust reader's regime trains on attacks and the
    standard reader's does not. Raises ValueError, one line naming ``datasets.<name>.readers.<kind>.<key>``."""
    where = f"datasets.{name}.readers"
    readers = cfg.get("readers")
    if readers is None:
        return {}
    if not isinstance(readers, dict) or not readers:
        raise ValueError(f"{where}: must be a mapping {{robust: cell, standard: cell}}, got {readers!r}")
    for kind in [k for k in readers if k not in READER_KINDS] + [k for k in READER_KINDS if k not in readers]:
        what = "unknown reader kind" if kind in readers else "missing: both readers are needed"
        raise ValueError(f"{where}.{kind}: {what} (allowed: {', '.join(READER_KINDS)})")
    out = {kind: _reader(f"{where}.{kind}", readers[kind], source) for kind in READER_KINDS}
    if _same_cell(out["robust"], out["standard"]):
        raise ValueError(f"{where}.standard: {_cell_text(out['standard'])} is the robust reader's cell too "
                         f"(allowed: a cell of another regime)")
    if config is not None:
        for kind, r in out.items():
            _check_reader_in(f"{where}.{kind}", kind, r, config)
    return out


def _reader(where: str, r, source: dict) -> dict:
    """One reader cell, checked key by key (its dataset defaulting to the source's) and held out from the source."""
    required = ("arch", "norm", "regime", "seed")
    if not isinstance(r, dict):
        raise ValueError(f"{where}: must be a mapping {{arch, norm, regime, seed[, dataset]}}, got {r!r}")
    for key in [k for k in r if k not in SOURCE_KEYS] + [k for k in required if k not in r]:
        what = "unknown key" if key in r else "missing"
        raise ValueError(f"{where}.{key}: {what} (allowed: {', '.join(SOURCE_KEYS)}; dataset optional)")
    for key in ("dataset", "arch", "norm", "regime"):
        if key in r and (not isinstance(r[key], str) or not r[key]):
            raise ValueError(f"{where}.{key}: must be a name, got {r[key]!r}")
    cell = {**r, "seed": _int_at_least(where, "seed", r["seed"], 0)}
    if "dataset" not in cell and source.get("dataset") is not None:
        cell["dataset"] = source["dataset"]
    if _same_cell(cell, source):
        raise ValueError(f"{where}: {_cell_text(cell)} is the source cell, not held out (allowed: another seed, arch, "
                         f"norm or regime than the source's)")
    return cell


def _same_cell(a: dict, b: dict) -> bool:
    """Two cells as configs write them (a missing dataset: the one default of the same derived set)."""
    return all(str(a.get(k)) == str(b.get(k)) for k in ("dataset", "arch", "norm", "regime", "seed"))


def _cell_text(c: dict) -> str:
    return "/".join(str(c[k]) for k in ("dataset", "arch", "norm", "regime") if k in c) + f"/s{c['seed']}"


def _check_reader_in(where: str, kind: str, r: dict, config: dict) -> None:
    """A reader cell is one the config can train, of its kind (robust: an adversarial regime; standard: none)."""
    for key, table in (("dataset", "datasets"), ("arch", "archs"), ("regime", "regimes")):
        if r.get(key) not in config[table]:
            raise ValueError(f"{where}.{key}: {r.get(key)!r} is not defined under {table} "
                             f"(allowed: {', '.join(config[table])})")
    if config["datasets"][r["dataset"]].get("kind") == "derived":
        real = [n for n, d in config["datasets"].items() if d.get("kind") != "derived"]
        raise ValueError(f"{where}.dataset: '{r['dataset']}' is derived; a reader is trained on a real or generated "
                         f"dataset (allowed: {', '.join(real)})")
    if r["seed"] not in config["seeds"]:  # a training job trains every seed of the config's seeds
        raise ValueError(f"{where}.seed: {r['seed']} is not one of the config's seeds "
                         f"(allowed: {', '.join(map(str, config['seeds']))})")
    fit = [n for n, g in config["regimes"].items() if bool((g or {}).get("attack")) == (kind == "robust")]
    if r["regime"] not in fit:
        how = "trains without attacks" if kind == "robust" else "trains on attacks"
        raise ValueError(f"{where}.regime: '{r['regime']}' {how}; the {kind} reader must be "
                         f"{'adversarially' if kind == 'robust' else 'standard'} trained (allowed: {', '.join(fit)})")


def _n(where: str, n, n_base: int | None):
    """How many training images: at most ``n`` (all of the base's when not given); None when both are unknown."""
    if n is not None:
        if not _is_int(n) or n < 1:
            raise ValueError(f"{where}.n: must be an integer >= 1 (number of training images), got {n!r}")
        if n_base is not None:  # at most n: a smaller base (a quick run's n_train) gives all of its images
            n = min(int(n), int(n_base))
    elif n_base is not None:
        n = int(n_base)
    return n


def _int_at_least(where: str, key: str, value, minimum: int) -> int:
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{where}.{key}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive_number(where: str, key: str, value, what: str) -> float:
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{where}.{key}: must be a number > 0 ({what}), got {value!r}")
    return float(value)


def _eps(where: str, method: str, cfg: dict) -> float | None:
    """The attacks' L2 budget; None for robust / nonrobust, which must not set it."""
    if method in FEATURE_METHODS:
        if "eps" in cfg:
            raise ValueError(f"{where}.eps: has no effect on method '{method}' (it has no perturbation budget; "
                             f"eps is allowed for {', '.join(ATTACK_METHODS)} only)")
        return None
    return _positive_number(where, "eps", cfg.get("eps", DEFAULTS["eps"]), "L2 budget")


def _min_rate(where: str, cfg: dict) -> float:
    min_rate = cfg.get("min_rate", DEFAULTS["min_rate"])
    if not _is_number(min_rate) or not 0 <= min_rate <= 1:
        raise ValueError(f"{where}.min_rate: must be a number in [0, 1] (fraction of images), got {min_rate!r}")
    return float(min_rate)


def _augment(where: str, cfg: dict) -> dict:
    augment = cfg.get("augment") or {}
    if not isinstance(augment, dict) or set(augment) - {"crop_pad", "flip"}:
        raise ValueError(f"{where}.augment: must be a mapping with crop_pad and/or flip, got {augment!r}")
    return dict(augment)


def _check_training(where: str, cfg: dict) -> None:
    training = cfg.get("training") or {}
    if not isinstance(training, dict):
        raise ValueError(f"{where}.training: must be a mapping of training settings, got {training!r}")


def reader_pairs(option: str, values: list[str]) -> dict[str, str]:
    """derive-data's ``KIND=VALUE`` arguments of the readers → {kind: value}; SystemExit (one line) on a bad or a
    repeated one."""
    out: dict[str, str] = {}
    for v in values:
        kind, sep, value = v.partition("=")
        if not sep or not value or kind not in READER_KINDS or kind in out:
            raise SystemExit(f"{option}: {v!r} is not KIND=VALUE with a new KIND (allowed kinds: "
                             f"{', '.join(READER_KINDS)})")
        out[kind] = value
    return out


def check_rates(name: str, record: dict, min_rate: float) -> None:
    """``min_rate`` on a derived set's record: stop (SystemExit, one line naming the source cell and the rate) when the
    attacks missed their target, or the images lack their intended feature by the ground truth, too often; a held-out
    reader's shortfall is logged, not a stop (the claims that read the set judge it)."""
    from ..utils import log

    src = _cell_text({"seed": "?", **record["source"]})
    if record.get("target_rate") is not None and record["target_rate"] < min_rate:
        raise SystemExit(f"datasets.{name}: the targeted attacks on source cell {src} reach their target on "
                         f"{record['target_rate']:.1%} of images (< min_rate {min_rate:.0%}): the source does not "
                         f"carry the features to implant, or the attack is too weak (raise steps / eps, or choose a "
                         f"source that relies on non-robust features)")
    if record.get("intended_rate") is None or record["intended_rate"] >= min_rate:
        return
    what = {"rf": "the label's robust feature", "nrf": "the new label's non-robust feature"}[record["intended"]]
    if record.get("intended_by") != "ground truth":
        log(f"derived '{name}': only {record['intended_rate']:.1%} of images carry {what} by the "
            f"{record['intended_by']} (< min_rate {min_rate:.0%}; source cell {src}): recorded, not a stop; the "
            f"claims that read it judge it")
        return
    raise SystemExit(f"datasets.{name}: only {record['intended_rate']:.1%} of images carry {what} by the ideal "
                     f"reader (< min_rate {min_rate:.0%}; source cell {src}): the dataset does not implant what "
                     f"it promises")


def dataset_settings(cfg: dict) -> dict:
    """A derived dataset's config entry without the keys that only change training on it (what builds it)."""
    return {k: v for k, v in cfg.items() if k not in TRAINING_KEYS}
