"""The studies: one package per experiment, ``studies/<key>/``, found here (this registry lists none by hand).

A study package holds everything about one experiment and nothing else, in two parts:

* ``<key>/__init__.py``, the light part, read by the planner and the compute jobs (no pandas, matplotlib or analysis
  imports): its docstring (which paper figure it reproduces, its design, its claims and outputs), ``KEY`` (the
  config's ``studies.<KEY>``), ``TAG`` (E1 ...), ``TITLE``, ``HISTORY`` (what it reads of history.csv per epoch:
  ``robust``, ``ligs``; training measures these only for its cells) and ``MEASURES`` (evaluation measurements beyond
  the core ones, :data:`normrobust.settings.MEASUREMENTS`, that it reads; evaluation makes them only for its cells);
* ``<key>/analysis.py``, the analysis part, loaded by the reporting rules only (:func:`analysis`): ``TABLES`` (the
  aggregated tables its claims and section read), ``PUBLISHED`` (the papers' numbers, typed once), ``claims(view)``,
  ``FIGURES`` (figure name → :class:`normrobust.analysis.plotting.Figure`), ``section(view, frames, write_table)``
  (the context of its report fragment ``paper/sections/<KEY>.tex.j2``), and optionally ``LEARNED`` (what every
  model its claims compare must have learned: :class:`normrobust.analysis.preconditions.Learned`; the claims step
  adds that precondition, and room to move, to each claim), ``abstract(view, claims, section)`` and
  ``fail_reason(claims_row)``.

:data:`STUDIES` holds every package named ``e<number>_<name>`` under this directory, in the order of their tags
(E1, E2, ...: the report's order). Adding a study is adding its package, its report fragment and its config entry
(README: "Adding a study"); nothing here changes.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from functools import cache
from types import ModuleType

_NAME = re.compile(r"e(\d+)_\w+")


def _discover() -> dict[str, ModuleType]:
    found = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)
             if m.ispkg and _NAME.fullmatch(m.name)]
    for m in found:
        if m.KEY != m.__name__.rsplit(".", 1)[1] or m.TAG != f"E{_NAME.fullmatch(m.KEY).group(1)}":
            raise ImportError(f"{m.__name__}: KEY {m.KEY!r} and TAG {m.TAG!r} must match the package's name")
    return {m.KEY: m for m in sorted(found, key=lambda m: int(m.TAG[1:]))}


#: study key → its light part, in the report's order
STUDIES: dict[str, ModuleType] = _discover()
#: study key → what it reads of history.csv per epoch
HISTORY_READS: dict[str, tuple[str, ...]] = {k: tuple(m.HISTORY) for k, m in STUDIES.items()}
#: study key → the evaluation measurements beyond the core ones that it reads
MEASURES: dict[str, tuple[str, ...]] = {k: tuple(m.MEASURES) for k, m in STUDIES.items()}


def analysis(key: str) -> ModuleType:
    """The analysis part of study ``key`` (imports pandas and the shared analysis code)."""
    return importlib.import_module(f"{__name__}.{key}.analysis")


def analyses() -> list[ModuleType]:
    """Every study's analysis part, in the report's order."""
    return [analysis(k) for k in STUDIES]


@cache
def figure_studies() -> dict[str, ModuleType]:
    """Figure name → the analysis part of the study that draws it."""
    out: dict[str, ModuleType] = {}
    for m in analyses():
        for name in m.FIGURES:
            if name in out:
                raise ImportError(f"figure {name!r} is drawn by two studies ({out[name].__name__}, {m.__name__})")
            out[name] = m
    return out
