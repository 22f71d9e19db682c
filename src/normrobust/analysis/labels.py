"""Display names, fixed orders, number formatting and LaTeX escaping for figures, tables and the report.

Names the config gives (norms, regimes, attacks, derived-dataset methods) are shown through the maps below;
a name they do not know is shown as it is. Accuracies are fractions in the tables and percent on the page.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

NORM_ORDER = ["none", "bn", "ln", "in", "gn"]
NORM_LABEL = {"none": "no norm", "bn": "BN", "ln": "LN", "in": "IN", "gn": "GN", "fixup": "FixUp"}
REGIME_ORDER = ["standard", "pgd_linf", "pgd_l2", "pgd_l2_targeted", "fgsm_linf", "fgsm", "mixed", "advprop"]
REGIME_LABEL = {
    "standard": "standard",
    "pgd_linf": "PGD-L∞ AT",
    "pgd_l2": "PGD-L2 AT",
    "pgd_l2_targeted": "targeted PGD-L2 AT",
    "fgsm_linf": "FGSM AT",
    "fgsm": "FGSM AT",
    "mixed": "clean+adv. (shared BN)",
    "advprop": "AdvProp",
}
REGIME_SHORT = {"standard": "std", "pgd_linf": "AT-L∞", "pgd_l2": "AT-L2", "pgd_l2_targeted": "AT-L2t",
                "fgsm_linf": "AT-FGSM", "fgsm": "AT-FGSM", "mixed": "mixed", "advprop": "AdvProp"}
ATTACK_ORDER = ["fgsm_linf", "pgd_linf", "pgd_l2", "gaussian"]
ATTACK_LABEL = {"fgsm_linf": "FGSM-L∞", "pgd_linf": "PGD-L∞", "pgd_l2": "PGD-L2", "fgsm_l2": "FGSM-L2",
                "gaussian": "Gaussian noise"}
METRIC_LABEL = {"clean_acc": "clean accuracy", "robust_acc": "robust accuracy", "noise_acc": "noise accuracy",
                "ligs": "LIGS", "nrf_reliance": "NRF reliance", "rf_only_acc": "RF-only accuracy",
                "nrf_only_acc": "NRF-only accuracy", "conflict_rf_rate": "conflict: RF label rate",
                "conflict_nrf_rate": "conflict: NRF label rate", "success_rate": "transfer success rate",
                "shifted_acc": "accuracy on the shifted labels (t+1)",
                "adv_confidence": "confidence on adversarial examples",
                "adv_wrong_confidence": "confidence on misclassified adversarial examples",
                "error_rate": "transfer error rate", "train_acc": "accuracy on its training set",
                "white_box_rate": "white-box success", "intended_rate": "share carrying the intended feature",
                "rf_success_rate": "transfer success of the RF part", "nrf_success_rate":
                    "transfer success of the NRF part"}
#: metrics that are fractions shown in percent (differences of them in percentage points)
PERCENT_METRICS = {"clean_acc", "robust_acc", "noise_acc", "rf_only_acc", "nrf_only_acc", "conflict_rf_rate",
                   "conflict_nrf_rate", "success_rate", "shifted_acc", "adv_confidence", "adv_wrong_confidence",
                   "error_rate", "clean_error", "robust_error", "fgsm_error", "train_acc", "white_box_rate",
                   "intended_rate", "rf_success_rate", "nrf_success_rate"}
#: derived datasets by their ``method`` (normrobust.data.derived): the names the papers use
DERIVED_NAMES = {"robust": "D_R", "nonrobust": "D_NR", "rand": "D_rand", "det": "D_det", "conflict": "conflict set"}


def norm_label(norm: str) -> str:
    return NORM_LABEL.get(norm, str(norm))


def regime_label(regime: str) -> str:
    return REGIME_LABEL.get(regime, str(regime))


def regime_short(regime: str) -> str:
    return REGIME_SHORT.get(regime, str(regime))


def attack_label(attack: str) -> str:
    return ATTACK_LABEL.get(attack, str(attack))


def metric_label(metric: str) -> str:
    return METRIC_LABEL.get(metric, str(metric))


def is_linf(attack: str) -> bool:
    return "linf" in str(attack)


def metric_is_percent(metric: str) -> bool:
    base = str(metric).split("@")[0].split("[")[0]
    return base in PERCENT_METRICS or base.startswith("robust_acc_")  # history: robust_acc_<extra attack>


def dataset_method(config: dict[str, Any], name: str | None) -> str | None:
    """A derived dataset's method (robust, nonrobust, rand, det, conflict); None for a plain dataset."""
    d = (config.get("datasets") or {}).get(name) if name is not None else None
    return d.get("method") if isinstance(d, dict) and d.get("kind") == "derived" else None


def has_ground_truth(config: dict[str, Any], name: str) -> bool:
    """Whether dataset ``name`` is (or is derived, through its bases, from) the generated data, whose ideal readers
    know every image's features; a derived set of real images is read by held-out models instead."""
    datasets, seen = config.get("datasets") or {}, set()
    d = datasets.get(name)
    while isinstance(d, dict) and d.get("kind") == "derived" and name not in seen:
        seen.add(name)
        name = d.get("base")
        d = datasets.get(name)
    return isinstance(d, dict) and d.get("kind") == "generated"


def dataset_label(config: dict[str, Any], name: str) -> str:
    """D_R, D_NR, D_rand, D_det, conflict set (from a derived dataset's method), else the dataset's name."""
    return DERIVED_NAMES.get(dataset_method(config, name) or "", str(name))


# ----------------------------------------------------------------------------------------- orders

def order_key(order: Sequence[str]):
    def key(x):
        return (order.index(x), "") if x in order else (len(order), str(x))
    return key


def sort_norms(norms: Iterable[str]) -> list[str]:
    return sorted(set(norms), key=order_key(NORM_ORDER))


def sort_regimes(regimes: Iterable[str]) -> list[str]:
    return sorted(set(regimes), key=order_key(REGIME_ORDER))


def sort_attacks(attacks: Iterable[str]) -> list[str]:
    return sorted(set(attacks), key=order_key(ATTACK_ORDER))


# ---------------------------------------------------------------------------------------- numbers

def fmt_num(x: float, digits: int = 3) -> str:
    """A short plain number: integers without decimals, others with up to ``digits`` significant."""
    x = float(x)
    if math.isfinite(x) and abs(x - round(x)) < 1e-9:
        return str(int(round(x)))
    return f"{x:.{digits}g}"


def fmt_sci(x: float) -> str:
    """0.005 → '5e-3', 0.2 → '0.2', 0 → '0'."""
    x = float(x)
    if x == 0 or not np.isfinite(x):
        return fmt_num(x) if np.isfinite(x) else str(x)
    if abs(x) < 0.01 or abs(x) >= 1e4:
        e = int(np.floor(np.log10(abs(x))))
        return f"{fmt_num(x / 10 ** e)}e{e}"
    return fmt_num(x)


def fmt_mean_std(mean: float, std: float | None = None, percent: bool = False, digits: int | None = None,
                 tex: bool = True) -> str:
    """``$85.3 \\pm 1.2$`` (percent: ×100, 1 decimal; else 3 decimals); ``--`` when missing."""
    if mean is None or not np.isfinite(mean):
        return "--" if tex else "n/a"
    scale = 100.0 if percent else 1.0
    if digits is None:
        digits = 1 if percent else 3
    m = f"{mean * scale:.{digits}f}"
    if std is None or not np.isfinite(std):
        return f"${m}$" if tex else m
    s = f"{std * scale:.{digits}f}"
    return f"${m} \\pm {s}$" if tex else f"{m} ± {s}"


def fmt_signed(x: float, percent: bool = False, digits: int | None = None, tex: bool = True) -> str:
    """A signed difference: ``$-12.3$`` (points when ``percent``)."""
    if x is None or not np.isfinite(x):
        return "--" if tex else "n/a"
    scale = 100.0 if percent else 1.0
    if digits is None:
        digits = 1 if percent else 3
    v = x * scale
    if round(v, digits) == 0:
        v = 0.0
    s = f"{v:+.{digits}f}"
    return f"${s}$" if tex else s.replace("-", "−")


def fmt_pct(mean: float, std: float | None = None, digits: int = 1) -> str:
    """A number already in percent: ``$12.3 \\pm 0.4$``; ``--`` when missing."""
    if mean is None or not np.isfinite(mean):
        return "--"
    if std is None or not np.isfinite(std):
        return f"${mean:.{digits}f}$"
    return f"${mean:.{digits}f} \\pm {std:.{digits}f}$"


def fmt_points(x: float, digits: int = 1) -> str:
    """A signed difference already in points: ``$+1.5$``; ``--`` when missing."""
    if x is None or not np.isfinite(x):
        return "--"
    v = 0.0 if round(x, digits) == 0 else x
    return f"${v:+.{digits}f}$"


def fmt_paper(v: float | None, percent: bool) -> str:
    """A published number in a table: whole percents without decimals, else one decimal; LIGS with two; ``--``."""
    if v is None or not np.isfinite(v):
        return "--"
    if percent:
        return f"${v:.0f}$" if float(v).is_integer() else f"${v:.1f}$"
    return f"${v:.2f}$"


def join_words(items: Iterable[str], last: str = "and") -> str:
    """'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


# ---------------------------------------------------------------------------------------- attacks

def eps_label(attack: str, eps: float) -> str:
    """ε with its unit: L∞ in /255 steps (``4/255``), L2 absolute, noise as σ."""
    if attack == "gaussian":
        return f"σ={fmt_num(eps, 4)}"
    if is_linf(attack):
        return f"ε={fmt_num(eps, 4)}/255"  # 63.75/255 is [G]'s 0.25
    return f"ε={fmt_num(eps, 4)}"


def attack_eps_label(attack: str, eps: float) -> str:
    return f"{attack_label(attack)} {eps_label(attack, eps)}"


def attack_text(spec: dict[str, Any] | None) -> str:
    """'PGD-L∞ ε=4/255' (or 'targeted PGD-L2 ε=0.5') from a config attack dict; '' without one."""
    if not isinstance(spec, dict):
        return ""
    name = f"{str(spec.get('type', '')).lower()}_{spec.get('norm', '')}"
    label = attack_label(name) if name in ATTACK_LABEL else name.upper()
    if spec.get("targeted"):
        label = "targeted " + label
    return f"{label} {eps_label(name, float(spec['eps']))}" if spec.get("eps") is not None else label


def eps_axis_label(attack: str) -> str:
    if attack == "gaussian":
        return "noise std σ"
    if is_linf(attack):
        return "ε (×1/255)"
    if "l2" in attack:
        return "ε (L2 norm)"
    return "ε"


# ------------------------------------------------------------------------------------ LaTeX escaping

_TEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"$<$", ">": r"$>$",
}
_TEX_UNICODE = {
    "∞": r"$\infty$", "ε": r"$\varepsilon$", "σ": r"$\sigma$", "±": r"$\pm$", "≥": r"$\geq$",
    "≤": r"$\leq$", "−": r"$-$", "Δ": r"$\Delta$", "×": r"$\times$", "→": r"$\rightarrow$",
    "·": r"$\cdot$", "–": "--", "—": "---", "’": "'", "‘": "`", "“": "``", "”": "''", "|": r"$|$",
    "…": r"\ldots{}", "≈": r"$\approx$", "\u00a0": "~", "ρ": r"$\rho$", "τ": r"$\tau$", "λ": r"$\lambda$",
    "α": r"$\alpha$", "η": r"$\eta$", "μ": r"$\mu$", "≠": r"$\neq$", "∈": r"$\in$", "√": r"$\surd$",
    "÷": r"$\div$", "°": r"$^\circ$", "²": r"$^2$", "∇": r"$\nabla$", "←": r"$\leftarrow$",
    "˜": r"\textasciitilde{}", "≲": r"$\lesssim$", "≳": r"$\gtrsim$", "ℓ": r"$\ell$",
}


def tex_escape(text: Any) -> str:
    """Escape LaTeX special characters and map the few Unicode symbols used in labels to math."""
    s = str(text).replace("L∞", "\x00")
    out = []
    for ch in s:
        if ch == "\x00":
            out.append(r"$L_\infty$")
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ch in _TEX_SPECIAL:
            out.append(_TEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        else:  # anything else outside ASCII: drop to '?' rather than break pdflatex
            out.append("?")
    return "".join(out)


def tex_number(x: Any) -> str:
    """A config value for the text: a short number (in math mode when negative), or escaped text."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return tex_escape(x)
    s = fmt_num(v, 4)
    return f"${s}$" if v < 0 else s


def tex_eps(attack: str, eps: float) -> str:
    """ε for the text: ``4/255`` for L∞, plain otherwise."""
    return f"{tex_number(eps)}/255" if is_linf(attack) and attack != "gaussian" else tex_number(eps)


def attack_tex(spec: dict[str, Any] | None) -> str:
    """'PGD-$L_\\infty$, $\\varepsilon = 4/255$, 10 steps of 1/255' from a config attack dict; 'none' without."""
    if not isinstance(spec, dict):
        return "none"
    name = f"{str(spec.get('type', '')).lower()}_{spec.get('norm', '')}"
    label = attack_label(name) if name in ATTACK_LABEL else name.upper()
    parts = [("targeted " if spec.get("targeted") else "") + tex_escape(label)]
    if "eps" in spec:
        parts.append(f"$\\varepsilon = {tex_eps(name, spec['eps'])}$")
    if "steps" in spec:
        step = f" of {tex_eps(name, spec['step'])}" if "step" in spec else ""
        parts.append(f"{tex_number(spec['steps'])} step{'s' if spec['steps'] != 1 else ''}{step}")
    if "rel_step" in spec:
        parts.append(f"step {tex_number(spec['rel_step'])}$\\,\\varepsilon$")
    if spec.get("random_start"):
        parts.append("random start")
    return ", ".join(parts)
