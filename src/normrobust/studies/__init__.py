"""The studies: one module per experiment, and this registry, the only list of them.

A study module holds everything about one experiment and nothing else (its docstring says which paper figure it
reproduces, its claims and its outputs):

* ``KEY`` (the config's ``studies.<KEY>``), ``TAG`` (E1 ...), ``TITLE``;
* ``TABLES``: the aggregated tables its claims and section read (metrics, history, transfer);
* ``PUBLISHED``: the papers' numbers, typed once (:class:`normrobust.analysis.reproduction.Published`);
* ``claims(view) -> list[Claim]``: its claims, with their thresholds as named constants at the top;
* ``FIGURES``: figure name → :class:`normrobust.analysis.plotting.Figure` (draw function, tables, caption);
* ``section(view, frames, write_table) -> dict``: the context of its report fragment
  ``paper/sections/<KEY>.tex.j2`` (tables written through ``write_table(name, tex)``);
* optionally ``HISTORY``: what it reads of history.csv per epoch (``robust``, ``ligs``; training measures these
  only for the cells of a study that reads them), ``abstract(view, claims, section) -> list[str]`` (sentences for
  the abstract) and ``fail_reason(claims_row) -> str`` (why a failed claim may have failed at this scale).

Everything else (the workflow's targets, the config schema's study keys, the claims, the figures, the report and
the HTML report's captions) iterates over :data:`STUDIES`, in the report's order. README: "Adding a study".
"""

from __future__ import annotations

from types import ModuleType

from . import (
    e1_norms,
    e2_trajectories,
    e3_disentangled,
    e4_conflict,
    e5_synthetic,
    e6_factors,
    e7_adv_training,
    e8_ligs_reg,
    e9_transfer,
    e10_fgsm,
)

#: study key → module, in the report's order
STUDIES: dict[str, ModuleType] = {m.KEY: m for m in (
    e1_norms,
    e2_trajectories,
    e3_disentangled,
    e4_conflict,
    e5_synthetic,
    e6_factors,
    e7_adv_training,
    e8_ligs_reg,
    e9_transfer,
    e10_fgsm,
)}
#: study key → what it reads of history.csv per epoch (normrobust.cells.history_needs)
HISTORY_READS: dict[str, tuple[str, ...]] = {k: tuple(getattr(m, "HISTORY", ())) for k, m in STUDIES.items()}
#: figure name → the module of the study that draws it
FIGURE_STUDY: dict[str, ModuleType] = {name: m for m in STUDIES.values() for name in m.FIGURES}
