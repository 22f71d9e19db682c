"""The report's LaTeX tables (booktabs): per-cell statistics, the claims longtable, the costs; figure captions.

Numbers are the mean ± sample standard deviation (ddof=1) over seeds; accuracies and rates in percent. A cell
with one seed shows the mean only; a missing cell shows ``--``. Cells must already be LaTeX (escaped); the
helpers escape headers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..layout import Layout
from .labels import (
    attack_eps_label,
    fmt_mean_std,
    fmt_num,
    fmt_signed,
    metric_is_percent,
    norm_label,
    order_key,
    regime_label,
    tex_escape,
)
from .metric import Metric
from .selection import MODEL_KEYS, cell_order, seed_stats, select
from .verdicts import FAIL, INCONCLUSIVE, MANIPULATION_CHECK, NOT_TESTABLE, PASS

KEY_HEADER = {"dataset": "Dataset", "arch": "Arch", "regime": "Regime", "norm": "Norm"}
KEY_FORMAT: dict[str, Callable[[Any], str]] = {"regime": regime_label, "norm": norm_label}


# ------------------------------------------------------------------------------------------ frames

def _to_latex(df: pd.DataFrame, column_format: str, group_col: str | None = None) -> str:
    """``DataFrame.to_latex`` (booktabs rules) with a ``\\midrule`` wherever ``group_col`` changes."""
    df = df.copy()
    groups = list(df[group_col]) if group_col is not None and group_col in df.columns else None
    df.columns = [tex_escape(c) if not str(c).startswith("\\") and "$" not in str(c) else str(c) for c in df.columns]
    text = df.to_latex(index=False, escape=False, column_format=column_format, na_rep="--")
    if not groups:
        return text
    lines = text.splitlines()
    start = lines.index(r"\midrule") + 1
    out = lines[:start]
    prev = None
    for i, line in enumerate(lines[start:]):
        if i < len(groups):
            if prev is not None and groups[i] != prev:
                out.append(r"\midrule")
            prev = groups[i]
        out.append(line)
    return "\n".join(out) + "\n"


def blank_repeats(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    """Show a label only where it changes (the hierarchy reads left to right)."""
    df = df.copy()
    prev: list[Any] = [None] * len(cols)
    for i in range(len(df)):
        cur = [df.iloc[i][c] for c in cols]
        for j, c in enumerate(cols):
            if cur[: j + 1] == prev[: j + 1]:
                df.iloc[i, df.columns.get_loc(c)] = ""
        prev = cur
    return df


def grouped(out: pd.DataFrame, fmt: str, group_col: str) -> str:
    """A table with a rule between groups (``group_col``, dropped from the output)."""
    groups = list(out[group_col])
    body = out.drop(columns=[group_col])
    body["_g"] = [f"g{i}" for i in pd.factorize(pd.Series(groups, dtype=str))[0]]  # never empty: stripped below
    text = _to_latex(body, fmt + "l", group_col="_g")
    lines = []
    for line in text.splitlines():  # drop the helper column again (the last one of every row)
        if line.endswith(r"\\") and " & " in line:
            cells = line[: -2].rstrip().split(" & ")
            line = " & ".join(cells[:-1]) + r" \\"
        elif line.startswith(r"\begin{tabular}"):
            line = r"\begin{tabular}{" + fmt + "}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def empty_table(message: str) -> str:
    return ("\\begin{tabular}{l}\n\\toprule\n\\emph{" + tex_escape(message) + "} \\\\\n\\bottomrule\n"
            "\\end{tabular}\n")


def simple_table(header: Sequence[str], rows: Iterable[Sequence[str]], fmt: str) -> str:
    """A plain booktabs tabular from LaTeX cells (a ``None`` row is a ``\\midrule``)."""
    lines = [r"\begin{tabular}{" + fmt + "}", r"\toprule", " & ".join(header) + r" \\", r"\midrule"]
    for r in rows:
        lines.append(r"\midrule" if r is None else " & ".join(r) + r" \\")
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", ""])


# ------------------------------------------------------------------------------------ statistics

def specs_frame(metrics: pd.DataFrame, specs: Sequence[Metric], keys: Sequence[str]) -> pd.DataFrame:
    """Long frame: ``keys`` + column (header), metric, mean, std, min, max, n, percent; one block per metric."""
    keys = list(keys)
    parts = []
    for spec in specs:
        rows = spec.rows(metrics)
        if spec.error:
            rows = rows.assign(value=1.0 - rows["value"])
        st = seed_stats(rows, keys)
        st["column"], st["metric"], st["percent"] = spec.header, spec.name, spec.percent
        parts.append(st)
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=keys + ["mean", "std", "min", "max", "n", "column", "metric", "percent"])
    return pd.concat(parts, ignore_index=True)


def stats_table(metrics: pd.DataFrame, specs: Sequence[Metric], keys: Sequence[str] = ("dataset", "arch", "regime",
                                                                                       "norm"), *,
                always: Sequence[str] = ("regime", "norm"), headers: dict[str, str] | None = None,
                formats: dict[str, Callable[[Any], str]] | None = None, extra: Callable | None = None,
                orders: dict[str, Sequence[Any]] | None = None, empty: str = "no results for this selection") -> str:
    """A table with one row per value of ``keys`` (mean ± std over seeds of each metric) and a column $n$.

    Key columns other than ``always`` appear only when they take more than one value; ``headers`` and ``formats``
    name and format the key columns; ``extra(row) -> {header: LaTeX}`` adds columns per row (e.g. a paper's
    numbers); ``orders`` fixes the row order of a key (values listed first, in that order). Rows are grouped (a
    rule between groups) by all shown keys but the last."""
    keys = list(keys)
    headers = {**KEY_HEADER, **(headers or {})}
    formats = {**KEY_FORMAT, **(formats or {})}
    long = specs_frame(metrics, specs, keys)
    if long.empty:
        return empty_table(empty)
    labels = list(dict.fromkeys(s.header for s in specs if s.header in set(long["column"])))
    long["cell"] = [fmt_mean_std(m, s, p) for m, s, p in zip(long["mean"], long["std"], long["percent"])]
    wide = long.pivot_table(index=keys, columns="column", values="cell", aggfunc="first").reset_index()
    nseeds = long.groupby(keys)["n"].max().reset_index()
    wide = cell_order(wide.merge(nseeds, on=keys, how="left"), keys)
    if orders:
        sort_cols = []
        for k in keys:
            pos = {v: i for i, v in enumerate(orders.get(k, []))}
            wide[f"_s_{k}"] = [pos.get(v, len(pos)) for v in wide[k]]
            sort_cols.append(f"_s_{k}")
        wide = wide.sort_values(sort_cols, kind="stable").drop(columns=sort_cols).reset_index(drop=True)
    for c in labels:
        if c not in wide.columns:
            wide[c] = "--"
    wide[labels] = wide[labels].fillna("--")
    show = [k for k in keys if k in always or wide[k].nunique() > 1]
    out = pd.DataFrame({headers.get(k, k): wide[k].map(lambda v, f=formats.get(k, str): tex_escape(f(v)))
                        for k in show})
    out["$n$"] = wide["n"].fillna(0).astype(int).astype(str)
    for c in labels:
        out[c] = wide[c]
    if extra is not None:
        ext = [extra({k: wide.iloc[i][k] for k in keys}) or {} for i in range(len(wide))]
        for lab in dict.fromkeys(lab for e in ext for lab in e):
            out[lab] = [e.get(lab, "--") for e in ext]
    label_cols = [headers.get(k, k) for k in show[:-1]]
    groups = ["/".join(str(wide.iloc[i][k]) for k in show[:-1]) for i in range(len(wide))]
    out = blank_repeats(out, label_cols)
    out["_group"] = groups
    fmt = "l" * len(show) + "r" * (out.shape[1] - len(show) - 1)
    return grouped(out, fmt, "_group")


def main_columns(metrics: pd.DataFrame, head: Metric) -> list[Metric]:
    """The usual columns: clean, headline robust, PGD-L2 at the largest ε, noise at the largest σ, LIGS."""
    cols = [Metric("clean_acc", label="Clean (%)"), head]
    l2 = metrics[(metrics["metric"] == "robust_acc") & (metrics["attack"] == "pgd_l2")]["eps"].dropna()
    if len(l2):
        e = float(l2.max())
        if not (head.attack == "pgd_l2" and math.isclose(e, float(head.eps))):
            cols.append(Metric("robust_acc", "pgd_l2", e, label=f"{attack_eps_label('pgd_l2', e)} (%)"))
    nz = metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()
    if len(nz):
        e = float(nz.max())
        cols.append(Metric("noise_acc", None, e, label=f"Noise σ={fmt_num(e)} (%)"))
    cols.append(Metric("ligs", label="LIGS"))
    return cols


def main_table(metrics: pd.DataFrame, head: Metric, cells: Iterable[Sequence[str]] | None = None,
               columns: Sequence[Metric] | None = None) -> str:
    """One row per (dataset, arch, regime, norm) of ``cells``: :func:`main_columns` (or ``columns``), mean ± std."""
    m = select(metrics, cells)
    return stats_table(m, columns if columns is not None else main_columns(m, head), ("dataset", "arch", "regime",
                                                                                      "norm"))


# ----------------------------------------------------------------------------------------- captions

_CAPTION_PARTS = re.compile(r"(\$[^$]+\$|\*\*.+?\*\*)")


def caption_tex(text: str) -> str:
    """A figure's caption (a study's ``FIGURES[name].caption``, written for Snakemake's HTML report) as LaTeX:
    ``**x**`` becomes ``\\textbf{x}``, ``$...$`` math is kept as it is, everything else is escaped."""
    out = []
    for part in _CAPTION_PARTS.split(str(text)):
        if len(part) > 2 and part.startswith("$") and part.endswith("$"):
            out.append(part)
        elif len(part) > 4 and part.startswith("**") and part.endswith("**"):
            out.append(rf"\textbf{{{caption_tex(part[2:-2])}}}")
        else:
            out.append(tex_escape(part))
    return "".join(out)


# ----------------------------------------------------------------------------------------- claims

#: each verdict's colour (defined in the template's preamble)
VERDICT_COLOUR = {PASS: "passgreen", FAIL: "failred", INCONCLUSIVE: "inconcgray", NOT_TESTABLE: "nottestblue"}
#: how the claims table marks a manipulation check (true by construction of its regime or data: not evidence)
CHECK_MARK = r"\emph{(manipulation check: true by construction, not evidence)}"


def note_tex(text: Any) -> str:
    """Escaped text that may break after a slash (a note names cells as dataset/arch/norm/regime, too long for a
    line's end otherwise)."""
    return tex_escape(text).replace("/", r"/\allowbreak{}")


def verdict_tex(verdict: str) -> str:
    v = str(verdict)
    colour = VERDICT_COLOUR.get(v)
    return rf"\textcolor{{{colour}}}{{\textbf{{{tex_escape(v)}}}}}" if colour else tex_escape(v)


def claim_stat_tex(mean: Any, lo: Any, hi: Any, pct: bool, signed: bool = False) -> str:
    """``$85.3$ [$80.1$, $90.2$]`` (×100 when ``pct``); ``--`` when the mean is missing."""
    def f(x: Any) -> str:
        return fmt_signed(float(x), pct) if signed else fmt_mean_std(float(x), None, pct)

    try:
        m = float(mean)
    except (TypeError, ValueError):
        return "--"
    if not np.isfinite(m):
        return "--"
    s = f(m)
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return s
    if np.isfinite(lo) and np.isfinite(hi):
        s += f" [{f(lo)}, {f(hi)}]"
    return s


def claim_diff_tex(row: pd.Series | dict[str, Any]) -> str:
    r"""Δ's mean and 95 % interval, ``$-12.3$ [$-14.0$, $-10.6$]`` (points for accuracy-type metrics); an unbounded
    interval is shown as ``[$-\infty$, $\infty$]``."""
    pct = metric_is_percent(row["metric"])
    s = claim_stat_tex(row.get("mean_diff"), row.get("ci_low"), row.get("ci_high"), pct, signed=True)
    lo, hi = (float(row.get(k, np.nan)) for k in ("ci_low", "ci_high"))
    if s != "--" and (np.isinf(lo) or np.isinf(hi)):
        s += r" [$-\infty$, $\infty$]"
    return s


def claim_measured_tex(row: pd.Series | dict[str, Any]) -> str:
    """Treatment and baseline (mean [min, max] over seeds) and Δ (mean [95 % interval]) of one claims row, on
    separate lines."""
    pct = metric_is_percent(row["metric"])
    parts = []
    for key in ("treatment", "baseline"):
        s = claim_stat_tex(row.get(f"{key}_mean"), row.get(f"{key}_min"), row.get(f"{key}_max"), pct)
        if s != "--":
            parts.append(f"{key} {s}")
    d = claim_diff_tex(row)
    if d != "--":
        parts.append(f"$\\Delta$ {d}" + (" pts" if pct else ""))
    n = row.get("n_seeds")
    if n is not None and np.isfinite(float(n)):
        parts.append(f"$n = {int(n)}$")
    return r"\newline ".join(parts) if parts else "--"


def _longtable_head(widths: Sequence[float], header: str, caption: str | None) -> list[str]:
    """The opening lines of a ``longtable`` of ragged-right columns (``widths``: fractions of the line width), with
    its caption row (``caption``: LaTeX, or None), header and the rows repeated on every page."""
    p = r">{\raggedright\arraybackslash}p"
    k = len(widths)
    head = [r"\begin{longtable}{@{}" + "".join(p + f"{{{w:g}\\linewidth}}" for w in widths) + "@{}}"]
    if caption:
        head.append(caption + r" \\")
    cols = header + r" \\"
    more = r"\emph{(continued on the next page)}"
    return head + [r"\toprule", cols, r"\midrule", r"\endfirsthead",
                   rf"\multicolumn{{{k}}}{{@{{}}l}}{{\emph{{(continued)}}}} \\", r"\toprule", cols, r"\midrule",
                   r"\endhead", r"\midrule", rf"\multicolumn{{{k}}}{{r@{{}}}}{{{more}}} \\", r"\endfoot",
                   r"\bottomrule", r"\endlastfoot"]


def _study_row(lines: list[str], rule: bool, title: str, k: int) -> None:
    """Append a study's header row (bold ``title`` across ``k`` columns), after a rule unless it is the first."""
    if rule:
        lines.append(r"\midrule")
    lines.append(rf"\multicolumn{{{k}}}{{@{{}}l}}{{\textbf{{{tex_escape(title)}}}}} \\* ")


def claims_table(claims: pd.DataFrame, caption: str | None = r"\nrltcaption",
                 titles: dict[str, str] | None = None) -> str:
    """A ``longtable`` (breaks across pages): per claim its verdict, id and statement, the verdict rule, the
    measured numbers (treatment, baseline and Δ: mean [min, max] over seeds; n seeds) and the paper's number.
    A header row per study (``titles``: study → text). Δ is shown with the 95 % interval its verdict is read from;
    a manipulation check is marked (:data:`CHECK_MARK`), and a NOT TESTABLE claim shows its note (the precondition
    that did not hold).

    ``caption`` is LaTeX placed as the longtable's first row (default: the template's ``\\nrltcaption`` macro,
    which holds the caption and label); None for no caption row."""
    cols = (r"Verdict, claim & Rule (fixed before the run) & Measured: mean [min, max]; $\Delta$: mean [95\,\% "
            r"interval] & Paper")
    head = _longtable_head((0.28, 0.32, 0.22, 0.12), cols, caption)
    if claims is None or claims.empty:
        return "\n".join(head + [r"\multicolumn{4}{@{}l}{\emph{no claims}} \\", r"\end{longtable}", ""])
    lines = list(head)
    prev = None
    for _, r in claims.iterrows():
        if r["study"] != prev:
            _study_row(lines, prev is not None, (titles or {}).get(r["study"], r["study"]), 4)
            prev = r["study"]
        claim = rf"{verdict_tex(r['verdict'])} \texttt{{{tex_escape(r['id'])}}}"
        if r.get("kind") == MANIPULATION_CHECK:
            claim += r"\newline " + CHECK_MARK
        claim += r"\newline " + tex_escape(r["claim"])
        if r["verdict"] == NOT_TESTABLE and r.get("note"):
            claim += r"\newline \emph{" + note_tex(r["note"]) + "}"
        paper = tex_escape(r["paper"]) if r["paper"] else "--"
        lines.append(" & ".join([claim, tex_escape(r["rule"]), claim_measured_tex(r), paper]) + r" \\")
    lines += [r"\end{longtable}", ""]
    return "\n".join(lines)

def precondition_measured_tex(row: pd.Series | dict[str, Any]) -> str:
    """A preconditions row's measurement: ``$56.7$ [$45.1$, $68.3$]\\,\\% vs $30.0$\\,\\%; $n = 2$`` (mean [95 %
    interval] against its level; accuracies and rates in %); what was missing when it was not measured."""
    pct = metric_is_percent(row["metric"])
    unit = r"\,\%" if pct else ""
    try:
        level = fmt_mean_std(float(row["level"]), None, pct) + unit
    except (TypeError, ValueError):
        level = "--"
    s = claim_stat_tex(row.get("mean"), row.get("ci_low"), row.get("ci_high"), pct)
    if s == "--":
        note = str(row.get("note") or "")
        return f"not measured{': ' + note_tex(note) if note else ''} (level {level})"
    s += f"{unit} vs {level}"
    n = row.get("n_seeds")
    if n is not None and np.isfinite(float(n)):
        s += f"; $n = {int(n)}$"
    return s


def _breakable_id(cid: Any) -> str:
    """A claim id in typewriter type that may break after its hyphens (ids are longer than a narrow column)."""
    return r"\texttt{" + tex_escape(cid).replace("-", r"-\allowbreak{}") + "}"


def preconditions_table(pre: pd.DataFrame | None, study_of: dict[str, str], caption: str | None = r"\nrltcaption",
                        titles: dict[str, str] | None = None) -> str:
    """A ``longtable`` of the preconditions (a row per claim and condition, as ``preconditions.csv`` has them): the
    claim's id (once per claim), the condition in words, its measurement against its level
    (:func:`precondition_measured_tex`) and its verdict (PASS: it holds). Grouped by study: ``study_of`` maps a claim
    id to its study (claims.csv's ``study``), in the order the studies are to appear; rows of a claim not in it come
    last. ``titles``: study → header text."""
    head = _longtable_head((0.15, 0.34, 0.28, 0.18), r"Claim & Condition & Measured: mean [95\,\% interval] vs level & "
                           "Verdict", caption)
    if pre is None or pre.empty:
        return "\n".join(head + [r"\multicolumn{4}{@{}l}{\emph{no preconditions}} \\", r"\end{longtable}", ""])
    order = {s: i for i, s in enumerate(dict.fromkeys(study_of.values()))}
    study = pre["claim"].map(lambda c: study_of.get(str(c), ""))
    rank = study.map(lambda s: order.get(s, len(order)))
    rows = pre.assign(_study=study, _rank=rank).sort_values("_rank", kind="stable")
    lines = list(head)
    prev_study, prev_claim = None, None
    for _, r in rows.iterrows():
        if r["_study"] != prev_study:
            title = (titles or {}).get(r["_study"], r["_study"]) or "claims not in the claims file"
            _study_row(lines, prev_study is not None, title, 4)
            prev_study, prev_claim = r["_study"], None
        cid = "" if r["claim"] == prev_claim else _breakable_id(r["claim"])
        prev_claim = r["claim"]
        v = str(r["verdict"])
        verdict = verdict_tex(v) + (" (holds)" if v == PASS else "")
        lines.append(" & ".join([cid, note_tex(r["precondition"]), precondition_measured_tex(r), verdict]) + r" \\")
    lines += [r"\end{longtable}", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ costs

COST_RULE_ORDER = ["prepare_data", "derive_data", "train", "evaluate", "transfer"]


def costs_table(costs: pd.DataFrame | None) -> str:
    """Per-rule costs from costs.csv (Snakemake benchmark files + the jobs' own GPU memory)."""
    if costs is None or not len(costs):
        return empty_table(f"no benchmark records ({Layout().table('costs')} is missing or empty)")
    g = costs.groupby("rule")
    df = pd.DataFrame({"jobs": g.size(), "total": g["wall_s"].sum() / 60, "mean": g["wall_s"].mean(),
                       "max": g["wall_s"].max(), "rss": g["max_rss_mib"].max(),
                       "gpu": g["peak_gpu_mem_mib"].max()})
    df = df.loc[sorted(df.index, key=order_key(COST_RULE_ORDER))]

    def f(x: float, d: int = 1) -> str:
        return f"{x:,.{d}f}" if pd.notna(x) and np.isfinite(x) else "--"

    lines = [r"\begin{tabular}{lrrrrrr}", r"\toprule",
             r"Rule & Jobs & Total wall (min) & Mean (s) & Max (s) & Peak RSS (MiB) & Peak GPU mem.\ (MiB) \\",
             r"\midrule"]
    for rule, r in df.iterrows():
        lines.append(f"\\texttt{{{tex_escape(rule)}}} & {int(r['jobs'])} & {f(r['total'])} & {f(r['mean'])} & "
                     f"{f(r['max'])} & {f(r['rss'], 0)} & {f(r['gpu'], 0)} \\\\")
    lines += [r"\midrule", f"all & {int(df['jobs'].sum())} & {f(df['total'].sum())} & & & & \\\\",
              r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)


__all__ = ["MODEL_KEYS", "blank_repeats", "caption_tex", "claims_table", "costs_table", "empty_table", "grouped",
           "main_columns", "main_table", "preconditions_table", "simple_table", "specs_frame", "stats_table"]
