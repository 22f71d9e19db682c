"""The report driver's render step: fill the LaTeX report from the aggregated tables and the claims file.

``render`` fills ``paper/report.tex.j2`` (jinja2 with LaTeX-safe delimiters: ``\\VAR{...}`` for values,
``\\BLOCK{...}`` for statements, ``\\#{...}`` for comments) and writes ``OUTDIR/report.tex``,
``OUTDIR/tables/*.tex`` and copies of the figures into ``OUTDIR/figures/``. Every number in the text is computed
from the CSVs (nothing typed by hand); the claims are read from ``claims.csv``, which the claims step wrote
(normrobust.analysis.claims_step): the report never evaluates them itself. It also reads the preconditions the
claims step judged (``preconditions.csv``, beside the claims file unless named; optional: a run without it says so).
Counts of evidence leave manipulation checks out (claims true by construction, listed apart), and count NOT
TESTABLE claims (a precondition did not hold) apart from PASS / FAIL / INCONCLUSIVE.

The report has one section per *enabled* study, in the order of the study registry it is given. A study's
section is its template fragment ``paper/sections/<key>.tex.j2``, filled with the shared context (key, tag,
title, scope, figures, claims, ``empty``, ...) and what the study module's ``section(view, frames, write_table)``
returns (called for an empty study too: its tables then say so, and the fragment shows only its introduction).
A study enabled but without rows for its cells says so in one line. A figure's caption is its study module's
(``FIGURES[name].caption``, converted to LaTeX); the fragments place the figure without repeating it.

The other parts of the driver: the "Setup" section and the verdict rule's numbers for "How claims are judged"
(normrobust.analysis.report_setup), and the LaTeX build (normrobust.analysis.report_build).
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
from .latex import (
    caption_tex,
    claim_diff_tex,
    claim_stat_tex,
    claims_table,
    costs_table,
    note_tex,
    preconditions_table,
    verdict_tex,
)
from .preconditions import COLUMNS as PRECONDITION_COLUMNS
from .report_setup import rule_context, setup_context
from .reproduction import limitations, metric_reason, reproduction_frame, reproduction_table
from .study_view import StudyView
from .tables import (
    MissingInputError,
    TableError,
    read_csv_checked,
    read_optional,
    read_run_info,
    read_table,
    remake_hint,
)
from .verdicts import FAIL, INCONCLUSIVE, MANIPULATION_CHECK, NOT_TESTABLE, PASS

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


#: the preconditions file's number columns (the others are text)
PRECONDITION_NUMERIC = ["level", "mean", "ci_low", "ci_high", "n_seeds"]


def read_preconditions_file(path: str | Path | None) -> pd.DataFrame | None:
    """The preconditions the claims step judged (``preconditions.csv``: a row per claim and condition, columns
    :data:`normrobust.analysis.preconditions.COLUMNS`); None when ``path`` is None or absent. Checked like the other
    tables: an empty, binary or damaged file, a missing column, a number that is not one or an unknown verdict raises
    a one-line :class:`~normrobust.analysis.tables.TableError` naming the file (and the line and column)."""
    if path is None or not Path(path).is_file():
        return None
    hint = remake_hint(path, "claims")
    table = read_csv_checked(path, "preconditions file", hint)
    missing = [c for c in PRECONDITION_COLUMNS if c not in table.frame.columns]
    if missing:
        raise TableError(f"preconditions file {path}, line {table.line_of_record(0)}: no column(s) "
                         f"{', '.join(missing)} in its header (a damaged file, or not a preconditions table); {hint}")
    df = table.numbers(PRECONDITION_NUMERIC, missing=("", "nan", "NaN"), allow_inf=True)
    for c in set(PRECONDITION_COLUMNS) - set(PRECONDITION_NUMERIC):
        df[c] = df[c].mask(df[c].isin(["nan", "NaN"]), "").astype(str)
    bad = [i for i, v in enumerate(df["verdict"]) if v not in (PASS, FAIL, INCONCLUSIVE)]
    if bad:
        raise TableError(f"preconditions file {path}, line {table.line_of_row(bad[0])}, column 'verdict': "
                         f"{df['verdict'].iloc[bad[0]]!r} is not a verdict (PASS, FAIL or INCONCLUSIVE); {hint}")
    return df.reset_index(drop=True)


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

def evidence_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The claims that count as evidence: all but the manipulation checks (claims.csv's ``kind``)."""
    return claims[claims["kind"] != MANIPULATION_CHECK] if "kind" in claims.columns else claims


def manipulation_checks(claims: pd.DataFrame) -> pd.DataFrame:
    return claims[claims["kind"] == MANIPULATION_CHECK] if "kind" in claims.columns else claims.iloc[:0]


def verdict_counts(claims: pd.DataFrame) -> dict[str, Any]:
    """Counts of the evidence (manipulation checks apart): claims, PASS, FAIL, INCONCLUSIVE, NOT TESTABLE, the
    testable ones, the decided ones (PASS or FAIL) and their share of the testable ones (%, None without any)."""
    ev = evidence_claims(claims)
    c = ev["verdict"].value_counts() if len(ev) else pd.Series(dtype=int)
    k = {"n_claims": len(ev), "n_checks": len(manipulation_checks(claims)), "n_pass": int(c.get(PASS, 0)),
         "n_fail": int(c.get(FAIL, 0)), "n_inconclusive": int(c.get(INCONCLUSIVE, 0)),
         "n_not_testable": int(c.get(NOT_TESTABLE, 0))}
    k["n_testable"] = k["n_claims"] - k["n_not_testable"]
    k["n_decided"] = k["n_pass"] + k["n_fail"]
    k["decided_pct"] = f"{100 * k['n_decided'] / k['n_testable']:.0f}" if k["n_testable"] else None
    return k


def counts_sentence(k: dict[str, Any], what: str = "checked") -> str:
    """'Of 68 claims checked (and 2 manipulation checks, not counted), 24 passed, 2 failed and 32 were inconclusive;
    10 were not testable because a precondition did not hold (Section~\\ref{sec:preconditions}); 46\\,\\% of the
    testable claims were decided (PASS or FAIL).' (LaTeX; ``k``: :func:`verdict_counts`)."""
    def were(n: int) -> str:
        return "was" if n == 1 else "were"

    n, checks = k["n_claims"], k["n_checks"]
    aside = f" (and {checks} manipulation check{'s' if checks != 1 else ''}, not counted as evidence)" if checks else ""
    if not n:
        return f"No claim was checked{aside}."
    out = (f"Of {n} claim{'s' if n != 1 else ''} {what}{aside}, {k['n_pass']} passed, {k['n_fail']} failed and "
           f"{k['n_inconclusive']} {were(k['n_inconclusive'])} inconclusive")
    nt = k["n_not_testable"]
    if nt:
        out += (f"; {nt} {were(nt)} not testable because a precondition did not hold "
                r"(Section~\ref{sec:preconditions})")
    if k["decided_pct"] is None:
        return out + "; no claim was testable."
    return out + f"; {k['decided_pct']}\\,\\% of the testable claims were decided (PASS or FAIL)."


def claim_context(row: pd.Series) -> dict[str, Any]:
    """A claims row for the template: id, statement, Δ, n, verdict, the two sides and the paper's number; whether it
    is a manipulation check; its note (why it is inconclusive, which precondition did not hold)."""
    pct = metric_is_percent(row["metric"])

    def side(key: str) -> str:
        s = claim_stat_tex(row.get(f"{key}_mean"), row.get(f"{key}_min"), row.get(f"{key}_max"), pct)
        return "" if s == "--" else s + (r" \%" if pct else "")

    return {
        "id": tex_escape(row["id"]), "text": tex_escape(row["claim"]),
        "diff": claim_diff_tex(row) + (" points" if pct and np.isfinite(float(row["mean_diff"])) else ""),
        "n": int(row["n_seeds"]) if np.isfinite(float(row["n_seeds"])) else 0,
        "verdict": verdict_tex(row["verdict"]), "raw_verdict": str(row["verdict"]),
        "note": note_tex(row["note"]), "treatment": side("treatment"), "baseline": side("baseline"),
        "paper": tex_escape(row["paper"]) if row["paper"] else "",
        "check": row.get("kind") == MANIPULATION_CHECK,
    }


def claims_context(claims: pd.DataFrame, info: dict[str, Any]) -> dict[str, Any]:
    """The template's claims; the failed, inconclusive and not testable evidence and the manipulation checks, each
    listed apart; the counts (:func:`verdict_counts`) and their sentence; the rule's numbers."""
    ev = evidence_claims(claims)

    def of(v: str) -> list[dict[str, Any]]:
        return [claim_context(r) for _, r in ev[ev["verdict"] == v].iterrows()]

    counts = verdict_counts(claims)
    return {
        "claims": [claim_context(r) for _, r in claims.iterrows()],
        "failed": of(FAIL), "inconclusive": of(INCONCLUSIVE), "not_testable": of(NOT_TESTABLE),
        "checks": [claim_context(r) for _, r in manipulation_checks(claims).iterrows()],
        **counts, "counts_sentence": counts_sentence(counts), "rule": rule_context(info),
    }


def preconditions_context(pre: pd.DataFrame | None, path: Path) -> dict[str, Any]:
    """The Preconditions section's numbers: rows, claims, distinct conditions and how many of those held (PASS),
    failed or were not shown (INCONCLUSIVE); ``present`` False (and the file's name) without the table."""
    if pre is None:
        return {"present": False, "path": tex_escape(str(path))}
    distinct = pre.drop_duplicates("precondition")
    c = distinct["verdict"].value_counts()
    k, n = len(distinct), int(pre["claim"].nunique())
    inc = int(c.get(INCONCLUSIVE, 0))
    summary = (f"Of the {k} distinct condition{'s' if k != 1 else ''} the {n} claim{'s' if n != 1 else ''} with "
               f"preconditions name, {int(c.get(PASS, 0))} held, {int(c.get(FAIL, 0))} failed and {inc} "
               f"{'was' if inc == 1 else 'were'} not shown (inconclusive).")
    return {"present": True, "path": tex_escape(str(path)), "n_rows": len(pre), "summary": summary}


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
    """(sections, the studies' own abstract sentences, 'E3 (title) k of n (j not testable)' for those without: k
    passed of its n claims of evidence)."""
    sections, per_study, further = [], [], []
    for m in active:
        view = StudyView.of(info, m.KEY)
        ctx = study_section(m, view, frames, claims, write_table)
        sections.append(ctx)
        sc = evidence_claims(claims[claims["study"] == m.KEY])
        sentences = m.abstract(view, claims, ctx) if hasattr(m, "abstract") else None
        if sentences is not None:
            per_study += sentences
        elif len(sc):
            nt = int((sc["verdict"] == NOT_TESTABLE).sum())
            further.append(f"{m.TAG} ({tex_escape(m.TITLE.split(' (')[0])}) {int((sc['verdict'] == PASS).sum())} "
                           f"of {len(sc)}" + (f" ({nt} not testable)" if nt else ""))
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
    out.append(counts_sentence(verdict_counts(claims), "from the literature checked with a rule fixed in advance"))
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
    """Write the report-wide tables (claims, preconditions, reproduction, costs, derived datasets, AutoAttack); the
    context of the sections that show them (reproduction, limitations, costs, derived, autoattack).
    ``frames["preconditions"]``: the preconditions table, or None."""
    metrics, cfg = frames["metrics"], info.get("config") or {}
    titles = {m.KEY: f"{m.TAG}: {m.TITLE}" for m in studies}
    write_table("claims", claims_table(claims, titles=titles))
    study_of = dict(zip(claims["id"].astype(str), claims["study"].astype(str)))
    write_table("preconditions", preconditions_table(frames.get("preconditions"), study_of, titles=titles))
    repro = reproduction_frame(info, metrics, frames["transfer"], [p for m in studies for p in m.PUBLISHED])
    write_table("reproduction", reproduction_table(repro))
    costs, derived = read_optional(tables_dir, "costs"), read_optional(tables_dir, "derived")
    write_table("costs", costs_table(costs))
    write_table("derived", derived_table(derived))
    aa = autoattack_frame(metrics, cfg)
    write_table("autoattack", autoattack_table(aa))
    enabled = enabled_studies(cfg)
    evidence = evidence_claims(claims)
    limits = limitations(info, evidence, repro, n_seeds, fail_reasons(studies),
                         [(m.TAG, m.TITLE) for m in studies if m.KEY not in enabled])
    nt = int((evidence["verdict"] == NOT_TESTABLE).sum())
    if nt:
        limits.append(f"{nt} claim{'s were' if nt != 1 else ' was'} not testable: a precondition of the comparison "
                      r"(a model that learned what the claim reads, a transfer source that fools itself, a derived "
                      r"dataset that carries its feature) was not shown to hold (Section~\ref{sec:preconditions}).")
    return {
        "derived": {"n": 0 if derived is None else len(derived)}, "autoattack": autoattack_summary(aa),
        "reproduction": reproduction_context(repro), "costs": costs_context(costs),
        "limitations": limits,
    }


def render(tables_dir: str | Path, figures_dir: str | Path, outdir: str | Path, studies: Sequence[ModuleType],
           claims_csv: str | Path, template: str | Path | None = None,
           preconditions_csv: str | Path | None = None) -> Path:
    """Write OUTDIR/report.tex, OUTDIR/tables/*.tex and OUTDIR/figures/*.pdf; return the .tex path.

    ``studies``: the study registry (modules in report order); ``claims_csv``: the claims file the claims step
    wrote from the same tables; ``preconditions_csv``: the preconditions table it wrote (default:
    ``preconditions.csv`` beside ``claims_csv``; absent: the report says it has none)."""
    tables_dir, figures_dir, outdir = Path(tables_dir), Path(figures_dir), Path(outdir)
    template = Path(template) if template else TEMPLATE
    if not template.is_file():
        raise MissingInputError(f"missing report template {template}")
    info = read_run_info(tables_dir, required=True)
    enabled = enabled_studies(info.get("config") or {})
    active = [m for m in studies if m.KEY in enabled]
    frames = read_frames(tables_dir, active)
    claims = read_claims_file(claims_csv)
    pre_path = Path(preconditions_csv) if preconditions_csv else Path(claims_csv).with_name("preconditions.csv")
    frames["preconditions"] = read_preconditions_file(pre_path)
    write_table = TableWriter(outdir)
    figs = copy_figures(studies, figures_dir, outdir)
    setup = setup_context(info, frames["metrics"])
    sections, per_study, further = study_sections(active, info, frames, claims, write_table)
    rest = report_tables(studies, info, frames, claims, tables_dir, setup["n_seeds"], write_table)
    ctx = {"title": TITLE, "date": tex_escape(str(info.get("created", ""))[:10]),
           "abstract": abstract(claims, setup, per_study, further, frames["metrics"]),
           "setup": setup, "sections": sections, "figs": figs, "tables": write_table.written,
           **claims_context(claims, info), **rest, "provenance": provenance_context(info, tables_dir),
           "preconditions": preconditions_context(frames["preconditions"], pre_path)}
    text = jinja_env(template.parent).get_template(template.name).render(**ctx)
    out = outdir / "report.tex"
    atomic_write(out, lambda f: f.write(text), mode="w")
    log(f"report: rendered {out} ({len(write_table.written)} tables, "
        f"{sum(f['present'] for f in figs.values())} figures)")
    return out


__all__ = ["claim_context", "render"]
