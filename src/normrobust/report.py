"""The LaTeX report: render it from the aggregated tables, then compile it.

Usage::

    python -m normrobust report render --tables results/tables --figures results/figures \\
        --outdir paper/generated [--claims results/tables/claims.csv] [--template paper/report.tex.j2]
    python -m normrobust report build --texdir paper/generated --out results/report.pdf

``render`` fills ``paper/report.tex.j2`` (jinja2 with LaTeX-safe delimiters: ``\\VAR{...}`` for values,
``\\BLOCK{...}`` for statements, ``\\#{...}`` for comments) and writes ``OUTDIR/report.tex``,
``OUTDIR/tables/*.tex`` and copies of the figures into ``OUTDIR/figures/``. Every number in the text is
computed here from the CSVs (nothing typed by hand); the claims are evaluated afresh from the tables with
:mod:`normrobust.claims` unless ``--claims`` names a claims CSV to use instead (an older claims CSV without
the rule / paper / treatment / baseline columns still renders).

The report has one section per *enabled* study of ``run_info.json``, in the order E1..E10 (tags from
:data:`normrobust.studies.STUDIES`, read at render time: a study's figures are the ones registered there;
a registered figure whose PDF is missing shows a placeholder). A study enabled but without rows for its
cells says so in one line; a disabled study has no section. Template variables: ``sections`` (list, one
dict per study: key, tag, scope, figures, tables {name: path}, empty, claims and the study's numbers, e.g.
``corr`` for E5 or ``g_items`` for E10) and ``studies`` (the same dicts by key), plus ``setup``,
``abstract``, ``claims``, ``tables``, ``reproduction``, ``limitations``, ``costs`` and ``provenance``.

``build`` runs ``latexmk -pdf -interaction=nonstopmode -halt-on-error`` in TEXDIR, fails when the log
reports undefined references or citations, and copies the PDF atomically to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import claims as C
from . import reproduction as R
from . import tables as T

TEX_INSTALL = ("apt-get install latexmk texlive-latex-base texlive-latex-recommended "
               "texlive-fonts-recommended texlive-latex-extra")
UNDEFINED_RE = re.compile(r"(There were undefined references|Reference `[^']*' on page \d+ undefined|"
                          r"Citation `[^']*' on page \d+ undefined|There were undefined citations)")


def default_template() -> Path:
    here = Path(__file__).resolve().parents[2] / "paper" / "report.tex.j2"
    return here if here.is_file() else Path("paper/report.tex.j2")


# ----------------------------------------------------------------------------------- jinja helpers

def jinja_env(template_dir: Path):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_statement_prefix="%%", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["tex"] = T.tex_escape
    return env


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _join(items: list[str], last: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _num(x: Any) -> str:
    """A plain number for the text (config values), in math mode when negative."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return T.tex_escape(x)
    s = T.fmt_num(v, 4)
    return f"${s}$" if v < 0 else s


def _eps_tex(attack: str, eps: float) -> str:
    if attack == "gaussian":
        return _num(eps)
    if T.is_linf(attack):
        return f"{_num(eps)}/255"
    return _num(eps)


def change_phrase(row: pd.Series | dict[str, Any] | None, what: str) -> str:
    """'lowered WHAT by 24.8 points' (or raised / did not change) from a claims row."""
    if row is None or not np.isfinite(float(row["mean_diff"])):
        return ""
    pct = T.metric_is_percent(row["metric"])
    v = float(row["mean_diff"]) * (100 if pct else 1)
    digits = 1 if pct else 3
    if round(v, digits) == 0:
        return f"left {what} unchanged"
    unit = " points" if pct else ""
    verb = "raised" if v > 0 else "lowered"
    return f"{verb} {what} by {abs(v):.{digits}f}{unit}"


def claim_context(row: pd.Series) -> dict[str, Any]:
    """A claims row for the template: id, statement, Δ, n, verdict, the two sides and the paper's number."""
    pct = T.metric_is_percent(row["metric"])

    def side(key: str) -> str:
        s = T.claim_stat_tex(row.get(f"{key}_mean"), row.get(f"{key}_min"), row.get(f"{key}_max"), pct)
        return "" if s == "--" else s + (r" \%" if pct else "")

    paper = row.get("paper", "")
    return {
        "id": T.tex_escape(row["id"]), "text": T.tex_escape(row["claim"]),
        "diff": T.claim_diff_tex(row) + (" points" if pct and np.isfinite(float(row["mean_diff"])) else ""),
        "n": int(row["n_seeds"]) if np.isfinite(float(row["n_seeds"])) else 0,
        "verdict": T.verdict_tex(row["verdict"]), "raw_verdict": str(row["verdict"]),
        "note": T.tex_escape(row.get("note", "") if isinstance(row.get("note", ""), str) else ""),
        "treatment": side("treatment"), "baseline": side("baseline"),
        "paper": T.tex_escape(paper) if isinstance(paper, str) and paper else "",
    }


def _attack_config_tex(a: dict[str, Any] | None) -> str:
    """'PGD-$L_\\infty$, $\\varepsilon=4/255$, 10 steps of 1/255' from a config attack dict."""
    if not isinstance(a, dict):
        return "none"
    name = f"{str(a.get('type', '')).lower()}_{a.get('norm', '')}"
    label = T.attack_label(name) if name in T.ATTACK_LABEL else name.upper()
    parts = [T.tex_escape(label)]
    if a.get("targeted"):
        parts[0] = "targeted " + parts[0]
    if "eps" in a:
        parts.append(f"$\\varepsilon = {_eps_tex(name, a['eps'])}$")
    if "steps" in a:
        step = f" of {_eps_tex(name, a['step'])}" if "step" in a else ""
        parts.append(f"{_num(a['steps'])} step{'s' if a['steps'] != 1 else ''}{step}")
    if "rel_step" in a:
        parts.append(f"step {_num(a['rel_step'])}$\\,\\varepsilon$")
    if a.get("random_start"):
        parts.append("random start")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------ render

def _setup_context(info: dict[str, Any], metrics: pd.DataFrame, head: dict[str, Any]) -> dict[str, Any]:
    cfg = info.get("config") or {}
    cells = metrics[["dataset", "arch", "norm", "regime", "seed"]].drop_duplicates()
    datasets = []
    for name in sorted(set(metrics["dataset"])):
        d = (cfg.get("datasets") or {}).get(name) or {}
        desc = T.tex_escape(name)
        if d:
            keys = [k for k in ("kind", "method", "base", "n_train", "n_test", "image_size", "num_classes",
                                "rf_amplitude", "nrf_amplitude", "noise_std") if k in d]
            desc += " (" + ", ".join(f"{T.tex_escape(k)} {T.tex_escape(d[k]) if isinstance(d[k], str) else _num(d[k])}"
                                     for k in keys) + ")"
        datasets.append(desc)
    archs = []
    for name in sorted(set(metrics["arch"])):
        a = (cfg.get("archs") or {}).get(name) or {}
        desc = T.tex_escape(name)
        extra = []
        if "kind" in a:
            extra.append(T.tex_escape(a["kind"]))
        if "widths" in a:
            extra.append("widths " + ", ".join(_num(w) for w in a["widths"]))
        if "blocks" in a:
            extra.append("blocks " + ", ".join(_num(w) for w in a["blocks"]))
        if "hidden" in a:
            extra.append("hidden " + ", ".join(_num(w) for w in a["hidden"]))
        for k in ("width", "depth"):
            if k in a and a[k] != 1:
                extra.append(f"{k} $\\times {T.fmt_num(a[k])}$")
        if a.get("activation", "relu") != "relu":
            extra.append("activation " + T.tex_escape(a["activation"]))
        archs.append(desc + (f" ({'; '.join(extra)})" if extra else ""))
    regimes = []
    for name in T.sort_regimes(set(metrics["regime"])):
        r = (cfg.get("regimes") or {}).get(name)
        desc = f"{T.tex_escape(T.regime_label(name))} (\\texttt{{{T.tex_escape(name)}}})"
        if isinstance(r, dict) and r.get("attack"):
            desc += ": training attack " + _attack_config_tex(r["attack"])
            if r.get("attack_mode"):
                desc += f", generated in {T.tex_escape(r['attack_mode'])} mode"
        elif isinstance(r, dict):
            desc += ": clean images only"
        if isinstance(r, dict):
            obj = R.regime_role(r)
            if obj == "ligs_reg":
                desc += f", clean loss $+\\,{T.fmt_num(r.get('ligs_weight', 0))} \\cdot (1 - \\text{{LIGS}})$"
            elif obj not in ("standard", "adversarial"):
                desc += f", objective {T.tex_escape(obj)}"
                if "clean_weight" in r:
                    desc += f" (clean weight {_num(r['clean_weight'])})"
            over = r.get("training") or {}
            if over:
                desc += "; training " + ", ".join(
                    f"{T.tex_escape(k.replace('_', ' '))} {T.tex_escape(v) if isinstance(v, str) else _num(v)}"
                    for k, v in over.items())
        regimes.append(desc)
    attacks = []
    rob = metrics[metrics["metric"] == "robust_acc"]
    for att in T.sort_attacks(set(rob["attack"])):
        eps = sorted(set(rob[rob["attack"] == att]["eps"].dropna()))
        spec = ((cfg.get("evaluation") or {}).get("attacks") or {}).get(att) or {}
        steps = f"; {_num(spec['steps'])} steps" if "steps" in spec else ""
        unit = " (in 1/255)" if T.is_linf(att) else ""
        attacks.append(f"{T.tex_escape(T.attack_label(att))}: $\\varepsilon \\in \\{{{', '.join(T.fmt_num(e, 4) for e in eps)}\\}}${unit}{steps}")
    noise = sorted(set(metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()))
    tr = cfg.get("training") or {}
    ev = cfg.get("evaluation") or {}
    training = []
    for k, label in (("epochs", "epochs"), ("batch_size", "batch size"), ("optimizer", "optimizer"),
                     ("lr", "learning rate"), ("momentum", "momentum"), ("weight_decay", "weight decay")):
        if k in tr:
            v = tr[k]
            training.append(f"{label} {T.tex_escape(v) if isinstance(v, str) else _num(v)}")
    sch = tr.get("schedule") or {}
    if sch.get("kind") == "multistep" and sch.get("milestones"):
        training.append(f"learning rate $\\times {T.fmt_num(sch.get('gamma', 0.1))}$ at epoch"
                        f"{'s' if len(sch['milestones']) > 1 else ''} {_join([_num(m) for m in sch['milestones']])}")
    seeds = sorted(set(int(s) for s in cells["seed"]))
    return {
        "datasets": datasets, "archs": archs, "regimes": regimes, "attacks": attacks,
        "norms": _join([T.tex_escape(T.norm_label(n)) for n in T.sort_norms(set(metrics["norm"]))]),
        "noise": ", ".join(_num(s) for s in noise), "training": "; ".join(training),
        "seeds": ", ".join(str(s) for s in seeds), "n_seeds": len(seeds), "n_cells": len(cells),
        "n_models": len(cells.drop(columns=["seed"]).drop_duplicates()),
        "eval_n_test": _num(ev["n_test"]) if "n_test" in ev else "",
        "ligs_sigma": _num(ev["ligs_sigma"]) if "ligs_sigma" in ev else "",
        "headline": T.tex_escape(T.attack_eps_label(head["attack"], head["eps"])),
        "transfer_attack": _attack_config_tex((cfg.get("transfer") or {}).get("attack")),
        "history_attack": _attack_config_tex((tr.get("history") or {}).get("attack")),
        "history_n_test": _num((tr.get("history") or {}).get("n_test")) if (tr.get("history") or {}).get("n_test") else "",
    }


def _study_datasets(st: dict[str, Any]) -> list[str]:
    d = st.get("dataset")
    if d is None:
        return []
    return [str(d)] if isinstance(d, str) else [str(x) for x in d]


def _study_scope(st: dict[str, Any], cfg: dict[str, Any] | None = None) -> str:
    ds = _study_datasets(st)
    names = [T.tex_escape(_dataset_label(d, cfg or {})) for d in ds]
    plural = "s" if len(st.get("archs", [])) > 1 else ""
    return (f"dataset{'s' if len(ds) > 1 else ''} {_join(names)}; architecture{plural} "
            f"{_join([T.tex_escape(a) for a in st.get('archs', [])])}; norms "
            f"{_join([T.tex_escape(T.norm_label(n)) for n in T.sort_norms(st.get('norms', []))])}; regimes "
            f"{_join([T.tex_escape(T.regime_label(r)) for r in T.sort_regimes(st.get('regimes', []))])}")


def _find_claim(claims: pd.DataFrame, ids: list[str]) -> pd.Series | None:
    for cid in ids:
        hit = claims[claims["id"] == cid]
        if len(hit) and np.isfinite(float(hit["mean_diff"].iloc[0])):
            return hit.iloc[0]
    return None


def _abstract(claims: pd.DataFrame, setup: dict[str, Any], studies: dict[str, Any],
              sections: list[dict[str, Any]] | None = None) -> list[str]:
    """Sentences of the abstract, each built only from numbers in the tables."""
    out = [f"We trained {setup['n_models']} model configurations ({setup['n_cells']} models counting "
           f"{setup['n_seeds']} seed{'s' if setup['n_seeds'] != 1 else ''}) with and without normalisation "
           "layers and measured clean accuracy, robust accuracy under attack, local input-gradient similarity "
           "(LIGS)" + (" and, on generated data with known features, reliance on non-robust features"
                      if "e5_synthetic" in studies else "") + "."]
    bits = []
    r_clean = _find_claim(claims, ["E1-bn-clean"])
    r_rob = _find_claim(claims, ["E1-bn-robust", "E2-bn-std-robust"])
    r_ligs = _find_claim(claims, ["E1-bn-ligs", "E2-bn-std-ligs"])
    n = max([int(r["n_seeds"]) for r in (r_clean, r_rob, r_ligs) if r is not None] or [0])
    if r_clean is not None:
        bits.append(change_phrase(r_clean, "clean accuracy"))
    if r_rob is not None:
        bits.append(change_phrase(r_rob, f"{setup['headline']} robust accuracy"))
    if r_ligs is not None:
        bits.append(change_phrase(r_ligs, "LIGS"))
    if bits:
        out.append(f"Under standard training, batch normalisation (BN) {_join(bits)} compared with the same "
                   f"network without normalisation (mean of per-seed paired differences, {n} "
                   f"seed{'s' if n != 1 else ''}).")
    r_nrf = _find_claim(claims, ["E5-bn-nrf"])
    if r_nrf is not None:
        out.append(f"On the generated data, BN {change_phrase(r_nrf, 'reliance on non-robust features')}.")
    for s in sections or []:
        if s["key"] == "e5_synthetic" and s.get("corr", {}).get("rho_tex"):
            c = s["corr"]
            out.append(f"Over the {c['n_cells']} cells of E5, LIGS and the measured NRF reliance have a Spearman "
                       f"rank correlation of {c['rho_tex']} ({c['agreement']}).")
    r_adv = [r for _, r in claims[claims["id"].str.startswith("E2-bn-adv-robust")].iterrows()
             if np.isfinite(float(r["mean_diff"]))]
    if r_adv:
        r = r_adv[0]
        out.append(f"Under adversarial training the BN gap in robust accuracy was "
                   f"{T.fmt_signed(float(r['mean_diff']), True)} points.")
    per_study = []
    for s in sections or []:
        sc = claims[claims["study"] == s["key"]]
        if s["key"] in ("e1_norms", "e2_trajectories", "e5_synthetic", "e9_transfer") or not len(sc):
            continue
        topic = R.STUDY_TOPICS.get(s["key"], (s["tag"], s["key"]))[1].split(" (")[0]
        per_study.append(f"{s['tag']} ({T.tex_escape(topic)}) {int((sc['verdict'] == C.PASS).sum())} of {len(sc)}")
    if per_study:
        out.append("Of the claims of the further studies, passed: " + _join(per_study) + ".")
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    k = len(claims)
    out.append(f"Of {k} claim{'s' if k != 1 else ''} from the literature checked with a rule fixed in "
               f"advance, {int(counts.get(C.PASS, 0))} passed, {int(counts.get(C.FAIL, 0))} failed and "
               f"{int(counts.get(C.INCONCLUSIVE, 0))} were inconclusive.")
    return out


# ------------------------------------------------------------------------------------ study sections

def _dataset_label(name: str, cfg: dict[str, Any]) -> str:
    """D_R, D_NR, D_rand, D_det, conflict set (from a derived dataset's method), else the name."""
    method = R.dataset_method(cfg.get("datasets") or {}, name)
    return R.DERIVED_NAMES.get(method, name) if method else name


def _study_cells(cfg: dict[str, Any], st: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The (dataset, arch, norm, regime) of a study (its design; seeds left out)."""
    try:
        from .config import study_cells
        cells = study_cells({**cfg, "seeds": [0]}, st)
    except (KeyError, TypeError, ImportError):
        cells = [dict(dataset=d, arch=a, norm=n, regime=r) for d in _study_datasets(st)
                 for a in st.get("archs", []) for n in st.get("norms", []) for r in st.get("regimes", [])]
    return list(dict.fromkeys((str(c["dataset"]), str(c["arch"]), str(c["norm"]), str(c["regime"])) for c in cells))


def _attack_name_label(a: dict[str, Any] | None) -> str:
    """'PGD-L∞ ε=4/255' (plain text) from a config attack dict."""
    if not isinstance(a, dict):
        return "attack"
    name = f"{str(a.get('type', '')).lower()}_{a.get('norm', '')}"
    label = T.attack_label(name) if name in T.ATTACK_LABEL else name.upper()
    if a.get("targeted"):
        label = "targeted " + label
    return f"{label} {T.eps_label(name, a['eps'])}" if "eps" in a else label


def history_columns(cfg: dict[str, Any], history: pd.DataFrame | None) -> dict[str, str]:
    """History column -> table label: clean, the per-epoch attack, the extra attacks, LIGS."""
    hist = (cfg.get("training") or {}).get("history") or {}
    cols = {"clean_acc": "Clean (%)", "robust_acc": f"{_attack_name_label(hist.get('attack'))} (%)"}
    extra = hist.get("extra_attacks") or {}
    names = list(extra) + sorted(c[len("robust_acc_"):] for c in (history.columns if history is not None else [])
                                 if c.startswith("robust_acc_") and c[len("robust_acc_"):] not in extra)
    for name in names:
        cols[f"robust_acc_{name}"] = (f"{_attack_name_label(extra[name])} (%)" if name in extra
                                      else f"robust acc. {name} (%)")
    cols["ligs"] = "LIGS"
    return cols


def _variant_label(cfg: dict[str, Any], base: tuple[str, str], arch: str, regime: str) -> str:
    """What differs from the base cell: width / depth multiplier, activation, weight decay, lr, optimizer."""
    archs, regimes, tr = cfg.get("archs") or {}, cfg.get("regimes") or {}, cfg.get("training") or {}
    if (arch, regime) == tuple(base):
        return f"base ({arch}, {T.regime_label(regime)})"
    parts = []
    if arch != base[0]:
        a, b = archs.get(arch) or {}, archs.get(base[0]) or {}
        defaults = {"width": 1, "depth": 1, "activation": "relu"}
        for k in sorted(set(a) | set(b), key=lambda k: ((["width", "depth", "activation"] + [k]).index(k), k)):
            va, vb = a.get(k, defaults.get(k)), b.get(k, defaults.get(k))
            if va == vb:
                continue
            if k in ("width", "depth"):
                parts.append(f"{k} ×{T.fmt_num(va)}" + ("" if vb in (1, 1.0, None) else f" (base ×{T.fmt_num(vb)})"))
            elif k == "activation":
                parts.append(f"activation {va}")
            elif k == "kind":
                parts.append(f"{va} instead of {vb}")
            else:
                parts.append(f"{k} {va}")
        if not parts:
            parts.append(f"arch {arch}")
    if regime != base[1]:
        r, b = regimes.get(regime) or {}, regimes.get(base[1]) or {}
        mine, theirs = {**tr, **(r.get("training") or {})}, {**tr, **(b.get("training") or {})}
        names = {"weight_decay": "weight decay", "lr": "lr", "optimizer": "optimizer", "momentum": "momentum"}
        for k in ("optimizer", "weight_decay", "lr", "momentum"):
            if mine.get(k) != theirs.get(k):
                v, w = mine.get(k), theirs.get(k)
                parts.append(f"{names[k]} {v}" if isinstance(v, str) else
                             f"{names[k]} {T.fmt_num(v)} (base {T.fmt_num(w) if w is not None else '--'})")
        if R.regime_role(r) != R.regime_role(b) or r.get("attack") != b.get("attack"):
            parts.append(T.regime_label(regime))
        if not parts:
            parts.append(f"regime {regime}")
    return "; ".join(parts)


def _paper_cells(source: str, key: Any) -> dict[tuple, dict[str, float]]:
    """Published numbers of one source, by (dataset method, norm) -> {metric: value}."""
    out: dict[tuple, dict[str, float]] = {}
    for p in R.PUBLISHED:
        if p.source == source:
            out.setdefault(key(p), {})[p.metric] = p.value
    return out


def _fmt_paper(v: float | None, pct: bool) -> str:
    if v is None or not np.isfinite(v):
        return "--"
    return f"${v:.0f}$" if pct and float(v).is_integer() else (f"${v:.1f}$" if pct else f"${v:.2f}$")


def _agreement(rho: float) -> str:
    """How well LIGS agrees with the ground truth: strength and direction of Spearman's ρ."""
    if rho is None or not np.isfinite(rho):
        return "not computable"
    a = abs(rho)
    strength = "strong" if a >= 0.7 else ("moderate" if a >= 0.4 else "weak")
    if rho < 0:
        return (f"{strength} agreement with the ground truth: cells with higher LIGS rely less on the non-robust "
                "feature" if a >= 0.4 else f"{strength} agreement: the expected direction, but LIGS orders the cells "
                "by NRF reliance only loosely")
    return (f"{strength} disagreement: cells with higher LIGS rely more, not less, on the non-robust feature"
            if a >= 0.4 else "no useful agreement: the sign is opposite to the expected one and the correlation weak")


def _fgsm_attack(cfg: dict[str, Any], metrics: pd.DataFrame) -> tuple[str | None, float | None]:
    """The FGSM-L∞ evaluation attack and its largest ε evaluated."""
    atts = (cfg.get("evaluation") or {}).get("attacks") or {}
    names = [n for n, a in atts.items() if isinstance(a, dict) and a.get("type") == "fgsm" and a.get("norm") == "linf"]
    if not names:
        names = [a for a in set(metrics["attack"]) if str(a).startswith("fgsm")]
    rob = metrics[(metrics["metric"] == "robust_acc") & metrics["attack"].isin(names)]
    if rob.empty:
        return (names[0] if names else None), None
    eps = float(rob["eps"].max())
    name = sorted(set(rob[np.isclose(rob["eps"].astype(float), eps)]["attack"]))[0]
    return name, eps


def _build_sections(info: dict[str, Any], metrics: pd.DataFrame, history: pd.DataFrame | None,
                    transfer: pd.DataFrame | None, claims: pd.DataFrame, head: dict[str, Any],
                    write_table, studies_map: dict[str, Any]) -> list[dict[str, Any]]:
    """One context per enabled study, in the order E1..E10: scope, figures, tables, claims, numbers."""
    cfg = info.get("config") or {}
    enabled = T.studies(info)
    order = sorted(enabled, key=lambda k: _tag_number(k, studies_map))
    headline_spec = T.metric_spec(f"{T.attack_eps_label(head['attack'], head['eps'])} (%)", "robust_acc",
                                  head["attack"], head["eps"])
    clean_spec = T.metric_spec("Clean (%)", "clean_acc")
    ligs_spec = T.metric_spec("LIGS", "ligs")
    sections = []
    for key in order:
        st = enabled[key]
        if key not in studies_map and key not in R.STUDY_TOPICS:
            continue
        tag = (studies_map.get(key) or {}).get("tag") or R.STUDY_TOPICS[key][0]
        cells = _study_cells(cfg, st)
        m = T.filter_cells(metrics, cells)
        seeds = m["seed"].nunique() if len(m) else 0
        sc = claims[claims["study"] == key]
        ctx: dict[str, Any] = {
            "key": key, "tag": tag, "label": tag.lower(), "topic": T.tex_escape(R.STUDY_TOPICS.get(key, (tag, key))[1]),
            "scope": _study_scope(st, cfg), "n_seeds": int(seeds), "n_cells": len({c[:4] for c in cells}),
            "figures": [f for f in (studies_map.get(key) or {}).get("figures", [])],
            "tables": {}, "empty": m.empty,
            "claims": [claim_context(r) for _, r in sc.iterrows()],
            "dataset": T.tex_escape(_join([_dataset_label(d, cfg) for d in _study_datasets(st)])),
            "n_epochs": 0, "n_pairs": 0, "n_images": "--",
            # defaults of the study-specific values (set below when the study has rows)
            "history_cols": "", "corr": {"rho_tex": "", "n_cells": 0, "per_seed": "", "agreement": ""},
            "base": "", "variants": [], "regimes": "", "weights": "", "source_epochs": "", "targets": "",
            "eps": "--", "eps_is_g": True, "transfer_attack": "", "g_items": [], "robust_label": "",
        }
        sections.append(ctx)
        if m.empty:
            continue
        sel = dict(cells=cells)
        if key == "e1_norms":
            ctx["tables"]["main"] = write_table(f"main_{key}", T.main_results_table(metrics, head, **sel))
        elif key == "e2_trajectories":
            ctx["tables"]["main"] = write_table(f"main_{key}", T.main_results_table(metrics, head, **sel))
            if history is not None and len(T.filter_cells(history, cells)):
                hc = history_columns(cfg, history)
                ctx["tables"]["history"] = write_table(f"history_{key}", T.history_final_table(history, hc, **sel))
                h = T.filter_cells(history, cells)
                ctx["n_epochs"] = int(h["epoch"].max())
                ctx["history_cols"] = _join([T.tex_escape(v.replace(" (%)", "")) for v in hc.values()])
        elif key == "e3_disentangled":
            _e3(ctx, key, cfg, metrics, cells, head, clean_spec, headline_spec, ligs_spec, write_table)
        elif key == "e4_conflict":
            _e4(ctx, key, cfg, metrics, cells, write_table)
        elif key == "e5_synthetic":
            ctx["tables"]["nrf"] = write_table(f"nrf_{key}", T.nrf_table(metrics, **sel))
            corr = T.rank_correlation_frame(metrics, cells=cells)
            ctx["tables"]["corr"] = write_table(f"corr_{key}", T.rank_correlation_table(corr))
            ctx["corr"] = _corr_context(corr)
        elif key == "e6_factors":
            _e6(ctx, key, cfg, st, metrics, clean_spec, headline_spec, ligs_spec, write_table)
        elif key == "e7_adv_training":
            ctx["tables"]["main"] = write_table(f"main_{key}", T.main_results_table(
                metrics, head, columns=[clean_spec, headline_spec], **sel))
            ctx["regimes"] = _join([T.tex_escape(T.regime_label(r)) for r in T.sort_regimes(st.get("regimes", []))])
        elif key == "e8_ligs_reg":
            _e8(ctx, key, cfg, st, metrics, cells, clean_spec, headline_spec, ligs_spec, write_table)
        elif key == "e9_transfer":
            _e9(ctx, key, st, transfer, write_table)
        elif key == "e10_fgsm":
            _e10(ctx, key, cfg, st, metrics, transfer, cells, write_table)
        else:
            ctx["tables"]["main"] = write_table(f"main_{key}", T.main_results_table(metrics, head, **sel))
    return sections


def _tag_number(key: str, studies_map: dict[str, Any]) -> tuple[int, str]:
    tag = (studies_map.get(key) or {}).get("tag") or R.STUDY_TOPICS.get(key, ("E99",))[0]
    digits = "".join(ch for ch in str(tag) if ch.isdigit())
    return (int(digits) if digits else 99, key)


def _corr_context(corr: pd.DataFrame) -> dict[str, Any]:
    means = corr[corr["scope"] == "seed means"]
    per = corr[corr["scope"] == "seed"]
    out: dict[str, Any] = {"n_cells": 0, "rho_tex": "", "agreement": "not computable", "per_seed": "",
                           "n_seed_rows": len(per)}
    if len(means):
        r = means.iloc[0]
        out["n_cells"] = int(r["n_cells"])
        out["rho"] = float(r["spearman"])
        out["rho_tex"] = f"$\\rho = {T.fmt_signed(r['spearman'], digits=3, tex=False).replace('−', '-')}$" \
            if np.isfinite(r["spearman"]) else ""
        out["agreement"] = _agreement(float(r["spearman"]))
    vals = per["spearman"].dropna()
    if len(vals):
        lo, hi = float(vals.min()), float(vals.max())
        out["per_seed"] = (f"{T.fmt_signed(lo, digits=3)} to {T.fmt_signed(hi, digits=3)}" if len(vals) > 1
                           else T.fmt_signed(lo, digits=3))
    return out


def _e3(ctx, key, cfg, metrics, cells, head, clean_spec, headline_spec, ligs_spec, write_table) -> None:
    specs = [clean_spec, headline_spec]
    l2 = metrics[(metrics["metric"] == "robust_acc") & (metrics["attack"] == "pgd_l2")
                 & np.isclose(metrics["eps"].astype(float), 0.25)]
    if len(l2) and not (head["attack"] == "pgd_l2" and np.isclose(head["eps"], 0.25)):
        specs.append(T.metric_spec("PGD-L2 ε=0.25 (%)", "robust_acc", "pgd_l2", 0.25))
    specs.append(ligs_spec)
    datasets = cfg.get("datasets") or {}
    paper = _paper_cells("[B] Fig. 4 (fig)", lambda p: (p.dataset_method, p.norm))

    def extra(row: dict[str, Any]) -> dict[str, str]:
        v = paper.get((R.dataset_method(datasets, row["dataset"]), row["norm"]), {})
        return {"[B] clean (%)": _fmt_paper(v.get("clean_acc"), True),
                "[B] PGD-L2 0.25 (%)": _fmt_paper(v.get("robust_acc"), True),
                "[B] LIGS": _fmt_paper(v.get("ligs"), False)}

    method_order = ["robust", "nonrobust", "rand", "det"]
    ds = sorted({c[0] for c in cells}, key=lambda d: (method_order.index(R.dataset_method(datasets, d))
                                                       if R.dataset_method(datasets, d) in method_order else 9, d))
    ctx["tables"]["main"] = write_table(f"main_{key}", T.stats_table(
        T.filter_cells(metrics, cells), specs, always=("dataset", "norm"), headers={"dataset": "Trained on"},
        formats={"dataset": lambda d: _dataset_label(d, cfg)}, extra=extra, orders={"dataset": ds}))
    ctx["robust_label"] = T.tex_escape(headline_spec["label"].replace(" (%)", ""))


def _e4(ctx, key, cfg, metrics, cells, write_table) -> None:
    specs = [T.metric_spec("Acc. on t (%)", "clean_acc"), T.metric_spec("Acc. on t+1 (%)", "shifted_acc"),
             T.metric_spec("LIGS", "ligs")]
    paper = _paper_cells("[B] Fig. 6 (fig)", lambda p: p.norm)

    def extra(row: dict[str, Any]) -> dict[str, str]:
        v = paper.get(row["norm"], {})
        return {"[B] t (%)": _fmt_paper(v.get("clean_acc"), True),
                "[B] t+1 (%)": _fmt_paper(v.get("shifted_acc"), True),
                "[B] LIGS": _fmt_paper(v.get("ligs"), False)}

    ctx["tables"]["main"] = write_table(f"main_{key}", T.stats_table(
        T.filter_cells(metrics, cells), specs, always=("norm",), formats={"dataset": lambda d: _dataset_label(d, cfg)},
        extra=extra))


def _e6(ctx, key, cfg, st, metrics, clean_spec, headline_spec, ligs_spec, write_table) -> None:
    archs, regimes = [str(a) for a in st.get("archs", [])], [str(r) for r in st.get("regimes", [])]
    if not archs or not regimes:
        return
    base = (archs[0], regimes[0])
    variants = ([(a, regimes[0], _variant_label(cfg, base, a, regimes[0])) for a in archs[1:]]
                + [(archs[0], r, _variant_label(cfg, base, archs[0], r)) for r in regimes[1:]])
    m = metrics[metrics["dataset"].isin(_study_datasets(st))]
    robust = T.metric_spec("Robust (%)", headline_spec["metric"], headline_spec["attack"], headline_spec["eps"])
    frame = T.factors_frame(m, [ligs_spec, clean_spec, robust], base, variants, norms=st.get("norms"),
                            base_label=_variant_label(cfg, base, *base))
    ctx["tables"]["main"] = write_table(f"main_{key}", T.factors_table(frame))
    ctx["base"] = T.tex_escape(_variant_label(cfg, base, *base).replace("base ", ""))
    ctx["variants"] = [T.tex_escape(v[2]) for v in variants]


def _e8(ctx, key, cfg, st, metrics, cells, clean_spec, headline_spec, ligs_spec, write_table) -> None:
    weights = T.ligs_weights(st.get("regimes", []), cfg)
    m = T.filter_cells(metrics, cells)
    m = m[m["regime"].isin(list(weights))].copy()
    m["ligs_weight"] = m["regime"].map(weights)
    ctx["tables"]["main"] = write_table(f"main_{key}", T.stats_table(
        m, [clean_spec, headline_spec, ligs_spec], ("dataset", "arch", "ligs_weight", "norm"),
        always=("ligs_weight", "norm"), headers={"ligs_weight": "LIGS weight"}, formats={"ligs_weight": T.fmt_num}))
    ctx["weights"] = _join([_num(w) for w in sorted(set(weights.values())) if np.isfinite(w)])


def _e9(ctx, key, st, transfer, write_table) -> None:
    if transfer is None:
        return
    t = transfer
    if "study" in t.columns and (t["study"] == key).any():
        t = t[t["study"] == key]
    final = t[t["source_final"].astype(bool)] if "source_final" in t.columns else t
    sel = dict(dataset=st.get("dataset"), archs=st.get("archs"), norms=st.get("norms"), regimes=st.get("regimes"))
    ctx["tables"]["transfer"] = write_table(f"transfer_{key}", T.transfer_table(final, **sel))
    tt = T._filter(final, dataset=st.get("dataset"))
    ctx["n_pairs"] = int(len(tt[["source_arch", "source_norm", "source_regime", "target_arch", "target_norm",
                                 "target_regime"]].drop_duplicates()))
    ctx["n_seeds"] = int(tt["seed"].nunique())
    nn = tt["n"].dropna()
    ctx["n_images"] = (f"{int(nn.min())}--{int(nn.max())}" if len(nn) and nn.min() != nn.max()
                       else (str(int(nn.iloc[0])) if len(nn) else "--"))
    targets = ((st.get("transfer") or {}).get("targets")) or ["standard"]
    kinds = T.transfer_sources_frame(t, targets, dataset=st.get("dataset"), norms=st.get("norms"))
    if len(kinds) and ("source_final" in t.columns or kinds["kind"].nunique() > 1):
        ctx["tables"]["sources"] = write_table(f"sources_{key}", T.transfer_sources_table(kinds))
        ctx["source_epochs"] = _join([_num(e) for e in ((st.get("transfer") or {}).get("source_epochs") or [])])
    ctx["targets"] = _join([T.tex_escape(T.regime_label(r)) for r in targets])


def _e10(ctx, key, cfg, st, metrics, transfer, cells, write_table) -> None:
    attack, eps = _fgsm_attack(cfg, T.filter_cells(metrics, cells))
    archs = cfg.get("archs") or {}

    def arch_label(a: str) -> str:
        """[G]'s names: a linear arch is the shallow softmax classifier."""
        kind = (archs.get(a) or {}).get("kind")
        if kind == "linear":
            return "softmax" if a == "softmax" else f"softmax ({a})"
        return a if kind in (None, a) else f"{a} ({kind})"

    frame = T.fgsm_frame(metrics, transfer, dataset=st.get("dataset"), archs=st.get("archs", []),
                         norms=st.get("norms", []), regimes=st.get("regimes", []), attack=attack, eps=eps,
                         reference=R.g_reference(cfg), study=key)
    ctx["frame"] = frame
    ctx["tables"]["main"] = write_table(f"main_{key}", T.fgsm_models_table(frame, arch_label))
    if (frame["kind"] == "transfer").any():
        ctx["tables"]["transfer"] = write_table(f"transfer_{key}", T.fgsm_transfer_table(frame, arch_label))
    ctx["eps"] = (f"$\\varepsilon = {T.fmt_num(eps, 4)}/255$ (${T.fmt_num(eps / 255)}$ on the $[0,1]$ scale)"
                  if eps is not None else "--")
    ctx["eps_is_g"] = eps is not None and bool(np.isclose(eps, 63.75))
    ctx["transfer_attack"] = _attack_config_tex((st.get("transfer") or {}).get("attack")
                                                or (cfg.get("transfer") or {}).get("attack"))
    names = {"clean_error": "clean error", "fgsm_error": "FGSM error",
             "wrong_confidence": "confidence on misclassified FGSM examples",
             "transfer_error": "error on the target", "transfer_success": "transfer success"}
    items = []
    for _, r in frame[frame["paper"].notna()].iterrows():
        who = f"{arch_label(r['arch'])}, {T.regime_label(r['regime'])}"
        if r["kind"] == "transfer":
            who = f"{arch_label(r['arch'])}, {T.regime_label(r['regime'])} → {T.regime_label(r['target_regime'])}"
        d = 2 if r["quantity"] == "clean_error" else 1
        diff = float(r["diff"])
        if round(diff, d) == 0:
            how = "the same as [G]"
        else:
            how = f"{abs(diff):.{d}f} points {'above' if diff > 0 else 'below'} [G]'s {r['paper']:.{d}f}%"
        items.append(T.tex_escape(f"{who}: {names[r['quantity']]} {r['mean']:.{d}f}%, {how}"))
    ctx["g_items"] = items
    ctx.pop("frame")


def render(tables_dir: str | Path, figures_dir: str | Path, outdir: str | Path,
           claims_csv: str | Path | None = None, template: str | Path | None = None) -> Path:
    """Write OUTDIR/report.tex, OUTDIR/tables/*.tex and OUTDIR/figures/*.pdf; return the .tex path."""
    from . import studies as S
    from .utils import atomic_write, log

    studies_map = dict(S.STUDIES)  # read now: a study's figures are whatever studies.py registers
    tables_dir, figures_dir, outdir = Path(tables_dir), Path(figures_dir), Path(outdir)
    template = Path(template) if template else default_template()
    if not template.is_file():
        raise T.MissingInputError(f"missing report template {template}")
    info = T.read_run_info(tables_dir, required=True)
    metrics = T.read_table(tables_dir, "metrics")
    enabled = T.studies(info)
    history = (T.read_table(tables_dir, "history") if "e2_trajectories" in enabled
               else _optional(tables_dir, "history"))
    needs_transfer = any(k in enabled for k in ("e9_transfer", "e10_fgsm"))
    transfer = T.read_table(tables_dir, "transfer") if "e9_transfer" in enabled else (
        _optional(tables_dir, "transfer") if needs_transfer else None)
    head = T.headline(info)
    if claims_csv:
        p = Path(claims_csv)
        if not p.is_file():
            raise T.MissingInputError(f"missing claims file {p} (run `python -m normrobust claims` first)")
        claims = pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"])
    else:
        claims = C.load_and_evaluate(tables_dir)
    claims = T.normalize_claims(claims)

    written: dict[str, str] = {}

    def write_table(name: str, text: str) -> str:
        rel = f"tables/{name.replace('_', '-')}.tex"
        atomic_write(outdir / rel, lambda f: f.write(text), mode="w")
        written[name] = rel
        return rel

    figs: dict[str, dict[str, Any]] = {}
    for s in studies_map.values():
        for name in s.get("figures", []):
            src = figures_dir / f"{name}.pdf"
            if src.is_file():
                data = src.read_bytes()
                atomic_write(outdir / "figures" / f"{name}.pdf", lambda f, d=data: f.write(d))
                figs[name] = {"present": True, "path": f"figures/{name}.pdf", "missing": ""}
            else:
                figs[name] = {"present": False, "path": "", "missing": T.tex_escape(str(src))}

    setup = _setup_context(info, metrics, head)
    sections = _build_sections(info, metrics, history, transfer, claims, head, write_table, studies_map)
    study_ctx = {s["key"]: s for s in sections}
    titles = {s["key"]: f"{s['tag']}: {R.STUDY_TOPICS.get(s['key'], (s['tag'], s['key']))[1]}" for s in sections}
    for key in set(claims["study"]) - set(titles):
        tag, topic = R.STUDY_TOPICS.get(key, (key, ""))
        titles[key] = f"{tag}: {topic}" if topic else key
    write_table("claims", T.claims_table(claims, titles=titles))
    repro = R.reproduction_frame(info, metrics, transfer if transfer is not None else _optional(tables_dir, "transfer"))
    write_table("reproduction", R.reproduction_table(repro))
    costs = _optional(tables_dir, "costs")
    write_table("costs", T.costs_table(costs))
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    versions = info.get("versions") or {}
    inputs = [(n, tables_dir / n) for n in ("metrics.csv", "history.csv", "transfer.csv", "costs.csv",
                                            "run_info.json")]
    ctx = {
        "title": "Do normalisation layers make networks lean on non-robust features?",
        "date": T.tex_escape(str(info.get("created", ""))[:10]),
        "abstract": _abstract(claims, setup, enabled, sections),
        "setup": setup, "studies": study_ctx, "sections": sections, "figs": figs, "tables": written,
        "claims": [claim_context(r) for _, r in claims.iterrows()],
        "failed": [claim_context(r) for _, r in claims[claims["verdict"] == C.FAIL].iterrows()],
        "inconclusive": [claim_context(r) for _, r in claims[claims["verdict"] == C.INCONCLUSIVE].iterrows()],
        "n_claims": len(claims), "n_pass": int(counts.get(C.PASS, 0)), "n_fail": int(counts.get(C.FAIL, 0)),
        "n_inconclusive": int(counts.get(C.INCONCLUSIVE, 0)),
        "rule": {"tol_keep": T.fmt_num(C.TOL_KEEP * 100), "tol_small": T.fmt_num(C.TOL_SMALL * 100),
                 "min_seeds": C.MIN_SEEDS},
        "reproduction": {
            "n_rows": len(repro), "n_ours": int(np.isfinite(repro["ours"]).sum()),
            "n_same": int((repro["match"] == "same").sum()), "n_analogue": int((repro["match"] == "analogue").sum()),
            "n_not_run": int((repro["match"] == "not run").sum()),
        },
        "limitations": R.limitations(info, claims, repro, setup["n_seeds"]),
        "costs": _costs_context(costs),
        "provenance": {
            "config_sha": T.tex_escape(info.get("config_sha256", "unknown")[:16]),
            "cpu": T.tex_escape(info.get("cpu", "unknown")),
            "machine": T.tex_escape(info.get("machine", "unknown")),
            "commit": T.tex_escape(info.get("git_commit", "unknown")),
            "versions": _join([f"{T.tex_escape(k)}~{T.tex_escape(v)}" for k, v in sorted(versions.items())]),
            "device": T.tex_escape(info.get("device", "unknown")),
            "created": T.tex_escape(info.get("created", "unknown")),
            "inputs": [{"name": T.tex_escape(n), "sha": _sha(p)} for n, p in inputs if p.is_file()],
        },
    }
    env = jinja_env(template.parent)
    text = env.get_template(template.name).render(**ctx)
    out = outdir / "report.tex"
    atomic_write(out, lambda f: f.write(text), mode="w")
    log(f"report: rendered {out} ({len(written)} tables, {sum(f['present'] for f in figs.values())} figures)")
    return out


def _optional(tables_dir: Path, name: str) -> pd.DataFrame | None:
    """A table the report can do without (older runs lack costs.csv): None when absent."""
    try:
        return T.read_table(tables_dir, name)
    except T.MissingInputError:
        return None


def _costs_context(costs: pd.DataFrame | None) -> dict[str, Any]:
    if costs is None or not len(costs):
        return {"present": False, "total_h": "--", "n_jobs": 0, "gpu": False}
    return {"present": True, "total_h": T.fmt_num(costs["wall_s"].sum() / 3600, 2), "n_jobs": len(costs),
            "gpu": bool(costs["peak_gpu_mem_mib"].notna().any())}


# ------------------------------------------------------------------------------------------- build

def build(texdir: str | Path, out: str | Path, tex: str = "report.tex", timeout: int = 600) -> int:
    """Compile TEXDIR/TEX with latexmk and copy the PDF to OUT. Returns an exit code."""
    from .utils import atomic_write, log

    latexmk = shutil.which("latexmk")
    if latexmk is None:
        print(f"normrobust report build: error: TeX is missing (no latexmk on PATH); install it with: "
              f"{TEX_INSTALL}", file=sys.stderr)
        return 3
    texdir = Path(texdir)
    if not (texdir / tex).is_file():
        print(f"normrobust report build: error: missing {texdir / tex} (run `python -m normrobust report render`"
              " first)", file=sys.stderr)
        return 1
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", tex]
    try:
        proc = subprocess.run(cmd, cwd=texdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"normrobust report build: error: latexmk timed out after {timeout}s", file=sys.stderr)
        return 1
    logfile = texdir / (Path(tex).stem + ".log")
    log_text = logfile.read_text(errors="replace") if logfile.is_file() else ""
    if proc.returncode != 0:
        errs = [ln for ln in log_text.splitlines() if ln.startswith("!")][:5]
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        print(f"normrobust report build: error: latexmk failed (exit {proc.returncode}) in {texdir}; "
              f"see {logfile}\n" + ("\n".join(errs) if errs else tail), file=sys.stderr)
        return 1
    undefined = sorted(set(m.group(0) for m in UNDEFINED_RE.finditer(log_text)))
    if undefined:
        print(f"normrobust report build: error: undefined references in {logfile}: " + "; ".join(undefined),
              file=sys.stderr)
        return 1
    pdf = texdir / (Path(tex).stem + ".pdf")
    data = pdf.read_bytes()
    atomic_write(out, lambda f: f.write(data))
    log(f"report: built {out} ({len(data) // 1024} KiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust report", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the report's .tex, tables and figures")
    r.add_argument("--tables", default="results/tables", help="directory of the aggregated tables")
    r.add_argument("--figures", default="results/figures", help="directory of the figure PDFs (NAME.pdf)")
    r.add_argument("--outdir", default="paper/generated", help="where report.tex, tables/, figures/ go")
    r.add_argument("--claims", default=None, help="claims CSV to use (default: evaluate from the tables)")
    r.add_argument("--template", default=None, help="jinja2 template (default: paper/report.tex.j2)")
    b = sub.add_parser("build", help="compile the rendered report with latexmk")
    b.add_argument("--texdir", default="paper/generated", help="directory holding report.tex")
    b.add_argument("--tex", default="report.tex", help="main .tex file in TEXDIR")
    b.add_argument("--out", default="results/report.pdf", help="where to copy the PDF")
    args = p.parse_args(argv)
    if args.cmd == "render":
        try:
            render(args.tables, args.figures, args.outdir, claims_csv=args.claims, template=args.template)
        except T.MissingInputError as e:
            print(f"normrobust report render: error: {e}", file=sys.stderr)
            return 1
        return 0
    return build(args.texdir, args.out, tex=args.tex)


if __name__ == "__main__":
    raise SystemExit(main())
