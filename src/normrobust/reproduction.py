"""Reproduction against the published numbers: PAPER.md's numbers beside ours, and the limitations.

:data:`PUBLISHED` holds every number PAPER.md quotes that this pipeline can measure, with how to find our
counterpart in the aggregated tables: the norm, the *role* of the training regime (what it does, not its
name: ``standard`` has no training attack, ``adversarial`` trains on attacked images only, ``weighted`` is
Goodfellow's α·J(x) + (1−α)·J(x+η), ``mixed`` and ``advprop`` as in [A]), the metric, and the attack and ε.
:func:`reproduction_frame` picks, for each row, the closest cells the run has (same dataset kind and
architecture as the paper first, else an analogue on other data or another architecture, which the table
says) and reports the mean ± std over seeds and the difference ours − published. Numbers about a derived
dataset (E3: [B] Fig. 4 and Ilyas et al. on D_R, D_NR, D_rand, D_det; E4: [B] Fig. 6 on the conflict set) are
matched only to cells trained on a derived dataset of the same ``method``; all other numbers only to cells
on real data. A robust accuracy evaluated at another ε than the paper's is shown at the nearest ε as an
analogue. Rows whose cells the run
does not have stay in the table as "not run", naming the preset that runs them.

Units: accuracies and error rates in percent, LIGS as is. Values marked (fig) in PAPER.md were read off
published figures (±2 points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import tables as T
from .config import objective

B_SETTING = "ResNet-18, CIFAR-10, 150 epochs"


@dataclass(frozen=True)
class Published:
    source: str  # where the number is printed
    setting: str  # the paper's setting
    quantity: str  # what was measured (plain text)
    value: float  # percent for accuracies / errors, raw for LIGS
    norm: str = "bn"
    role: str = "standard"  # regime role, see the module docstring
    metric: str = "clean_acc"  # clean_acc | robust_acc | ligs | transfer | clean_diff
    attack: tuple[str, str] | None = None  # (type, norm) of the evaluation attack
    eps: float | None = None  # in the config's unit (1/255 for L∞)
    error: bool = False  # the paper reports an error rate: ours is 100 − accuracy
    dataset_kind: str = "cifar10"
    arch_kinds: tuple[str, ...] = ("resnet",)  # the paper's architecture first
    analogue_kinds: tuple[str, ...] = ("resnet", "cnn", "vgg")  # acceptable stand-ins, in order
    target_role: str | None = None  # transfer rows: the target's regime role (the source's is `role`)
    preset: str = "paper-cifar10"  # the preset that runs this setting
    dataset_method: str | None = None  # derived datasets (E3/E4): the config's method; None: a plain dataset
    arch_blocks: tuple[int, ...] | None = None  # ResNet blocks per stage of the paper's model, where it matters
    extra: dict[str, Any] = field(default_factory=dict)


RESNET18 = (2, 2, 2, 2)
RESNET50 = (3, 4, 6, 3)


def _b(quantity: str, value: float, norm: str, role: str, metric: str, **kw) -> Published:
    return Published("[B] Fig. 3 (fig)", B_SETTING, quantity, value, norm=norm, role=role, metric=metric,
                     arch_blocks=RESNET18, **kw)


def _b4(method: str, name: str, norm: str, clean: float, robust: float, ligs: float) -> list[Published]:
    """[B] Fig. 4: a ResNet-18 trained on a disentangled dataset, evaluated on the real test set."""
    kw = dict(norm=norm, dataset_method=method, arch_blocks=RESNET18, preset="paper-cifar10 with e3_disentangled")
    setting = f"ResNet-18 trained on {name} (from CIFAR-10)"
    who = "BN" if norm == "bn" else "no norm"
    return [Published("[B] Fig. 4 (fig)", setting, f"{who}: clean accuracy (%)", clean, metric="clean_acc", **kw),
            Published("[B] Fig. 4 (fig)", setting, f"{who}: PGD-L2 0.25 accuracy (%)", robust, metric="robust_acc",
                      **L2_025, **kw),
            Published("[B] Fig. 4 (fig)", setting, f"{who}: LIGS", ligs, metric="ligs", **kw)]


def _ilyas(method: str, name: str, clean: float, robust: float | None = None) -> list[Published]:
    """Ilyas et al. (2019) Fig. 2 / Table 1: a standard ResNet-50 (with BN) trained on a derived dataset."""
    kw = dict(norm="bn", dataset_method=method, arch_blocks=RESNET50, preset="paper-cifar10 with e3_disentangled")
    setting = "ResNet-50 (BN) trained on datasets derived from CIFAR-10"
    out = [Published("Ilyas et al. 2019", setting, f"{name}: clean accuracy (%)", clean, metric="clean_acc", **kw)]
    if robust is not None:
        out.append(Published("Ilyas et al. 2019", setting, f"{name}: PGD-L2 0.25 accuracy (%)", robust,
                             metric="robust_acc", **L2_025, **kw))
    return out


def _b6(norm: str, t: float, t1: float, ligs: float) -> list[Published]:
    """[B] Fig. 6: ResNet-18 trained on the conflict set, accuracy against labels t and t+1."""
    kw = dict(norm=norm, dataset_method="conflict", arch_blocks=RESNET18, preset="paper-cifar10 with e4_conflict")
    setting = "ResNet-18 trained on the conflict set (from CIFAR-10)"
    who = "BN" if norm == "bn" else "no norm"
    return [Published("[B] Fig. 6 (fig)", setting, f"{who}: accuracy on labels t (%)", t, metric="clean_acc", **kw),
            Published("[B] Fig. 6 (fig)", setting, f"{who}: accuracy on labels t+1 (%)", t1, metric="shifted_acc",
                      **kw),
            Published("[B] Fig. 6 (fig)", setting, f"{who}: LIGS", ligs, metric="ligs", **kw)]


L2_025 = dict(attack=("pgd", "l2"), eps=0.25)
_G = dict(dataset_kind="mnist", preset="fgsm-mnist", norm="none")
PUBLISHED: list[Published] = [
    _b("standard, no norm: clean accuracy (%)", 92.5, "none", "standard", "clean_acc"),
    _b("standard, no norm: PGD-L2 0.25 accuracy (%)", 40, "none", "standard", "robust_acc", **L2_025),
    _b("standard, no norm: LIGS", 0.79, "none", "standard", "ligs"),
    _b("standard, BN: clean accuracy (%)", 95.3, "bn", "standard", "clean_acc"),
    _b("standard, BN: PGD-L2 0.25 accuracy (%)", 10, "bn", "standard", "robust_acc", **L2_025),
    _b("standard, BN: LIGS", 0.59, "bn", "standard", "ligs"),
    _b("adversarial, no norm: clean accuracy (%)", 88.8, "none", "adversarial", "clean_acc"),
    _b("adversarial, no norm: PGD-L2 0.25 accuracy (%)", 77, "none", "adversarial", "robust_acc", **L2_025),
    _b("adversarial, no norm: LIGS", 0.98, "none", "adversarial", "ligs"),
    _b("adversarial, BN: clean accuracy (%)", 90.5, "bn", "adversarial", "clean_acc"),
    _b("adversarial, BN: PGD-L2 0.25 accuracy (%)", 79.5, "bn", "adversarial", "robust_acc", **L2_025),
    _b("adversarial, BN: LIGS", 0.98, "bn", "adversarial", "ligs"),
    *_b4("robust", "D_R", "none", 81, 50, 0.94),
    *_b4("robust", "D_R", "bn", 84, 45, 0.91),
    *_b4("rand", "D_rand", "none", 5, 3, 1.0),
    *_b4("rand", "D_rand", "bn", 68, 0, 0.31),
    *_ilyas("robust", "D_R", 84, 48),
    *_ilyas("nonrobust", "D_NR", 88, 0),
    *_ilyas("rand", "D_rand", 63),
    *_ilyas("det", "D_det", 44),
    *_b6("bn", 35, 18, 0.37),
    *_b6("none", 3, 74, 0.97),
    Published("[A] Table 2", "EfficientNet-B7, ImageNet", "AdvProp − standard: clean top-1 (points)", 0.7,
              norm="bn", role="advprop", metric="clean_diff", dataset_kind="imagenet",
              arch_kinds=("efficientnet",), analogue_kinds=("resnet", "vgg", "cnn")),
    Published("[G] Sec. 4", "shallow softmax, MNIST", "standard: FGSM ε=0.25 error (%)", 99.9, role="standard",
              metric="robust_acc", attack=("fgsm", "linf"), eps=63.75, error=True, arch_kinds=("linear",),
              analogue_kinds=("linear",), **_G),
    Published("[G] Sec. 5", "maxout, MNIST", "standard: FGSM ε=0.25 error (%)", 89.4, role="standard",
              metric="robust_acc", attack=("fgsm", "linf"), eps=63.75, error=True, arch_kinds=("maxout",),
              analogue_kinds=("maxout",), **_G),
    Published("[G] Sec. 6", "maxout, MNIST", "FGSM-trained: FGSM ε=0.25 error (%)", 17.9, role="weighted",
              metric="robust_acc", attack=("fgsm", "linf"), eps=63.75, error=True, arch_kinds=("maxout",),
              analogue_kinds=("maxout",), **_G),
    Published("[G] Sec. 6", "maxout, MNIST", "standard: clean error (%)", 0.94, role="standard",
              metric="clean_acc", error=True, arch_kinds=("maxout",), analogue_kinds=("maxout",), **_G),
    Published("[G] Sec. 6", "maxout, MNIST", "FGSM-trained: clean error (%)", 0.84, role="weighted",
              metric="clean_acc", error=True, arch_kinds=("maxout",), analogue_kinds=("maxout",), **_G),
    Published("[G] Sec. 6", "maxout, MNIST", "transfer standard → FGSM-trained: error (%)", 19.6,
              role="standard", target_role="weighted", metric="transfer", arch_kinds=("maxout",),
              analogue_kinds=("maxout",), **_G),
    Published("[G] Sec. 6", "maxout, MNIST", "transfer FGSM-trained → standard: error (%)", 40.9,
              role="weighted", target_role="standard", metric="transfer", arch_kinds=("maxout",),
              analogue_kinds=("maxout",), **_G),
]

#: [G]'s mean confidence on misclassified FGSM examples (ε = 0.25): shown in the E10 table beside ours
G_CONFIDENCE = {("linear", "standard"): 79.3, ("maxout", "standard"): 97.6}
#: the METHOD of a derived dataset -> PAPER.md's name
DERIVED_NAMES = {"robust": "D_R", "nonrobust": "D_NR", "rand": "D_rand", "det": "D_det", "conflict": "conflict set"}

COLUMNS = ["source", "setting", "quantity", "published", "ours", "ours_std", "n", "diff", "match", "ours_setting",
           "percent"]


def regime_role(regime: dict[str, Any] | None) -> str:
    """What a regime does: standard | adversarial | weighted | mixed | advprop | ligs_reg."""
    obj = objective(regime or {})
    return "standard" if obj == "clean" else obj


def _regime_rank(p: Published, regime: dict[str, Any]) -> int:
    """Among regimes of one role, prefer [B]'s adversarial training: targeted PGD-L2."""
    a = regime.get("attack") or {}
    if p.source.startswith("[B]") and p.role == "adversarial":
        return 0 if (a.get("norm") == "l2" and a.get("targeted")) else 1
    return 0


def dataset_method(datasets: dict[str, Any], name: str) -> str | None:
    """A derived dataset's method (robust, nonrobust, rand, det, conflict); None for a plain dataset."""
    d = datasets.get(name) or {}
    return d.get("method") if d.get("kind") == "derived" else None


def base_kind(datasets: dict[str, Any], name: str) -> str | None:
    """The kind of the real data under a (possibly derived, possibly nested) dataset."""
    seen = set()
    while name in datasets and name not in seen:
        seen.add(name)
        d = datasets.get(name) or {}
        if d.get("kind") != "derived":
            return d.get("kind")
        name = d.get("base")
    return None


def _candidates(p: Published, cfg: dict[str, Any], metrics: pd.DataFrame) -> list[dict]:
    """Every (dataset, arch, regime) the run has for this row, best match first."""
    datasets, archs, regimes = cfg.get("datasets") or {}, cfg.get("archs") or {}, cfg.get("regimes") or {}
    kinds = list(p.arch_kinds) + [k for k in p.analogue_kinds if k not in p.arch_kinds]
    have = metrics[["dataset", "arch", "norm", "regime"]].drop_duplicates()
    ranked = []
    for _, r in have[have["norm"] == p.norm].iterrows():
        d, a, g = datasets.get(r["dataset"], {}), archs.get(r["arch"], {}), regimes.get(r["regime"])
        if regime_role(g) != p.role or a.get("kind") not in kinds:
            continue
        if dataset_method(datasets, r["dataset"]) != p.dataset_method:  # D_R only for D_R, plain data for the rest
            continue
        same_data = (base_kind(datasets, r["dataset"]) if p.dataset_method else d.get("kind")) == p.dataset_kind
        same_arch = a.get("kind") in p.arch_kinds
        if p.arch_blocks is not None and same_arch:  # e.g. ResNet-18: four stages of two blocks
            same_arch = list(a.get("blocks", [])) == list(p.arch_blocks) and a.get("width", 1) == 1 \
                and a.get("depth", 1) == 1
        # a variant (E6: wider / deeper / other activation; a regime with its own optimiser settings) only
        # when nothing plainer is there
        variant = (a.get("width", 1) != 1 or a.get("depth", 1) != 1 or a.get("activation", "relu") != "relu",
                   bool((g or {}).get("training")))
        key = (not same_data, not same_arch, kinds.index(a.get("kind")), variant[1], _regime_rank(p, g or {}),
               variant[0], r["dataset"], r["arch"], r["regime"])
        ranked.append((key, dict(dataset=r["dataset"], arch=r["arch"], regime=r["regime"],
                                 same=same_data and same_arch)))
    return [c for _, c in sorted(ranked, key=lambda kc: kc[0])]


def _attack_names(cfg: dict[str, Any], attack: tuple[str, str]) -> list[str]:
    atts = (cfg.get("evaluation") or {}).get("attacks") or {}
    return [n for n, a in atts.items() if (a.get("type"), a.get("norm")) == attack]


def _per_seed(p: Published, c: dict, cfg: dict[str, Any], metrics: pd.DataFrame,
              transfer: pd.DataFrame | None) -> tuple[pd.Series, str]:
    """Our per-seed values (in the published unit) for candidate cells ``c``, and a note: why there are none,
    or where ours differ from the published setting (another ε)."""
    m = metrics[(metrics["dataset"] == c["dataset"]) & (metrics["arch"] == c["arch"])
                & (metrics["norm"] == p.norm)]
    if p.metric == "clean_diff":
        base = [r for r, g in (cfg.get("regimes") or {}).items() if regime_role(g) == "standard"]
        clean = m[m["metric"] == "clean_acc"].set_index(["regime", "seed"])["value"]
        ours = clean.xs(c["regime"], level="regime") if c["regime"] in clean.index.get_level_values(0) else None
        for b in base:
            if ours is not None and b in clean.index.get_level_values(0):
                diff = (ours - clean.xs(b, level="regime")).dropna() * 100
                return diff, ""
        return pd.Series(dtype=float), "no standard regime to compare with"
    if p.metric == "transfer":
        if transfer is None or not len(transfer):
            return pd.Series(dtype=float), "no transfer results"
        t = transfer[(transfer["dataset"] == c["dataset"]) & (transfer["source_arch"] == c["arch"])
                     & (transfer["target_arch"] == c["arch"]) & (transfer["source_norm"] == p.norm)
                     & (transfer["target_norm"] == p.norm) & (transfer["source_regime"] == c["regime"])]
        if "source_final" in t.columns:  # early-stopped sources are E9's, not [G]'s
            t = t[t["source_final"].astype(bool)]
        roles = {r: regime_role(g) for r, g in (cfg.get("regimes") or {}).items()}
        t = t[t["target_regime"].map(roles) == p.target_role]
        if "study" in t.columns and (t["study"] == "e10_fgsm").any():
            t = t[t["study"] == "e10_fgsm"]
        # [G] counts every adversarial image the target gets wrong (error_rate); older tables: success rate
        col = "error_rate" if "error_rate" in t.columns and t["error_rate"].notna().any() else "success_rate"
        return t.groupby("seed")[col].mean() * 100, "" if len(t) else "transfer pair not run"
    m = m[m["regime"] == c["regime"]]
    note = ""
    if p.attack is not None:
        names = _attack_names(cfg, p.attack)
        m = m[(m["metric"] == p.metric) & m["attack"].isin(names)]
        unit = "/255" if p.attack[1] == "linf" else ""
        if not len(m):
            what = f"{p.attack[0].upper()}-{p.attack[1]} ε={T.fmt_num(p.eps, 4)}{unit}"
            return pd.Series(dtype=float), f"{what} not evaluated"
        eps = m["eps"].astype(float)
        if not np.isclose(eps, p.eps).any():  # another ε only: the nearest one, as an analogue
            near = float(eps.iloc[int(np.argmin(np.abs(eps.values - p.eps)))])
            note = f"at ε={T.fmt_num(near, 4)}{unit}, not {T.fmt_num(p.eps, 4)}{unit}"
            m = m[np.isclose(m["eps"].astype(float), near)]
        else:
            m = m[np.isclose(m["eps"].astype(float), p.eps)]
        m = m[m["attack"] == sorted(set(m["attack"]))[0]]
    else:
        m = m[m["metric"] == p.metric]
    v = m.groupby("seed")["value"].mean()
    if p.metric != "ligs":
        v = (1 - v) * 100 if p.error else v * 100
    return v, note if len(v) else f"{p.metric} not measured"


def reproduction_frame(info: dict[str, Any], metrics: pd.DataFrame,
                       transfer: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per published number: ours (mean ± std over seeds, n), the difference and how close the
    setting is (``same`` / ``analogue`` / ``not run``)."""
    cfg = info.get("config") or {}
    rows = []
    for p in PUBLISHED:
        row = dict(source=p.source, setting=p.setting, quantity=p.quantity, published=p.value, ours=np.nan,
                   ours_std=np.nan, n=0, diff=np.nan, match="not run",
                   ours_setting=f"not in this run (preset {p.preset})", percent=p.metric != "ligs")
        for c in _candidates(p, cfg, metrics):
            v, note = _per_seed(p, c, cfg, metrics, transfer)
            where = f"{c['dataset']}, {c['arch']}, {c['regime']}"
            if not len(v):
                row["ours_setting"] = f"{where}: {note}"
                continue
            row.update(ours=float(v.mean()), ours_std=float(v.std(ddof=1)) if len(v) > 1 else np.nan, n=len(v),
                       diff=float(v.mean()) - p.value, match="same" if c["same"] and not note else "analogue",
                       ours_setting=where + (f" ({note})" if note else ""))
            break
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def g_reference(cfg: dict[str, Any]):
    """[G]'s number for a cell of ours: ``ref(arch, regime, quantity, target_regime) -> percent | None``.

    quantity: clean_error, fgsm_error, wrong_confidence (E10 models) or transfer_error (source regime →
    target regime); matched on the arch's kind (linear = [G]'s shallow softmax, maxout) and the regime's
    role (standard, or weighted: [G]'s adversarial training)."""
    archs, regimes = cfg.get("archs") or {}, cfg.get("regimes") or {}
    table: dict[tuple, float] = {}
    for p in PUBLISHED:
        if not p.source.startswith("[G]"):
            continue
        q = {"clean_acc": "clean_error", "robust_acc": "fgsm_error", "transfer": "transfer_error"}.get(p.metric)
        for kind in p.arch_kinds:
            table[(kind, p.role, q, p.target_role)] = p.value
    for (kind, role), v in G_CONFIDENCE.items():
        table[(kind, role, "wrong_confidence", None)] = v

    def g_role(regime: str | None) -> str | None:
        if regime is None:
            return None
        # any adversarial training of ours stands beside [G]'s (weighted FGSM) adversarial training
        return "standard" if regime_role(regimes.get(regime)) == "standard" else "weighted"

    def ref(arch: str, regime: str, quantity: str, target_regime: str | None = None) -> float | None:
        kind = (archs.get(arch) or {}).get("kind")
        return table.get((kind, g_role(regime), quantity, g_role(target_regime)))

    return ref


def reproduction_table(frame: pd.DataFrame) -> str:
    """The LaTeX tabular of :func:`reproduction_frame`, one block per publication and setting."""
    lines = [r"\begin{tabular}{lrrrl}", r"\toprule",
             r"Quantity & Published & Ours (mean $\pm$ std, $n$ seeds) & $\Delta$ & Our cells \\"]
    block = None
    for _, r in frame.iterrows():
        if (r["source"], r["setting"]) != block:
            block = (r["source"], r["setting"])
            lines += [r"\midrule", rf"\multicolumn{{5}}{{l}}{{\textbf{{{T.tex_escape(r['source'])}}}: "
                                   rf"{T.tex_escape(r['setting'])}}} \\"]
        digits = 1 if r["percent"] else 2
        pub = f"{r['published']:.{digits}f}"
        if np.isfinite(r["ours"]):
            std = f" $\\pm$ {r['ours_std']:.{digits}f}" if np.isfinite(r["ours_std"]) else ""
            ours = f"{r['ours']:.{digits}f}{std} ({int(r['n'])})"
            diff = f"{r['diff']:+.{digits}f}".replace("-", "$-$")
        else:
            ours, diff = "--", "--"
        where = T.tex_escape(r["ours_setting"])
        if r["match"] == "analogue":
            where = r"\emph{analogue:} " + where
        elif r["match"] == "same":
            where = r"\emph{same setting:} " + where
        lines.append(" & ".join(["{" + T.tex_escape(r["quantity"]) + "}", pub, ours, diff, where]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ limitations

#: Why a claim of this kind may fail to reproduce at this pipeline's scale (keyed by claim metric).
FAIL_REASONS = {
    "clean_acc": "clean-accuracy gains of a norm depend on the schedule: with few epochs and a small model one "
                 "side may not have converged, and on the generated data a model that never picks up the "
                 "non-robust feature is capped at the robust feature's agreement",
    "robust_acc": "robust accuracy depends on the attack strength relative to the features' amplitudes and on "
                  "how long the models trained; with few epochs a normalised model may not yet rely on "
                  "non-robust features",
    "ligs": "LIGS moves with training length and learning-rate decays ([B] Fig. 3): short schedules compare "
            "models at a different point of their trajectory than [B]",
    "ligs_trend": "the first measured epoch already follows a whole pass of SGD: with small data the phase in "
                  "which robust features dominate can end inside epoch 1, so LIGS need not fall afterwards",
    "nrf_reliance": "a model picks up the non-robust feature only when it is learnable within the schedule; "
                    "short training can leave normalised models on the robust feature",
    "transfer": "when no model is vulnerable beyond its own source, every transfer rate is near zero and the "
                "difference between sources carries no information",
    "transfer_robust": "a source trained adversarially at the full training ε learns mostly robust features "
                       "and its examples transfer less to standard targets; [B]'s slightly robust surrogates use a "
                       "small ε, so the regime's ε decides the sign",
    "transfer_early": "whether an early checkpoint transfers better depends on how far it has moved from the "
                      "robust-feature phase; with short schedules epoch 1 may already be close to the final model",
    "derived": "the derived datasets are built from the pipeline's own small models at this scale; their robust "
               "and non-robust features are weaker than in [B]'s CIFAR-10 sets, and short training may not "
               "pick them up",
    "factors": "[B]'s effects of width, depth, activation and optimiser on LIGS are small and read off training "
               "curves; at this scale they are of the size of the seed noise",
    "adv_training": "AdvProp's published gain is 0.7 points on ImageNet; on small data and short schedules the "
                    "auxiliary BN's effect can be of the size of the seed noise, and the mixed regime's cost "
                    "depends on the attack strength",
    "ligs_reg": "the LIGS term trades clean accuracy for gradient alignment: a large weight on a small model "
                "costs more clean accuracy than [B]'s 'little change'",
    "fgsm": "[G]'s numbers are for MNIST at ε = 0.25 with their maxout network; other data, another ε or a "
            "smaller model change the error rates",
}
#: the reason for a failed claim of these studies, whatever its metric
STUDY_REASON = {"e3_disentangled": "derived", "e4_conflict": "derived", "e6_factors": "factors",
                "e7_adv_training": "adv_training", "e8_ligs_reg": "ligs_reg", "e10_fgsm": "fgsm"}
#: PAPER.md's experiments: study key -> (tag, topic); the limitations name those this run did not enable.
STUDY_TOPICS = {
    "e1_norms": ("E1", "normalisation and vulnerability"),
    "e2_trajectories": ("E2", "training trajectories"),
    "e3_disentangled": ("E3", "disentangled datasets (D_R, D_NR, D_rand, D_det)"),
    "e4_conflict": ("E4", "conflicting features"),
    "e5_synthetic": ("E5", "ground truth on generated data"),
    "e6_factors": ("E6", "factors other than normalisation (width, depth, activation, weight decay, lr, optimiser)"),
    "e7_adv_training": ("E7", "normalisation under adversarial training (PGD, mixed, AdvProp, FGSM)"),
    "e8_ligs_reg": ("E8", "LIGS regularisation"),
    "e9_transfer": ("E9", "transferability"),
    "e10_fgsm": ("E10", "FGSM, softmax and maxout ([G])"),
}


def _reason_key(row: pd.Series) -> str:
    metric = str(row.get("metric", ""))
    study, cid = str(row.get("study")), str(row.get("id"))
    if study in STUDY_REASON:
        return STUDY_REASON[study]
    if study == "e9_transfer" and "robust-source" in cid:
        return "transfer_robust"
    if study == "e9_transfer" and "early" in cid:
        return "transfer_early"
    if "transfer" in metric or study == "e9_transfer":
        return "transfer"
    if "ligs" in metric and ("last" in metric or "epoch" in metric or "rf-first" in str(row.get("id"))):
        return "ligs_trend"
    for k in ("clean_acc", "robust_acc", "nrf_reliance", "ligs"):
        if k in metric:
            return k
    return "robust_acc"


def limitations(info: dict[str, Any], claims: pd.DataFrame, repro: pd.DataFrame, n_seeds: int) -> list[str]:
    """Plain-text paragraphs (LaTeX-escaped) on what did not reproduce and why that might be."""
    cfg = info.get("config") or {}
    out = []
    tr = cfg.get("training") or {}
    kinds = sorted({(d or {}).get("kind", "?") for d in (cfg.get("datasets") or {}).values()})
    if "cifar10" not in kinds or tr.get("epochs", 0) < 150:
        out.append(f"Scale: these runs use {', '.join(kinds)} data, the architectures "
                   f"{', '.join(sorted(cfg.get('archs') or {}))} and {tr.get('epochs', '?')} epochs, where [B] "
                   f"trained ResNet-18 on CIFAR-10 for 150 epochs. Rows of the reproduction table marked "
                   "analogue compare different settings: their differences show the direction of an effect, "
                   "not a failed reproduction.")
    failed = claims[claims["verdict"] == "FAIL"] if len(claims) else claims
    for _, r in failed.iterrows():
        pct = T.metric_is_percent(str(r.get("metric", "")))
        diff = (T.fmt_signed(float(r["mean_diff"]), pct, tex=False).replace("−", "-") + (" points" if pct else "")
                if np.isfinite(float(r["mean_diff"])) else "n/a")
        out.append(f"Did not reproduce: {r['claim']} (id {r['id']}, mean difference {diff}). "
                   f"A possible reason: {FAIL_REASONS[_reason_key(r)]}.")
    inc = int((claims["verdict"] == "INCONCLUSIVE").sum()) if len(claims) else 0
    if inc:
        out.append(f"{inc} claim{'s' if inc != 1 else ''} stayed inconclusive: with {n_seeds} seed"
                   f"{'s' if n_seeds != 1 else ''} per cell a claim passes only when every seed agrees; more "
                   "seeds (config key seeds) would settle them.")
    far = repro[(repro["match"] == "same") & (repro["diff"].abs() > np.where(repro["percent"], 5, 0.05))]
    for _, r in far.iterrows():
        out.append(f"In the paper's own setting, {r['quantity']} differs from {r['source']} by "
                   f"{T.fmt_num(r['diff'])} (beyond the ±2-point reading error of published figures).")
    not_run = sorted({r["source"].split()[0] for _, r in repro.iterrows() if r["match"] == "not run"})
    if not_run:
        out.append(f"Numbers of {', '.join(not_run)} that this run has no cells for are listed as not run; "
                   "the preset named in the table runs them.")
    studies = cfg.get("studies") or {}
    off = [(tag, topic) for key, (tag, topic) in STUDY_TOPICS.items()
           if not (isinstance(studies.get(key), dict) and studies[key].get("enabled", True))]
    if off:
        out.append("Not run in this configuration (enable them under the config key studies): "
                   + "; ".join(f"{tag}, {topic}" for tag, topic in off) + ".")
    return [T.tex_escape(s) for s in out]
