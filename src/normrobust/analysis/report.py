"""The report driver: render the LaTeX report from the aggregated tables, then compile it.

``render`` fills ``paper/report.tex.j2`` (jinja2 with LaTeX-safe delimiters: ``\\VAR{...}`` for values,
``\\BLOCK{...}`` for statements, ``\\#{...}`` for comments) and writes ``OUTDIR/report.tex``,
``OUTDIR/tables/*.tex`` and copies of the figures into ``OUTDIR/figures/``. Every number in the text is computed
from the CSVs (nothing typed by hand).

The report has one section per *enabled* study, in the order of the study registry it is given. A study's
section is its template fragment ``paper/sections/<key>.tex.j2``, filled with the shared context (key, tag,
title, scope, figures, claims, ``empty``, ...) and what the study module's ``section(view, frames, write_table)``
returns (called for an empty study too: its tables then say so, and the fragment shows only its introduction).
A study enabled but without rows for its cells says so in one line.

``build`` runs ``latexmk -pdf -interaction=nonstopmode -halt-on-error``, fails when the log reports undefined
references or citations, and copies the PDF atomically to its destination.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from .. import resources
from ..cells import enabled_studies
from ..regimes import clean_weight, ligs_weight, role
from ..utils import atomic_write, log
from .claims import evaluate, read_claims
from .evaluation_checks import autoattack_frame, autoattack_summary, autoattack_table, derived_table
from .labels import (
    attack_eps_label,
    attack_label,
    attack_tex,
    dataset_label,
    fmt_num,
    is_linf,
    join_words,
    metric_is_percent,
    norm_label,
    regime_label,
    sort_attacks,
    sort_norms,
    sort_regimes,
    tex_escape,
    tex_number,
)
from .latex import claim_diff_tex, claim_stat_tex, claims_table, costs_table, verdict_tex
from .metric import headline
from .reproduction import limitations, metric_reason, reproduction_frame, reproduction_table
from .study_view import StudyView
from .tables import MissingInputError, read_optional, read_run_info, read_table
from .verdicts import FAIL, INCONCLUSIVE, MIN_SEEDS, PASS, t975

TEMPLATE = resources.TEMPLATE  # paper/report.tex.j2, shipped as package data
TEX_INSTALL = ("apt-get install latexmk texlive-latex-base texlive-latex-recommended "
               "texlive-fonts-recommended texlive-latex-extra")
UNDEFINED_RE = re.compile(r"(There were undefined references|Reference `[^']*' on page \d+ undefined|"
                          r"Citation `[^']*' on page \d+ undefined|There were undefined citations)")
WriteTable = Callable[[str, str], str]


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
    env.filters["tex"] = tex_escape
    return env


# ------------------------------------------------------------------------------------------ claims

def rule_t_example(run_info: dict[str, Any]) -> str:
    """'this run's 3 seeds, t = 4.30': the t quantile the run's seeds give (LaTeX)."""
    n = len((run_info.get("config") or {}).get("seeds") or [])
    if n < MIN_SEEDS:
        return f"this run's {n} seed{'s' if n != 1 else ''}, no interval"
    return f"this run's {n} seeds, $t = {t975(n - 1):.2f}$"


def claim_context(row: pd.Series) -> dict[str, Any]:
    """A claims row for the template: id, statement, Δ, n, verdict, the two sides and the paper's number."""
    pct = metric_is_percent(row["metric"])

    def side(key: str) -> str:
        s = claim_stat_tex(row.get(f"{key}_mean"), row.get(f"{key}_min"), row.get(f"{key}_max"), pct)
        return "" if s == "--" else s + (r" \%" if pct else "")

    return {
        "id": tex_escape(row["id"]), "text": tex_escape(row["claim"]),
        "diff": claim_diff_tex(row) + (" points" if pct and np.isfinite(float(row["mean_diff"])) else ""),
        "n": int(row["n_seeds"]) if np.isfinite(float(row["n_seeds"])) else 0,
        "verdict": verdict_tex(row["verdict"]), "raw_verdict": str(row["verdict"]),
        "note": tex_escape(row["note"]), "treatment": side("treatment"), "baseline": side("baseline"),
        "paper": tex_escape(row["paper"]) if row["paper"] else "",
    }


def expand_claims(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> list:
    """Every claim of the enabled studies, study by study in registry order."""
    enabled = enabled_studies(run_info.get("config") or {})
    return [c for m in studies if m.KEY in enabled for c in m.claims(StudyView.of(run_info, m.KEY))]


def needed_tables(studies: Sequence[ModuleType], run_info: dict[str, Any]) -> set[str]:
    """The tables (metrics, history, transfer) the enabled studies' claims read."""
    return {t for c in expand_claims(studies, run_info) for t in c.needs()}


def load_and_evaluate(studies: Sequence[ModuleType], tables_dir: str | Path) -> pd.DataFrame:
    """Read the tables the enabled studies' claims need from ``tables_dir`` and evaluate the claims.

    Raises :class:`MissingInputError` naming the file when a needed table is absent."""
    info = read_run_info(tables_dir, required=True)
    claims = expand_claims(studies, info)
    need = {t for c in claims for t in c.needs()}
    frames = {n: read_table(tables_dir, n) for n in ("metrics", "history", "transfer") if n in need}
    return evaluate(claims, frames)


# ------------------------------------------------------------------------------------------ setup

def _setup_context(info: dict[str, Any], metrics: pd.DataFrame) -> dict[str, Any]:
    cfg = info.get("config") or {}
    head = headline(info)
    cells = metrics[["dataset", "arch", "norm", "regime", "seed"]].drop_duplicates()
    datasets = []
    for name in sorted(set(metrics["dataset"])):
        d = (cfg.get("datasets") or {}).get(name) or {}
        keys = [k for k in ("kind", "method", "base", "n_train", "n_test", "image_size", "num_classes",
                            "rf_amplitude", "nrf_amplitude", "noise_std") if k in d]
        desc = tex_escape(name)
        if keys:
            desc += " (" + ", ".join(f"{tex_escape(k)} {tex_number(d[k])}" for k in keys) + ")"
        datasets.append(desc)
    archs = []
    for name in sorted(set(metrics["arch"])):
        a = (cfg.get("archs") or {}).get(name) or {}
        extra = [tex_escape(a["kind"])] if "kind" in a else []
        for k in ("widths", "blocks", "hidden"):
            if k in a:
                extra.append(f"{k} " + ", ".join(tex_number(w) for w in a[k]))
        extra += [f"{k} $\\times {fmt_num(a[k])}$" for k in ("width", "depth") if k in a and a[k] != 1]
        if a.get("activation", "relu") != "relu":
            extra.append("activation " + tex_escape(a["activation"]))
        archs.append(tex_escape(name) + (f" ({'; '.join(extra)})" if extra else ""))
    regimes = []
    for name in sort_regimes(set(metrics["regime"])):
        r = (cfg.get("regimes") or {}).get(name)
        desc = f"{tex_escape(regime_label(name))} (\\texttt{{{tex_escape(name)}}})"
        if isinstance(r, dict):
            if r.get("attack"):
                desc += ": training attack " + attack_tex(r["attack"])
                if r.get("attack_mode"):
                    desc += f", generated in {tex_escape(r['attack_mode'])} mode"
            else:
                desc += ": clean images only"
            obj = role(r)
            if obj == "ligs_reg":
                desc += f", clean loss $+\\,{fmt_num(ligs_weight(r))} \\cdot (1 - \\text{{LIGS}})$"
            elif obj not in ("standard", "adversarial"):
                desc += f", objective {tex_escape(obj)}"
                if obj == "weighted":
                    desc += f" (clean weight {tex_number(clean_weight(r))})"
            if r.get("training"):
                desc += "; training " + ", ".join(f"{tex_escape(k.replace('_', ' '))} {tex_number(v)}"
                                                  for k, v in r["training"].items())
        regimes.append(desc)
    attacks = []
    rob = metrics[metrics["metric"] == "robust_acc"]
    for att in sort_attacks(set(rob["attack"])):
        eps = sorted(set(rob[rob["attack"] == att]["eps"].dropna()))
        spec = ((cfg.get("evaluation") or {}).get("attacks") or {}).get(att) or {}
        steps = f"; {tex_number(spec['steps'])} steps" if "steps" in spec else ""
        unit = " (in 1/255)" if is_linf(att) else ""
        grid = ", ".join(fmt_num(e, 4) for e in eps)
        attacks.append(f"{tex_escape(attack_label(att))}: $\\varepsilon \\in \\{{{grid}\\}}${unit}{steps}")
    noise = sorted(set(metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()))
    tr, ev = cfg.get("training") or {}, cfg.get("evaluation") or {}
    training = [f"{label} {tex_number(tr[k])}" for k, label in (
        ("epochs", "epochs"), ("batch_size", "batch size"), ("optimizer", "optimizer"), ("lr", "learning rate"),
        ("momentum", "momentum"), ("weight_decay", "weight decay")) if k in tr]
    sch = tr.get("schedule") or {}
    if sch.get("kind") == "multistep" and sch.get("milestones"):
        epochs = join_words([tex_number(m) for m in sch["milestones"]])
        training.append(f"learning rate $\\times {fmt_num(sch.get('gamma', 0.1))}$ at epoch"
                        f"{'s' if len(sch['milestones']) > 1 else ''} {epochs}")
    hist = tr.get("history") or {}
    seeds = sorted(set(int(s) for s in cells["seed"]))
    return {
        "datasets": datasets, "archs": archs, "regimes": regimes, "attacks": attacks,
        "norms": join_words([tex_escape(norm_label(n)) for n in sort_norms(set(metrics["norm"]))]),
        "noise": ", ".join(tex_number(s) for s in noise), "training": "; ".join(training),
        "seeds": ", ".join(str(s) for s in seeds), "n_seeds": len(seeds), "n_cells": len(cells),
        "n_models": len(cells.drop(columns=["seed"]).drop_duplicates()),
        "eval_n_test": tex_number(ev["n_test"]) if "n_test" in ev else "",
        "ligs_sigma": tex_number(ev["ligs_sigma"]) if "ligs_sigma" in ev else "",
        "headline": tex_escape(attack_eps_label(head.attack, head.eps)),
        "transfer_attack": attack_tex((cfg.get("transfer") or {}).get("attack")),
        "history_attack": attack_tex(hist.get("attack")),
        "history_n_test": tex_number(hist["n_test"]) if hist.get("n_test") else "",
    }


def _abstract(claims: pd.DataFrame, setup: dict[str, Any], per_study: list[str], further: list[str],
              metrics: pd.DataFrame) -> list[str]:
    """Sentences of the abstract, each built only from numbers in the tables."""
    nrf = " and, on generated data with known features, reliance on non-robust features" if (
        metrics["metric"] == "nrf_reliance").any() else ""
    out = [f"We trained {setup['n_models']} model configurations ({setup['n_cells']} models counting "
           f"{setup['n_seeds']} seed{'s' if setup['n_seeds'] != 1 else ''}) with and without normalisation layers "
           f"and measured clean accuracy, robust accuracy under attack, local input-gradient similarity (LIGS){nrf}."]
    out += per_study
    if further:
        out.append("Of the claims of the further studies, passed: " + join_words(further) + ".")
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    k = len(claims)
    out.append(f"Of {k} claim{'s' if k != 1 else ''} from the literature checked with a rule fixed in advance, "
               f"{int(counts.get(PASS, 0))} passed, {int(counts.get(FAIL, 0))} failed and "
               f"{int(counts.get(INCONCLUSIVE, 0))} were inconclusive.")
    return out


# ------------------------------------------------------------------------------------------ render

def render(tables_dir: str | Path, figures_dir: str | Path, outdir: str | Path, studies: Sequence[ModuleType],
           claims_csv: str | Path | None = None, template: str | Path | None = None) -> Path:
    """Write OUTDIR/report.tex, OUTDIR/tables/*.tex and OUTDIR/figures/*.pdf; return the .tex path.

    ``studies``: the study registry (modules in report order); ``claims_csv``: a claims file to use instead of
    evaluating the claims afresh."""
    tables_dir, figures_dir, outdir = Path(tables_dir), Path(figures_dir), Path(outdir)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise MissingInputError(f"missing report template {template}")
    info = read_run_info(tables_dir, required=True)
    cfg = info.get("config") or {}
    enabled = enabled_studies(cfg)
    active = [m for m in studies if m.KEY in enabled]
    need = {t for m in active for t in m.TABLES}
    frames = {n: (read_table(tables_dir, n) if n in need or n == "metrics" else read_optional(tables_dir, n))
              for n in ("metrics", "history", "transfer")}
    metrics = frames["metrics"]
    if claims_csv:
        if not Path(claims_csv).is_file():
            raise MissingInputError(f"missing claims file {claims_csv} (run `python -m normrobust claims` first)")
        claims = read_claims(claims_csv)
    else:
        claims = evaluate(expand_claims(studies, info), frames)

    written: dict[str, str] = {}

    def write_table(name: str, text: str) -> str:
        rel = f"tables/{name.replace('_', '-')}.tex"
        atomic_write(outdir / rel, lambda f: f.write(text), mode="w")
        written[name] = rel
        return rel

    figs: dict[str, dict[str, Any]] = {}
    for m in studies:
        for name in m.FIGURES:
            src = figures_dir / f"{name}.pdf"
            if src.is_file():
                data = src.read_bytes()
                atomic_write(outdir / "figures" / f"{name}.pdf", lambda f, d=data: f.write(d))
                figs[name] = {"present": True, "path": f"figures/{name}.pdf", "missing": ""}
            else:
                figs[name] = {"present": False, "path": "", "missing": tex_escape(str(src))}

    setup = _setup_context(info, metrics)
    sections, per_study, further = [], [], []
    for m in active:
        view = StudyView.of(info, m.KEY)
        rows = view.rows(metrics)
        sc = claims[claims["study"] == m.KEY]
        ctx: dict[str, Any] = {
            "key": m.KEY, "tag": m.TAG, "title": m.TITLE, "label": m.TAG.lower(), "scope": view.scope_tex(),
            "dataset": tex_escape(join_words([dataset_label(cfg, d) for d in view.datasets])),
            "n_seeds": int(rows["seed"].nunique()) if len(rows) else 0, "n_cells": len(view.models),
            "figures": list(m.FIGURES), "tables": {}, "empty": rows.empty,
            "claims": [claim_context(r) for _, r in sc.iterrows()],
        }
        ctx.update(m.section(view, frames, write_table))  # also for an empty study: its intro's numbers
        sections.append(ctx)
        sentences = m.abstract(view, claims, ctx) if hasattr(m, "abstract") else None
        if sentences is not None:
            per_study += sentences
        elif len(sc):
            further.append(f"{m.TAG} ({tex_escape(m.TITLE.split(' (')[0])}) {int((sc['verdict'] == PASS).sum())} "
                           f"of {len(sc)}")
    titles = {m.KEY: f"{m.TAG}: {m.TITLE}" for m in studies}
    write_table("claims", claims_table(claims, titles=titles))
    repro = reproduction_frame(info, metrics, frames["transfer"], [p for m in studies for p in m.PUBLISHED])
    write_table("reproduction", reproduction_table(repro))
    costs = read_optional(tables_dir, "costs")
    write_table("costs", costs_table(costs))
    derived = read_optional(tables_dir, "derived")
    write_table("derived", derived_table(derived))
    aa = autoattack_frame(metrics, cfg)
    write_table("autoattack", autoattack_table(aa))
    by_key = {m.KEY: m for m in studies}

    def reason(row: pd.Series) -> str:
        m = by_key.get(row["study"])
        own = m.fail_reason(row) if m is not None and hasattr(m, "fail_reason") else None
        return own or metric_reason(str(row["metric"]))

    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    versions = info.get("versions") or {}
    inputs = [(n, tables_dir / n) for n in ("metrics.csv", "history.csv", "transfer.csv", "costs.csv",
                                            "run_info.json")]
    ctx = {
        "title": "Do normalisation layers make networks lean on non-robust features?",
        "date": tex_escape(str(info.get("created", ""))[:10]),
        "abstract": _abstract(claims, setup, per_study, further, metrics),
        "setup": setup, "sections": sections, "figs": figs, "tables": written,
        "claims": [claim_context(r) for _, r in claims.iterrows()],
        "failed": [claim_context(r) for _, r in claims[claims["verdict"] == FAIL].iterrows()],
        "inconclusive": [claim_context(r) for _, r in claims[claims["verdict"] == INCONCLUSIVE].iterrows()],
        "n_claims": len(claims), "n_pass": int(counts.get(PASS, 0)), "n_fail": int(counts.get(FAIL, 0)),
        "n_inconclusive": int(counts.get(INCONCLUSIVE, 0)),
        "rule": {"min_seeds": MIN_SEEDS, "t_example": rule_t_example(info)},
        "derived": {"n": 0 if derived is None else len(derived)}, "autoattack": autoattack_summary(aa),
        "reproduction": {
            "n_rows": len(repro), "n_ours": int(np.isfinite(repro["ours"]).sum()),
            "n_same": int((repro["match"] == "same").sum()), "n_analogue": int((repro["match"] == "analogue").sum()),
            "n_not_run": int((repro["match"] == "not run").sum()),
        },
        "limitations": limitations(info, claims, repro, setup["n_seeds"], reason,
                                   [(m.TAG, m.TITLE) for m in studies if m.KEY not in enabled]),
        "costs": _costs_context(costs),
        "provenance": {
            "config_sha": tex_escape(info.get("config_sha256", "unknown")[:16]),
            "cpu": tex_escape(info.get("cpu", "unknown")), "machine": tex_escape(info.get("machine", "unknown")),
            "commit": tex_escape(info.get("git_commit", "unknown")),
            "versions": join_words([f"{tex_escape(k)}~{tex_escape(v)}" for k, v in sorted(versions.items())]),
            "device": tex_escape(info.get("device", "unknown")), "created": tex_escape(info.get("created", "unknown")),
            "inputs": [{"name": tex_escape(n), "sha": hashlib.sha256(p.read_bytes()).hexdigest()[:12]}
                       for n, p in inputs if p.is_file()],
        },
    }
    text = jinja_env(template.parent).get_template(template.name).render(**ctx)
    out = outdir / "report.tex"
    atomic_write(out, lambda f: f.write(text), mode="w")
    log(f"report: rendered {out} ({len(written)} tables, {sum(f['present'] for f in figs.values())} figures)")
    return out


def _costs_context(costs: pd.DataFrame | None) -> dict[str, Any]:
    if costs is None or not len(costs):
        return {"present": False, "total_h": "--", "n_jobs": 0, "gpu": False}
    return {"present": True, "total_h": fmt_num(costs["wall_s"].sum() / 3600, 2), "n_jobs": len(costs),
            "gpu": bool(costs["peak_gpu_mem_mib"].notna().any())}


# ------------------------------------------------------------------------------------------- build

def build(texdir: str | Path, out: str | Path, tex: str = "report.tex", timeout: int = 600) -> int:
    """Compile TEXDIR/TEX with latexmk and copy the PDF to OUT. Returns an exit code."""
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
    data = (texdir / (Path(tex).stem + ".pdf")).read_bytes()
    atomic_write(out, lambda f: f.write(data))
    log(f"report: built {out} ({len(data) // 1024} KiB)")
    return 0


__all__ = ["build", "claim_context", "expand_claims", "load_and_evaluate", "needed_tables", "render"]
