"""Preconditions: what must hold for a claim's comparison to mean anything, judged by the claims' own interval rule.

A study attaches preconditions to its comparative claims (``Claim.requires``). Each precondition is measured on the
tables and judged by the verdict rule (:mod:`normrobust.analysis.verdicts`): it *holds* only when it PASSes. A claim
one of whose preconditions does not hold (FAIL, or INCONCLUSIVE: not shown to hold) gets the verdict
:data:`NOT_TESTABLE`, with the condition named in its note; it never counts as PASS or FAIL. The kinds:

* :func:`learned`: a model learned what the claim reads: its accuracy on that set is above chance by a margin
  (a :class:`~normrobust.analysis.claims.Level` claim on the model's own seeds and test images);
* :func:`white_box`: a transfer source fools itself: its white-box success at the transfer attack, on the images the
  transfer is measured on, is at least a level (transfer.csv's ``white_box_rate``);
* :func:`carries`: a derived dataset carries its intended feature on at least a share of its images, by the
  generator's ideal readers (derived.csv's ``intended_rate``; one measurement over its ``n`` images, judged by its
  binomial 95 % interval);
* :func:`known_features`: the data's robust and non-robust features are known (the generated data only);
* :func:`room`: a directional claim's baseline leaves room for the change (not at the ceiling or floor of a fraction);
* :func:`any_of`: one of several preconditions holds (E4: the no-norm model follows one of the two features).

The claims step (:mod:`normrobust.analysis.claims_step`) judges every precondition once, marks the claims, and writes
the preconditions table the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..data import dataset_num_classes
from ..sampling import rate_se
from .claims import Claim, Dominance, Level, Measured, Pair, Rank, Trajectory, cell_text, evaluate, no_data, pair
from .labels import fmt_num, has_ground_truth, metric_is_percent
from .metric import Metric
from .selection import select
from .verdicts import FAIL, INCONCLUSIVE, NOT_TESTABLE, PASS, Z975

#: a model that learned what a claim reads scores at least this far above chance (1/K) on it: 20 points (30 % with 10
#: classes). On the generated data every feature read alone gives its ideal reader well over 50 %, and a model that
#: follows any feature of its data clears 30 % by far; one below it follows none, and comparing it says nothing
LEARNED_MARGIN = 0.2
#: a directional claim on a fraction (an accuracy, a rate, an error) needs room to move: its baseline below 1 − ROOM
#: for an increase, above ROOM for a decrease. One point, the smallest change the studies' "keep" claims call a
#: change (TOL_KEEP); a baseline at the ceiling (a model scoring 100 % on every image and seed) makes an increase
#: impossible to show, and the claim INCONCLUSIVE by construction, whatever the treatment does
ROOM = 0.01
COLUMNS = ["claim", "precondition", "metric", "level", "mean", "ci_low", "ci_high", "n_seeds", "verdict", "note"]


@dataclass(frozen=True)
class Judged:
    """A precondition's measurement: mean and 95 % interval of the quantity it reads, and its verdict."""

    verdict: str
    mean: float = math.nan
    lo: float = math.nan
    hi: float = math.nan
    n: int = 0
    note: str = ""

    @property
    def holds(self) -> bool:
        return self.verdict == PASS


@dataclass(frozen=True, kw_only=True)
class Precondition:
    """One condition: its words (``text``), the quantity it reads (``metric``, ``level``) and how it is judged."""

    text: str
    metric: str
    level: float
    judge: Callable[[dict], Judged] = field(compare=False, hash=False, repr=False)
    key: tuple = ()
    tables: tuple[str, ...] = ("metrics", "images")  # what it reads

    def describe(self, j: Judged) -> str:
        """'BN/resnet learned ... (FAIL: 0.12 [0.08, 0.16] vs 0.2)'."""
        if not math.isfinite(j.mean):
            return f"{self.text} ({j.verdict}: {j.note or 'not measured'})"
        pct = metric_is_percent(self.metric)
        k = 100 if pct else 1
        unit = "%" if pct else ""
        return (f"{self.text} ({j.verdict}: {fmt_num(j.mean * k, 3)}{unit} [{fmt_num(j.lo * k, 3)}, "
                f"{fmt_num(j.hi * k, 3)}] vs {fmt_num(self.level * k, 3)}{unit})")


def _judged_row(row: pd.Series, level: float) -> Judged:
    mean, lo, hi = (float(row[k]) + level for k in ("mean_diff", "ci_low", "ci_high"))
    return Judged(str(row["verdict"]), mean, lo, hi, int(row["n_seeds"]), str(row["note"]))


def learned(study: str, c: dict[str, Any], metric: Metric, chance: float, margin: float,
            what: str = "") -> Precondition:
    """The model of cell ``c`` (dataset, arch, norm, regime) learned what a claim reads: ``metric`` (an accuracy)
    above ``chance + margin``, judged over its seeds and test images (it must PASS)."""
    level_ = chance + margin
    probe = Level(id="_", study=study, text="_", metric=metric.key, direction="increase", of=metric, cell=c,
                  threshold=level_)

    def judge(frames: dict) -> Judged:
        return _judged_row(evaluate([probe], frames).iloc[0], level_)

    text = (f"{cell_text(c)} learned {what or metric.text}: above chance ({fmt_num(chance * 100)}%) by "
            f"{fmt_num(margin * 100)} points")
    return Precondition(text=text, metric=metric.key, level=level_, judge=judge,
                        key=("learned", tuple(sorted(c.items())), metric.key, level_))


def room(study: str, c: dict[str, Any], metric: Metric, direction: str, margin: float = ROOM) -> Precondition:
    """The baseline ``c`` of a claim that ``metric`` (a fraction) increases (``direction``) or decreases is not at the
    ceiling (or floor) that makes the change impossible to show: it fails only when the interval rule shows the
    baseline above ``1 − margin`` (below ``margin``) over its seeds and test images; a baseline whose seeds merely
    vary keeps its claim testable."""
    up = direction == "increase"
    level_ = 1.0 - margin if up else margin
    probe = Level(id="_", study=study, text="_", metric=metric.key, direction="increase" if up else "decrease",
                  of=metric, cell=c, threshold=level_)

    def judge(frames: dict) -> Judged:
        at_edge = _judged_row(evaluate([probe], frames).iloc[0], level_)
        if not math.isfinite(at_edge.mean):
            return at_edge
        return replace(at_edge, verdict=FAIL if at_edge.holds else PASS,
                       note=f"shown {'above' if up else 'below'} {fmt_num(level_ * 100)}%" if at_edge.holds else "")

    edge = "ceiling" if up else "floor"
    text = (f"{cell_text(c)} is not at the {edge} of {metric.text}: not shown {'above' if up else 'below'} "
            f"{fmt_num(level_ * 100)}% (room for {'an increase' if up else 'a decrease'})")
    return Precondition(text=text, metric=metric.key, level=level_, judge=judge,
                        key=("room", tuple(sorted(c.items())), metric.key, direction, level_))


def similar(study: str, a: dict[str, Any], b: dict[str, Any], metric: Metric, tol: float, epoch: int | None = None,
            what: str = "") -> Precondition:
    """Two models are at a comparable point: ``metric`` (at ``epoch`` of their history, else the final evaluation)
    differs by at most ``tol`` (a ``small`` claim on the pair, judged by the interval rule: it must PASS)."""
    probe = pair("_", study, "_", metric, a, b, "small", tol, epoch=epoch)
    at = "" if epoch is None else f" at epoch {epoch}"

    def judge(frames: dict) -> Judged:
        return _judged_row(evaluate([probe], frames).iloc[0], 0.0)

    return Precondition(text=f"{cell_text(a)} and {cell_text(b)} are comparable{at}: {what or metric.text} within "
                             f"{fmt_num(tol * 100)} points", metric=metric.key, level=tol, judge=judge,
                        key=("similar", tuple(sorted(a.items())), tuple(sorted(b.items())), metric.key, epoch, tol),
                        tables=("history",) if epoch is not None else ("metrics", "images"))


@dataclass(kw_only=True)
class _WhiteBox(Claim):
    """Per seed: a transfer source's own success at its transfer attack (transfer.csv ``white_box_rate``) − level."""

    source: dict[str, Any]
    level_: float

    def needs(self) -> tuple[str, ...]:
        return ("transfer",)

    def measure(self, frames: dict) -> Measured:
        t = frames.get("transfer")
        if t is None or "white_box_rate" not in t.columns:
            return no_data("transfer.csv records no white-box success")
        t = select(t, **self.source)
        t = t[t["white_box_rate"].notna()].drop_duplicates(["seed"])
        if t.empty:
            return no_data("no white-box success for this source")
        v = t.set_index("seed")["white_box_rate"].astype(float)
        n = t.set_index("seed")["white_box_n"].astype(float)
        return Measured(v - self.level_, v, pd.Series(np.nan, index=v.index), var=pd.Series(rate_se(v, n) ** 2,
                                                                                               index=v.index))


def white_box(study: str, source: dict[str, Any], level: float, what: str) -> Precondition:
    """A transfer source (``source``: transfer.csv columns, e.g. study, dataset, source_arch/norm/regime,
    source_final) fools itself on at least ``level`` of the images its examples are made from."""
    probe = _WhiteBox(id="_", study=study, text="_", metric="white_box_rate", direction="increase",
                      source={"study": study, **source}, level_=level)

    def judge(frames: dict) -> Judged:
        return _judged_row(evaluate([probe], frames).iloc[0], level)

    return Precondition(text=f"the source {what} fools itself at the transfer attack on at least "
                             f"{fmt_num(level * 100)}% of images", metric="white_box_rate", level=level,
                        judge=judge, key=("white_box", study, tuple(sorted(source.items())), level),
                        tables=("transfer",))


def carries(dataset: str, rate: float, what: str) -> Precondition:
    """Derived dataset ``dataset`` carries its intended feature (``what``) on at least ``rate`` of its images
    (derived.csv ``intended_rate`` over ``n`` images; binomial 95 % interval), measured by the generator's ideal readers
    (the ground truth) or, on real images, by the held-out reader of the feature's kind (derived.csv ``intended_by``;
    empty in older tables, which measured by the ground truth only): its description says by which."""
    from dataclasses import replace

    def judge(frames: dict) -> Judged:
        d = frames.get("derived")
        if d is None or not len(d) or "intended_rate" not in d.columns:
            return Judged(INCONCLUSIVE, note="derived.csv not available")
        row = d[d["name"] == dataset]
        if row.empty or not np.isfinite(float(row["intended_rate"].iloc[0])):
            return Judged(INCONCLUSIVE, note=f"no intended rate recorded for {dataset} (no ground truth, no held-out "
                                             f"readers)")
        p, n = float(row["intended_rate"].iloc[0]), float(row["n"].iloc[0])
        by = row["intended_by"].iloc[0] if "intended_by" in row.columns else None
        half = Z975 * float(rate_se(p, n))
        lo, hi = p - half, p + half
        verdict = PASS if lo > rate else FAIL if hi < rate else INCONCLUSIVE
        return Judged(verdict, p, lo, hi, 1, note=f"by the {by if isinstance(by, str) and by else 'ground truth'}")

    class _Carries(Precondition):
        def describe(self, j: Judged) -> str:  # what measured the rate is known once judged: it joins the words
            by = f" ({j.note})" if j.note.startswith("by the ") else ""
            return Precondition.describe(replace(self, text=self.text + by), j)

    return _Carries(text=f"{dataset} carries {what} on at least {fmt_num(rate * 100)}% of its images",
                    metric="intended_rate", level=rate, judge=judge, key=("carries", dataset, rate),
                    tables=("derived",))


def any_of(text: str, options: Sequence[Precondition]) -> Precondition:
    """One of ``options`` holds (the first that does is reported; else the closest to holding)."""

    def judge(frames: dict) -> Judged:
        judged = [o.judge(frames) for o in options]
        for j in judged:
            if j.holds:
                return j
        finite = [j for j in judged if math.isfinite(j.mean)]
        return max(finite, key=lambda j: j.lo - options[judged.index(j)].level) if finite else judged[0]

    return Precondition(text=text, metric=options[0].metric, level=options[0].level, judge=judge,
                        key=("any_of", tuple(o.key for o in options)),
                        tables=tuple(dict.fromkeys(t for o in options for t in o.tables)))


def known_features(config: dict, dataset: str) -> Precondition:
    """The claim splits its data into robust and non-robust features: only the generated data's templates (known per
    image, by construction) can; on real images no reader knows them, and the precondition fails."""
    truth = has_ground_truth(config, dataset)
    note = "the generated data's templates" if truth else "real images: no one knows their features"

    def judge(frames: dict) -> Judged:
        return Judged(PASS if truth else FAIL, note=note)

    return Precondition(text=f"{dataset} has known robust and non-robust features", metric="known_features",
                        level=math.nan, judge=judge, key=("known_features", dataset), tables=())


def carries_level(config: dict, dataset: str, truth_level: float, reader_margin: float) -> float:
    """The share of its images on which derived set ``dataset`` must carry its intended feature: ``truth_level`` by the
    ground truth (a set of the generated data, read by its ideal readers), chance + ``reader_margin`` by a held-out
    reader (a set of real images: no reader knows their features)."""
    return truth_level if has_ground_truth(config, dataset) else chance(config, dataset) + reader_margin


def chance(config: dict, dataset: str) -> float:
    """1/K of a dataset of the run's config (a derived one's classes are its base's); 1/10 when unknown."""
    ds = config.get("datasets") or {}
    try:
        return 1.0 / dataset_num_classes(ds[dataset], datasets=ds)
    except (KeyError, ValueError, TypeError):
        return 0.1


def compared_cells(claim: Claim) -> list[dict[str, Any]]:
    """The cells (dataset, arch, norm, regime) a claim compares, each once."""
    if isinstance(claim, Pair):
        cells = [claim.treat, claim.base]
    elif isinstance(claim, (Level, Trajectory)):
        cells = [claim.cell]
    elif isinstance(claim, Dominance):
        cells = [claim.base, claim.ref, *claim.variants]
    elif isinstance(claim, Rank):
        cells = [dict(zip(("dataset", "arch", "norm", "regime"), m)) for m in claim.cells]
    else:
        cells = []
    return [dict(k) for k in dict.fromkeys(tuple(sorted(c.items())) for c in cells)]


@dataclass(frozen=True)
class Learned:
    """What every model a study's claims compare must have learned (a study's ``LEARNED``, in its analysis module):
    ``metric`` above chance + :data:`LEARNED_MARGIN`; ``what`` names it in the precondition's text."""

    metric: Metric
    what: str = ""


def attach_shared(claims: list[Claim], config: dict, learned: Learned | None) -> list[Claim]:
    """The preconditions a study's comparisons share, added after its own (the claims step calls it on every study's
    claims): each compared model learned ``learned`` (:func:`attach_learned`), and a directional comparison's baseline
    leaves room for it (:func:`attach_room`). A study without ``LEARNED`` (None) gets neither."""
    if learned is None:
        return claims
    return attach_room(attach_learned(claims, config, learned.metric, what=learned.what))


def attach_learned(claims: list[Claim], config: dict, metric: Metric, margin: float = LEARNED_MARGIN,
                   what: str = "") -> list[Claim]:
    """Every model each claim compares must have learned what it reads (:func:`learned`: ``metric`` above chance +
    ``margin``); the claims, with those preconditions added to their ``requires``."""
    for c in claims:
        for cell in compared_cells(c):
            c.requires.append(learned(c.study, cell, metric, chance(config, cell["dataset"]), margin, what))
    return claims


def attach_room(claims: list[Claim]) -> list[Claim]:
    """Every directional claim comparing two cells on a fraction (a :class:`Pair` on the final evaluation) needs its
    baseline to leave room for the change it states (:func:`room`); the claims, with it added to their ``requires``."""
    for c in claims:
        if (isinstance(c, Pair) and c.direction in ("increase", "decrease") and c.epoch is None and c.scale == 1
                and metric_is_percent(c.of.key)):
            c.requires.append(room(c.study, c.base, c.of, c.direction))
    return claims


def judge_all(claims: Sequence[Claim], frames: dict) -> tuple[dict[str, list[tuple[Precondition, Judged]]],
                                                               pd.DataFrame]:
    """Every claim's preconditions judged (each distinct one once): claim id → [(precondition, judged)], and the
    preconditions table (:data:`COLUMNS`, a row per claim and precondition)."""
    cache: dict[tuple, Judged] = {}
    out: dict[str, list[tuple[Precondition, Judged]]] = {}
    rows = []
    for c in claims:
        for p in getattr(c, "requires", ()) or ():
            if p.key not in cache:
                cache[p.key] = p.judge(frames)
            j = cache[p.key]
            out.setdefault(c.id, []).append((p, j))
            rows.append({"claim": c.id, "precondition": p.text, "metric": p.metric, "level": p.level,
                         "mean": j.mean, "ci_low": j.lo, "ci_high": j.hi, "n_seeds": j.n, "verdict": j.verdict,
                         "note": j.note})
    return out, pd.DataFrame(rows, columns=COLUMNS)


def apply(table: pd.DataFrame, judged: dict[str, list[tuple[Precondition, Judged]]]) -> pd.DataFrame:
    """The claims table with NOT TESTABLE where a precondition does not hold (its verdict replaced, the failed
    conditions named in its note; the measurement itself kept)."""
    table = table.copy()
    for i, cid in table["id"].items():
        failed = [p.describe(j) for p, j in judged.get(cid, []) if not j.holds]
        if failed:
            table.loc[i, "verdict"] = NOT_TESTABLE
            table.loc[i, "note"] = "precondition not shown: " + "; ".join(failed)
    return table
