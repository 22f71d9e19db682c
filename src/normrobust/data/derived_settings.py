"""A derived dataset's settings (E3/E4): validated and completed with the papers' defaults, without torch.

Config validation checks them at planning time; ``normrobust.data.derived`` builds the dataset from them.
"""

from __future__ import annotations

import math
from numbers import Real

METHODS = ("robust", "nonrobust", "rand", "det", "conflict")
FEATURE_METHODS = ("robust", "nonrobust")
ATTACK_METHODS = ("rand", "det", "conflict")
SETTING_KEYS = ("kind", "method", "base", "source", "n", "steps", "step", "eps", "batch_size", "seed", "min_rate",
                "augment", "training")
#: keys that change how models are trained on the dataset, not the dataset: they never rebuild it
TRAINING_KEYS = ("training",)
SOURCE_KEYS = ("arch", "norm", "regime", "seed", "dataset")
#: min_rate: a derived set must reach its target (attacks) and, on the generated data, carry its intended feature
#: (by the ideal readers) on at least this fraction of its images, else making it stops (an implant that took on
#: fewer than 4 images in 5 is not the dataset the study describes)
DEFAULTS = {"step": 0.1, "eps": 0.5, "batch_size": 500, "seed": 0, "min_rate": 0.8}
DEFAULT_STEPS = {"robust": 1000, "nonrobust": 1000, "rand": 100, "det": 100, "conflict": 100}


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(float(v))


def resolve_settings(name: str, cfg: dict, n_base: int | None = None) -> dict:
    """Validate a derived dataset's config entry and fill in the defaults.

    Returns ``{method, base, source, n, steps, step, eps, batch_size, seed}`` (``eps`` is None for robust /
    nonrobust; ``n`` is None when not given and ``n_base`` is unknown). Raises ValueError, one line naming the
    key (``datasets.<name>.<key>``) and what is allowed. ``n_base``: the base's training set size, to check ``n``.
    """
    where = f"datasets.{name}"
    _check_entry(where, cfg)
    method = _method(where, cfg)
    base = _base(where, name, cfg)
    source = _source(where, cfg)
    n = _n(where, cfg.get("n"), n_base)
    steps = _int_at_least(where, "steps", cfg.get("steps", DEFAULT_STEPS[method]), 1)
    step = _positive_number(where, "step", cfg.get("step", DEFAULTS["step"]), "L2 step size")
    eps = _eps(where, method, cfg)
    batch_size = _int_at_least(where, "batch_size", cfg.get("batch_size", DEFAULTS["batch_size"]), 1)
    seed = _int_at_least(where, "seed", cfg.get("seed", DEFAULTS["seed"]), 0)
    min_rate = _min_rate(where, cfg)
    augment = _augment(where, cfg)
    _check_training(where, cfg)
    return {"method": method, "base": base, "source": dict(source), "n": n, "steps": steps, "step": step,
            "eps": eps, "batch_size": batch_size, "seed": seed, "min_rate": min_rate, "augment": augment}


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


def dataset_settings(cfg: dict) -> dict:
    """A derived dataset's config entry without the keys that only change training on it (what builds it)."""
    return {k: v for k, v in cfg.items() if k not in TRAINING_KEYS}
