"""The report driver's render step: fill the LaTeX report from the aggregated tables and the claims file.

``render`` fills ``paper/report.tex.j2`` (jinja2 with LaTeX-safe delimiters: ``\\VAR{...}`` for values,
``\\BLOCK{...}`` for statements, ``\\#{...}`` for comments) and writes ``OUTDIR/report.tex``,
``OUTDIR/tables/*.tex`` and copies of the figures into ``OUTDIR/figures/``. Every number in the text is computed
from the CSVs (nothing typed by hand); the claims are read from ``claims.csv``, which the claims step wrote
(normrobust.analysis.claims_step): the report never evaluates them itself.

The report has one section per *enabled* study, in the order of the study registry it is given. A study's
section is its template fragment ``paper/sections/<key>.tex.j2``, filled with the shared context (key, tag,
title, scope, figures, claims, ``empty``, ...) and what the study module's ``section(view, frames, write_table)``
returns (called for an empty study too: its tables then say so, and the fragment shows only its introduction).
A study enabled but without rows for its cells says so in one line. A figure's caption is its study module's
(``FIGURES[name].caption``, converted to LaTeX); the fragments place the figure without repeating it.

The other parts of the driver: the "Setup" section (normrobust.analysis.report_setup) and the LaTeX build
(normrobust.analysis.report_build).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from .. import resources
from ..plan import enabled_studies
from ..utils import atomic_write, log
from .claims import read_claims
from .evaluation_checks import autoattack_frame, autoattack_summary, autoattack_table, derived_table
from .labels import dataset_label, fmt_num, join_words, metric_is_percent, tex_escape
from .latex import caption_tex, claim_diff_tex, claim_stat_tex, claims_table, costs_table, verdict_tex
from .report_setup import setup_context
from .reproduction import limitations, metric_reason, reproduction_frame, reproduction_table
from .study_view import StudyView
from .tables import MissingInputError, read_optional, read_run_info, read_table
from .verdicts import FAIL, INCONCLUSIVE, MIN_SEEDS, PASS, t975

TEMPLATE = resources.TEMPLATE  # paper/report.tex.j2, shipped as package data
TITLE = "Do normalisation layers make networks lean on non-robust features?"
#: the tables whose SHA-256 the provenance appendix lists
PROVENANCE_INPUTS = ("metrics.csv", "history.csv", "transfer.csv", "costs.csv", "run_info.json")


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


# ------------------------------------------------------------------------------------------ inputs

def read_frames(tables_dir: Path, active: Sequence[ModuleType]) -> dict[str, pd.DataFrame | None]:
    """metrics.csv, and history.csv / transfer.csv: required when an enabled study reads them, else optional."""
    need = {t for m in active for t in m.TABLES} | {"metrics"}
    return {n: (read_table(tables_dir, n) if n in need else read_optional(tables_dir, n))
            for n in ("metrics", "history", "transfer")}


def read_claims_file(claims_csv: str | Path) -> pd.DataFrame:
    """The claims the claims step evaluated (``claims.csv``); a missing file is a :class:`MissingInputError`."""
    if not Path(claims_csv).is_file():
        raise MissingInputError(f"missing claims file {claims_csv} (run `python -m normrobust claims` first)")
    return read_claims(claims_csv)


class TableWriter:
    """``write_table(name, tex)``: writes OUTDIR/tables/<name>.tex (``_`` as ``-``) and returns its path relative
    to OUTDIR; ``written`` maps each name to that path (the template's ``tables``)."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.written: dict[str, str] = {}

    def __call__(self, name: str, text: str) -> str:
        rel = f"tables/{name.replace('_', '-')}.tex"
        atomic_write(self.outdir / rel, lambda f: f.write(text), mode="w")
        self.written[name] = rel
        return rel


def copy_figures(studies: Sequence[ModuleType], figures_dir: Path, outdir: Path) -> dict[str, dict[str, Any]]:
    """Copy every study's figure PDFs into OUTDIR/figures/; per figure the template's entry: present, path, the
    missing file's name, and the caption (the study module's, as LaTeX)."""
    figs: dict[str, dict[str, Any]] = {}
    for m in studies:
        for name, figure in m.FIGURES.items():
            src = figures_dir / f"{name}.pdf"
            entry = {"present": False, "path": "", "missing": tex_escape(str(src)),
                     "caption": caption_tex(figure.caption)}
            if src.is_file():
                data = src.read_bytes()
                atomic_write(outdir / "figures" / f"{name}.pdf", lambda f, d=data: f.write(d))
                entry.update(present=True, path=f"figures/{name}.pdf", missing="")
            figs[name] = entry
    return figs


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


def claims_context(claims: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    """The template's claims, failed and inconclusive lists, the counts and the rule's numbers."""
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    return {
        "claims": [claim_context(r) for _, r in claims.iterrows()],
        "failed": [claim_context(r) for _, r in claims[claims["verdict"] == FAIL].iterrows()],
        "inconclusive": [claim_context(r) for _, r in claims[claims["verdict"] == INCONCLUSIVE].iterrows()],
        "n_claims": len(claims), "n_pass": int(counts.get(PASS, 0)), "n_fail": int(counts.get(FAIL, 0)),
        "n_inconclusive": int(counts.get(INCONCLUSIVE, 0)),
        "rule": {"min_seeds": MIN_SEEDS, "t_example": rule_t_example(info)},
    }


# ------------------------------------------------------------------------------------------ sections

def study_section(m: ModuleType, view: StudyView, frames: dict[str, Any], claims: pd.DataFrame,
                  write_table: Callable[[str, str], str]) -> dict[str, Any]:
    """The context of one enabled study's fragment: the shared keys, then what its ``section`` returns (called
    for an empty study too: its introduction's numbers)."""
    rows = view.rows(frames["metrics"])
    ctx: dict[str, Any] = {
        "key": m.KEY, "tag": m.TAG, "title": m.TITLE, "label": m.TAG.lower(), "scope": view.scope_tex(),
        "dataset": tex_escape(join_words([dataset_label(view.config, d) for d in view.datasets])),
        "n_seeds": int(rows["seed"].nunique()) if len(rows) else 0, "n_cells": len(view.models),
        "figures": list(m.FIGURES), "tables": {}, "empty": rows.empty,
        "claims": [claim_context(r) for _, r in claims[claims["study"] == m.KEY].iterrows()],
    }
    ctx.update(m.section(view, frames, write_table))
    return ctx


def study_sections(active: Sequence[ModuleType], info: dict[str, Any], frames: dict[str, Any],
                   claims: pd.DataFrame, write_table: Callable[[str, str], str]) -> tuple[list, list[str], list[str]]:
    """(sections, the studies' own abstract sentences, 'E3 (title) k of n' for those without)."""
    sections, per_study, further = [], [], []
    for m in active:
        view = StudyView.of(info, m.KEY)
        ctx = study_section(m, view, frames, claims, write_table)
        sections.append(ctx)
        sc = claims[claims["study"] == m.KEY]
        sentences = m.abstract(view, claims, ctx) if hasattr(m, "abstract") else None
        if sentences is not None:
            per_study += sentences
        elif len(sc):
            further.append(f"{m.TAG} ({tex_escape(m.TITLE.split(' (')[0])}) {int((sc['verdict'] == PASS).sum())} "
                           f"of {len(sc)}")
    return sections, per_study, further


def abstract(claims: pd.DataFrame, setup: dict[str, Any], per_study: list[str], further: list[str],
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


# ------------------------------------------------------------------------------------------ the rest

def fail_reasons(studies: Sequence[ModuleType]) -> Callable[[pd.Series], str]:
    """``reason(claims_row)``: why a failed claim may have failed (its study's ``fail_reason``, else the metric's)."""
    by_key = {m.KEY: m for m in studies}

    def reason(row: pd.Series) -> str:
        m = by_key.get(row["study"])
        own = m.fail_reason(row) if m is not None and hasattr(m, "fail_reason") else None
        return own or metric_reason(str(row["metric"]))

    return reason


def reproduction_context(repro: pd.DataFrame) -> dict[str, int]:
    return {"n_rows": len(repro), "n_ours": int(np.isfinite(repro["ours"]).sum()),
            "n_same": int((repro["match"] == "same").sum()), "n_analogue": int((repro["match"] == "analogue").sum()),
            "n_not_run": int((repro["match"] == "not run").sum())}


def costs_context(costs: pd.DataFrame | None) -> dict[str, Any]:
    if costs is None or not len(costs):
        return {"present": False, "total_h": "--", "n_jobs": 0, "gpu": False}
    return {"present": True, "total_h": fmt_num(costs["wall_s"].sum() / 3600, 2), "n_jobs": len(costs),
            "gpu": bool(costs["peak_gpu_mem_mib"].notna().any())}


def provenance_context(info: dict[str, Any], tables_dir: Path) -> dict[str, Any]:
    """Commit, config hash, versions, device and CPU of the run, and the SHA-256 of the tables read."""
    versions = info.get("versions") or {}
    inputs = [(n, tables_dir / n) for n in PROVENANCE_INPUTS]
    return {
        "config_sha": tex_escape(info.get("config_sha256", "unknown")[:16]),
        "cpu": tex_escape(info.get("cpu", "unknown")), "machine": tex_escape(info.get("machine", "unknown")),
        "commit": tex_escape(info.get("git_commit", "unknown")),
        "versions": join_words([f"{tex_escape(k)}~{tex_escape(v)}" for k, v in sorted(versions.items())]),
        "device": tex_escape(info.get("device", "unknown")), "created": tex_escape(info.get("created", "unknown")),
        "inputs": [{"name": tex_escape(n), "sha": hashlib.sha256(p.read_bytes()).hexdigest()[:12]}
                   for n, p in inputs if p.is_file()],
    }


def report_tables(studies: Sequence[ModuleType], info: dict[str, Any], frames: dict[str, Any], claims: pd.DataFrame,
                  tables_dir: Path, n_seeds: int, write_table: Callable[[str, str], str]) -> dict[str, Any]:
    """Write the report-wide tables (claims, reproduction, costs, derived datasets, AutoAttack); the context of
    the sections that show them (reproduction, limitations, costs, derived, autoattack)."""
    metrics, cfg = frames["metrics"], info.get("config") or {}
    write_table("claims", claims_table(claims, titles={m.KEY: f"{m.TAG}: {m.TITLE}" for m in studies}))
    repro = reproduction_frame(info, metrics, frames["transfer"], [p for m in studies for p in m.PUBLISHED])
    write_table("reproduction", reproduction_table(repro))
    costs, derived = read_optional(tables_dir, "costs"), read_optional(tables_dir, "derived")
    write_table("costs", costs_table(costs))
    write_table("derived", derived_table(derived))
    aa = autoattack_frame(metrics, cfg)
    write_table("autoattack", autoattack_table(aa))
    enabled = enabled_studies(cfg)
    return {
        "derived": {"n": 0 if derived is None else len(derived)}, "autoattack": autoattack_summary(aa),
        "reproduction": reproduction_context(repro), "costs": costs_context(costs),
        "limitations": limitations(info, claims, repro, n_seeds, fail_reasons(studies),
                                   [(m.TAG, m.TITLE) for m in studies if m.KEY not in enabled]),
    }


def render(tables_dir: str | Path, figures_dir: str | Path, outdir: str | Path, studies: Sequence[ModuleType],
           claims_csv: str | Path, template: str | Path | None = None) -> Path:
    """Write OUTDIR/report.tex, OUTDIR/tables/*.tex and OUTDIR/figures/*.pdf; return the .tex path.

    ``studies``: the study registry (modules in report order); ``claims_csv``: the claims file the claims step
    wrote from the same tables."""
    tables_dir, figures_dir, outdir = Path(tables_dir), Path(figures_dir), Path(outdir)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise MissingInputError(f"missing report template {template}")
    info = read_run_info(tables_dir, required=True)
    enabled = enabled_studies(info.get("config") or {})
    active = [m for m in studies if m.KEY in enabled]
    frames = read_frames(tables_dir, active)
    claims = read_claims_file(claims_csv)
    write_table = TableWriter(outdir)
    figs = copy_figures(studies, figures_dir, outdir)
    setup = setup_context(info, frames["metrics"])
    sections, per_study, further = study_sections(active, info, frames, claims, write_table)
    rest = report_tables(studies, info, frames, claims, tables_dir, setup["n_seeds"], write_table)
    ctx = {"title": TITLE, "date": tex_escape(str(info.get("created", ""))[:10]),
           "abstract": abstract(claims, setup, per_study, further, frames["metrics"]),
           "setup": setup, "sections": sections, "figs": figs, "tables": write_table.written,
           **claims_context(claims, info), **rest, "provenance": provenance_context(info, tables_dir)}
    text = jinja_env(template.parent).get_template(template.name).render(**ctx)
    out = outdir / "report.tex"
    atomic_write(out, lambda f: f.write(text), mode="w")
    log(f"report: rendered {out} ({len(write_table.written)} tables, "
        f"{sum(f['present'] for f in figs.values())} figures)")
    return out


__all__ = ["claim_context", "render"]
