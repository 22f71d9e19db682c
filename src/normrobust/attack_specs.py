"""Attack specs as the config writes them: checked and converted to pixel units, without torch.

Config validation and DAG planning read only this module (no torch import), so ``snakemake -n`` runs where
PyTorch is not installed; the attacks themselves are :mod:`normrobust.attacks` and :mod:`normrobust.autoattack`.

The registry of attack types is :data:`TYPES` (the schema's allowed values come from it):

* ``fgsm``, ``pgd``: :func:`normrobust.attacks.fgsm` / :func:`normrobust.attacks.pgd`;
* ``apgd_ce``, ``apgd_t``, ``autoattack``: torchattacks' APGD-CE, APGD-T and standard AutoAttack
  (:mod:`normrobust.autoattack`).
"""

from __future__ import annotations

import math
from numbers import Real

NORMS = ("linf", "l2")
GRADIENT_TYPES = ("fgsm", "pgd")  # ours (normrobust.attacks): the ones training and transfer use
AUTOATTACK_TYPES = ("apgd_ce", "apgd_t", "autoattack")  # torchattacks' (normrobust.autoattack): evaluation only
TYPES = (*GRADIENT_TYPES, *AUTOATTACK_TYPES)
AUTOATTACK_KEYS = ("type", "norm", "eps", "steps", "restarts", "name")
AUTOATTACK_STEPS = 100  # APGD / FAB iterations of AutoAttack's standard version (Croce & Hein 2020, Sec. 5)
_SPEC_KEYS = ("type", "norm", "eps", "steps", "step", "rel_step", "targeted", "random_start", "restarts", "name")


def _number(spec: dict, key: str, *, positive: bool = True) -> float:
    v = spec[key]
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
        raise ValueError(f"attack spec: '{key}' must be a single finite number, got {v!r}")
    v = float(v)
    if positive and not v > 0:
        raise ValueError(f"attack spec: '{key}' must be > 0, got {v}")
    return v


def _integer(spec: dict, key: str, default: int, minimum: int = 1) -> int:
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or int(v) != v or v < minimum:
        raise ValueError(f"attack spec: '{key}' must be an integer >= {minimum}, got {v!r}")
    return int(v)


def _flag(spec: dict, key: str) -> bool:
    v = spec.get(key, False)
    if not isinstance(v, bool):
        raise ValueError(f"attack spec: '{key}' must be true or false, got {v!r}")
    return v


def parse_spec(spec: dict) -> dict:
    """Validate a config attack spec and convert it to absolute (pixel) units.

    Project units: for ``norm: linf`` ``eps`` and ``step`` count 1/255 steps (eps 8 → 8/255); for
    ``norm: l2`` they are absolute. ``rel_step`` gives step = rel_step·eps (unit-free). Returns
    ``{"type", "norm", "eps", "step", "steps", "targeted", "random_start", "restarts"}`` with eps and
    step absolute. Raises ValueError naming the key and the allowed values.
    """
    if not isinstance(spec, dict):
        raise ValueError(f"attack spec must be a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ValueError(f"attack spec: unknown key(s) {unknown}; allowed keys: {list(_SPEC_KEYS)}")
    if "type" not in spec:
        raise ValueError(f"attack spec: 'type' is required (one of {list(TYPES)})")
    kind = spec["type"]
    if kind not in TYPES:
        raise ValueError(f"attack spec: 'type' must be one of {list(TYPES)}, got {kind!r}")
    if kind in AUTOATTACK_TYPES:
        p = parse_autoattack(spec)
        return {**p, "step": None, "targeted": False, "random_start": False}
    if "norm" not in spec and kind == "pgd":
        raise ValueError(f"attack spec: 'norm' is required for pgd (one of {list(NORMS)})")
    norm = spec.get("norm", "linf")
    if norm not in NORMS:
        raise ValueError(f"attack spec: 'norm' must be one of {list(NORMS)}, got {norm!r}")
    if "eps" not in spec:
        raise ValueError("attack spec: 'eps' is required (a number > 0; 1/255 units for linf, absolute for l2)")
    scale = 1.0 / 255.0 if norm == "linf" else 1.0
    eps = _number(spec, "eps") * scale
    targeted = _flag(spec, "targeted")
    random_start = _flag(spec, "random_start")
    restarts = _integer(spec, "restarts", 1)

    if kind == "fgsm":
        if norm != "linf":
            raise ValueError(
                f"attack spec: fgsm supports 'norm' in ['linf'] only, got {norm!r} "
                "(use type 'pgd' with steps 1 and rel_step 1 for a normalised L2 gradient step)"
            )
        for key in ("step", "rel_step"):
            if key in spec:
                raise ValueError(f"attack spec: '{key}' is not allowed for fgsm (its step is eps)")
        if _integer(spec, "steps", 1) != 1:
            raise ValueError(f"attack spec: 'steps' must be 1 for fgsm, got {spec['steps']!r}")
        if random_start:
            raise ValueError("attack spec: 'random_start' must be false for fgsm")
        if restarts != 1:
            raise ValueError(f"attack spec: 'restarts' must be 1 for fgsm, got {restarts}")
        step, steps = eps, 1
    else:
        if "steps" not in spec:
            raise ValueError("attack spec: 'steps' is required for pgd (an integer >= 1)")
        steps = _integer(spec, "steps", 1)
        has_step, has_rel = "step" in spec, "rel_step" in spec
        if has_step == has_rel:
            raise ValueError("attack spec: pgd needs exactly one of 'step' (same units as eps) or 'rel_step' "
                             "(step = rel_step*eps)")
        step = _number(spec, "step") * scale if has_step else _number(spec, "rel_step") * eps
    return {
        "type": kind,
        "norm": norm,
        "eps": eps,
        "step": step,
        "steps": steps,
        "targeted": targeted,
        "random_start": random_start,
        "restarts": restarts,
    }


def parse_autoattack(spec: dict) -> dict:
    """Validate an AutoAttack spec; eps to absolute pixel units. Raises ValueError naming the key."""
    unknown = sorted(set(spec) - set(AUTOATTACK_KEYS))
    if unknown:
        raise ValueError(f"attack spec: unknown key(s) {unknown} for type {spec['type']!r}; allowed keys: "
                         f"{list(AUTOATTACK_KEYS)}")
    norm = spec.get("norm")
    if norm not in NORMS:
        raise ValueError(f"attack spec: 'norm' must be one of {list(NORMS)} for {spec['type']}, "
                         f"got {norm!r}")
    eps = spec.get("eps")
    if isinstance(eps, bool) or not isinstance(eps, Real) or not math.isfinite(float(eps)) or not eps > 0:
        raise ValueError(f"attack spec: 'eps' must be a number > 0, got {eps!r}")
    out = {"type": spec["type"], "norm": norm, "eps": float(eps) / (255.0 if norm == "linf" else 1.0)}
    for key, default in (("steps", AUTOATTACK_STEPS), ("restarts", 1)):
        out[key] = _integer(spec, key, default)
    return out
