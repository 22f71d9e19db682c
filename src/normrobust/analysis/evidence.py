"""The evidence page (``docs/evidence.md``): finished runs' tables as one markdown page a reader opens without running
anything.

Per run, in the order given: its provenance (run_info.json), a count of its verdicts (claims.csv), the claims table,
and the papers' published numbers beside ours (:func:`normrobust.analysis.reproduction.reproduction_frame`) with the
*direction* of each BN / no-norm pair. Everything on the page comes from the tables; numbers have fixed decimals and
rows keep the tables' order (claims.csv's; the studies' ``PUBLISHED``), so the page is byte-identical when remade
from the same tables. The command is :mod:`normrobust.evidence`.

Verdicts: PASS, FAIL, INCONCLUSIVE and NOT TESTABLE (a claim whose precondition does not hold), each counted apart.
A claims.csv column ``kind`` may mark manipulation checks (``manipulation check``): they are listed in a table of their
own and never counted as evidence. The share decided is (PASS + FAIL) over the testable claims (neither NOT TESTABLE
nor manipulation checks).

Direction: published entries that differ only in their norm (equal source, setting, metric, role, attack, ε, derived
dataset method and target role; norms ``bn`` and ``none``) form a pair; the paper's BN − no-norm difference is compared
with ours: "agrees" (same sign), "disagrees", or "–" when either of ours is not run, ours come from different cells
(dataset, architecture or regime), or the paper's difference is 0.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .claims import read_claims
from .labels import fmt_num, metric_is_percent
from .reproduction import Published, reproduction_frame
from .tables import MissingInputError, read_optional, read_run_info, read_table
from .verdicts import FAIL, INCONCLUSIVE, PASS

#: the fourth verdict (normrobust.analysis.preconditions): a claim whose comparison has no meaning on this run
NOT_TESTABLE = "NOT TESTABLE"
VERDICT_ORDER = (PASS, FAIL, INCONCLUSIVE, NOT_TESTABLE)
#: claims.csv's optional ``kind`` column: rows of this kind check the set-up, they are no evidence about a claim
MANIPULATION = "manipulation check"
#: the verdicts whose row shows its note
NOTED = (INCONCLUSIVE, NOT_TESTABLE)
AGREES, DISAGREES, UNDECIDED = "agrees", "disagrees", "–"
#: what a BN / no-norm pair of published entries shares (everything but the norm and the wording)
PAIR_FIELDS = ("source", "setting", "metric", "role", "attack", "eps", "dataset_method", "target_role")
PAIR_NORMS = ("bn", "none")
MATCH_TEXT = {"same": "same setting", "analogue": "analogue", "not run": "not run"}
TITLE = "Evidence"


@dataclass(frozen=True)
class Run:
    """One finished run as the page shows it: its name and tables directory (as given), run_info.json, claims.csv
    and the published numbers beside ours."""

    name: str
    tables: str
    info: dict[str, Any]
    claims: pd.DataFrame
    repro: pd.DataFrame
    published: tuple[Published, ...]


def load_run(name: str, tables: str, published: Sequence[Published]) -> Run:
    """Read run ``name``'s tables (``tables``: a finished run's tables directory). A missing run_info.json,
    claims.csv or metrics.csv raises :class:`MissingInputError` naming the file; a damaged one a one-line
    TableError."""
    info = read_run_info(tables)
    path = Path(tables) / "claims.csv"
    if not path.is_file():
        raise MissingInputError(f"missing claims file {path} of run {name!r} (written by the claims step: "
                                f"python -m normrobust claims --tables {tables})")
    claims = read_claims(path)
    metrics = read_table(tables, "metrics")
    repro = reproduction_frame(info, metrics, read_optional(tables, "transfer"), published)
    return Run(name, str(tables), info, claims, repro, tuple(published))


def command_line(runs: Sequence[tuple[str, str]], out: str) -> str:
    """The command that makes the page, with the run names, tables paths and output as given."""
    args = ["python", "-m", "normrobust", "evidence"]
    for name, tables in runs:
        args += ["--run", f"{name}={tables}"]
    return shlex.join(args + ["--out", str(out)])


def page(runs: Sequence[Run], command: str) -> str:
    """The whole page (markdown, ending in one newline)."""
    names = ", ".join(f"`{r.name}`" for r in runs)
    lines = [f"# {TITLE}", "",
             f"This page gives the evidence of {len(runs)} finished run{'s' if len(runs) != 1 else ''} ({names}): "
             "for each, where its tables came from, the verdict of every claim with its 95 % interval, and the "
             "papers' published numbers beside ours. It is generated from the runs' aggregated tables only "
             "(run_info.json, claims.csv, metrics.csv, transfer.csv), nothing typed by hand, and the same tables give "
             f"the same page byte for byte; do not edit it, regenerate it with `{command}`.", ""]
    for r in runs:
        lines += run_section(r)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines) + "\n"


def run_section(run: Run) -> list[str]:
    lines = [f"## Run `{run.name}`", "", f"Tables: `{run.tables}`", "", *provenance(run.info), ""]
    claims = run.claims
    manip = manipulation_mask(claims)
    lines += [verdict_line(claims), "", "### Claims", ""]
    lines += claims_table(claims[~manip]) if (~manip).any() else ["No claims in claims.csv.", ""]
    if manip.any():
        lines += ["### Manipulation checks (not counted as evidence)", "", *claims_table(claims[manip])]
    lines += ["### Published vs ours", "", *published_table(run.repro, run.published)]
    return lines


# ------------------------------------------------------------------------------------------- provenance

def studies_run(config: dict[str, Any]) -> list[str]:
    """The studies the config runs: its ``run``, else every ``studies`` key."""
    run = config.get("run")
    return [str(s) for s in run] if run is not None else [str(k) for k in (config.get("studies") or {})]


def provenance(info: dict[str, Any]) -> list[str]:
    """A bullet list: commit, config hash, creation time, device, seeds, datasets (name and kind), studies."""
    cfg = info.get("config") or {}
    datasets = cfg.get("datasets") or {}
    data = ", ".join(f"{name} ({(d or {}).get('kind', '?') if isinstance(d, dict) else '?'})"
                     for name, d in datasets.items())
    seeds = cfg.get("seeds")
    seeds = ", ".join(str(s) for s in seeds) if isinstance(seeds, list) else str(seeds if seeds is not None else "?")
    return [f"- git commit: `{info.get('git_commit', 'unknown')}`",
            f"- config SHA-256: `{str(info.get('config_sha256', 'unknown'))[:12]}`",
            f"- tables created: {info.get('created', 'unknown')}",
            f"- device: {info.get('device', 'unknown')}",
            f"- seeds: {seeds}",
            f"- datasets: {data or 'none'}",
            f"- studies run: {', '.join(studies_run(cfg)) or 'none'}"]


# ---------------------------------------------------------------------------------------------- claims

def manipulation_mask(claims: pd.DataFrame) -> pd.Series:
    """True for the rows claims.csv's ``kind`` column marks as manipulation checks (all False without it)."""
    if "kind" not in claims.columns:
        return pd.Series(False, index=claims.index)
    return claims["kind"].fillna("").astype(str).str.strip().str.lower() == MANIPULATION


def verdict_counts(claims: pd.DataFrame) -> dict[str, int]:
    """Verdict → number of claims that are not manipulation checks: the four verdicts, then any other in name
    order."""
    v = claims.loc[~manipulation_mask(claims), "verdict"].astype(str).str.strip()
    counts = {k: int((v == k).sum()) for k in VERDICT_ORDER}
    counts.update({k: int((v == k).sum()) for k in sorted(set(v) - set(VERDICT_ORDER))})
    return counts


def verdict_line(claims: pd.DataFrame) -> str:
    """'**Verdicts:** PASS 2 · FAIL 3 · ...; decided: 5 of 68 testable claims (7.4 %)'."""
    counts = verdict_counts(claims)
    total = sum(counts.values())
    testable = total - counts[NOT_TESTABLE]
    decided = counts[PASS] + counts[FAIL]
    share = (f"{decided} of {testable} testable claims ({100 * decided / testable:.1f} %)" if testable
             else "no testable claim")
    n_manip = int(manipulation_mask(claims).sum())
    manip = f"; {n_manip} manipulation check{'s' if n_manip != 1 else ''} listed apart" if n_manip else ""
    return (f"**Verdicts** ({total} claim{'s' if total != 1 else ''}{manip}): "
            + " · ".join(f"{k} {n}" for k, n in counts.items()) + f"; decided (PASS or FAIL): {share}.")


def signed(x: float, digits: int) -> str:
    """A signed number with fixed decimals ('+1.5', '-0.020', '0.0'); 'n/a' for NaN, '+inf' / '-inf'."""
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "+inf" if x > 0 else "-inf"
    if round(x, digits) == 0:
        return f"{0:.{digits}f}"
    return f"{x:+.{digits}f}"


def delta_text(row: pd.Series) -> str:
    """Δ mean and its 95 % interval: percentage points with one decimal for accuracies and rates, else three
    decimals."""
    pct = metric_is_percent(str(row.get("metric", "")))
    scale, digits = (100.0, 1) if pct else (1.0, 3)

    def f(col: str) -> str:
        return signed(float(row[col]) * scale, digits)

    if math.isnan(float(row["mean_diff"])):
        return "n/a"
    return f"{f('mean_diff')}{' pp' if pct else ''} [{f('ci_low')}, {f('ci_high')}]"


def cell_text(text: Any) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("\\", "\\\\").replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> list[str]:
    """A markdown table (columns in ``right`` right-aligned) and a blank line."""
    align = ["---:" if i in right else "---" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(cell_text(c) for c in r) + " |" for r in rows]
    return out + [""]


def claims_table(claims: pd.DataFrame) -> list[str]:
    """One row per claims.csv row, in its order: id, claim, Δ [95 % CI], n seeds, verdict, note (for INCONCLUSIVE
    and NOT TESTABLE)."""
    rows = []
    for _, r in claims.iterrows():
        verdict = str(r["verdict"]).strip()
        n = float(r["n_seeds"])
        rows.append([r["id"], r["claim"], delta_text(r), str(int(n)) if np.isfinite(n) else "n/a", verdict,
                     r["note"] if verdict in NOTED else ""])
    return table(["id", "claim", "Δ mean [95 % CI]", "n seeds", "verdict", "note"], rows, right=(2, 3)) + [
        "Δ: the claim's difference (mean over seeds) and the 95 % interval its verdict is read from; accuracies and "
        "rates in percentage points (pp), other metrics in their own units.", ""]


# ------------------------------------------------------------------------------------------- published

def pair_key(p: Published) -> tuple:
    return tuple(getattr(p, f) for f in PAIR_FIELDS)


def pairs(published: Sequence[Published]) -> dict[int, int]:
    """Index → index of its BN / no-norm partner (both ways), first entries first where a key repeats."""
    first: dict[tuple, dict[str, int]] = {}
    for i, p in enumerate(published):
        if p.norm in PAIR_NORMS:
            first.setdefault(pair_key(p), {}).setdefault(p.norm, i)
    out = {}
    for by_norm in first.values():
        if len(by_norm) == 2:
            bn, none = (by_norm[n] for n in PAIR_NORMS)
            out[bn], out[none] = none, bn
    return out


def direction(repro: pd.DataFrame, published: Sequence[Published], bn: int, none: int) -> str:
    """Whether our BN − no-norm difference has the sign of the paper's."""
    b, n = repro.iloc[bn], repro.iloc[none]
    paper = published[bn].value - published[none].value
    if (not (np.isfinite(b["ours"]) and np.isfinite(n["ours"])) or b["ours_cell"] != n["ours_cell"]
            or paper == 0):
        return UNDECIDED
    return AGREES if np.sign(b["ours"] - n["ours"]) == np.sign(paper) else DISAGREES


def directions(repro: pd.DataFrame, published: Sequence[Published]) -> list[str]:
    """Per published row: agrees / disagrees / – for a BN / no-norm pair, '' for an entry without a partner."""
    if len(repro) != len(published) or list(repro["norm"]) != [p.norm for p in published]:
        raise ValueError("the reproduction frame does not match the published entries row by row")
    partner = pairs(published)
    out = []
    for i, p in enumerate(published):
        if i not in partner:
            out.append("")
            continue
        bn, none = (i, partner[i]) if p.norm == "bn" else (partner[i], i)
        out.append(direction(repro, published, bn, none))
    return out


def decimals(value: float, percent: bool) -> int:
    """Decimals of ours: a percentage with as many as the published number shows (one or two), else three."""
    if not percent:
        return 3
    text = fmt_num(value, 4)
    return min(max(len(text.split(".")[1]) if "." in text else 0, 1), 2)


def ours_text(r: pd.Series) -> str:
    """'96.0 ± 1.4 (n = 2)', '96.0 (n = 1)' or 'not run'."""
    if not np.isfinite(r["ours"]):
        return "not run"
    d = decimals(r["published"], bool(r["percent"]))
    std = f" ± {r['ours_std']:.{d}f}" if np.isfinite(r["ours_std"]) else ""
    return f"{r['ours']:.{d}f}{std} (n = {int(r['n'])})"


def published_table(repro: pd.DataFrame, published: Sequence[Published]) -> list[str]:
    """Every published number (in the studies' order) beside ours, with the match and the pair's direction."""
    dirs = directions(repro, published)
    rows = [[r["source"], r["setting"], r["quantity"], fmt_num(r["published"], 4), ours_text(r),
             MATCH_TEXT.get(r["match"], r["match"]), r["ours_setting"], d]
            for (_, r), d in zip(repro.iterrows(), dirs)]
    n_pairs = sum(1 for d in dirs if d) // 2
    count = {k: sum(1 for d in dirs if d == k) // 2 for k in (AGREES, DISAGREES, UNDECIDED)}
    return table(["source", "setting", "quantity", "published", "ours (mean ± std, n seeds)", "match", "our cells",
                  "direction"], rows, right=(3, 4)) + [
        f"Direction: of {n_pairs} BN / no-norm pair{'s' if n_pairs != 1 else ''} of published numbers, "
        f"{count[AGREES]} agree{'s' if count[AGREES] == 1 else ''} with the paper's sign of BN − no norm, "
        f"{count[DISAGREES]} disagree{'s' if count[DISAGREES] == 1 else ''} and {count[UNDECIDED]} cannot be "
        "compared (–: either of ours not run, ours from different cells, or no difference in the paper); blank: the "
        "paper gives no BN / no-norm pair for that number. Published numbers as the paper prints them (in percent "
        "for accuracies, error rates and confidences; (fig): read off a figure, ±2 points); match: same setting, "
        "analogue (other data or a smaller model: only the direction compares) or not run (our cells then name the "
        "preset that runs it).", ""]
