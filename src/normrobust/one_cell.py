"""One cell outside Snakemake: ``normrobust train --config config.yaml --cell generated/cnn/bn/standard/s0`` (and
``evaluate`` with the same two options) run that cell with the settings, and into the files, the workflow would use.

Handy to debug one cell by hand; the inputs must exist (the dataset file, and for ``evaluate`` the model): make them
with Snakemake, e.g. ``snakemake results/data/generated.pt``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import ConfigError, load
from .layout import CELL_FORMAT, Cell
from .plan import Plan

#: CPU threads of a cell run by hand unless --threads says otherwise: the workflow's jobs use 1 (``threads: 1``), and
#: the thread count changes float rounding, so a by-hand run with the default matches the workflow's files
THREADS = 1


@dataclass(frozen=True)
class OneCell:
    """A cell of a config with the plan (and so the paths) the workflow gives it."""

    plan: Plan
    cell: Cell

    @property
    def config(self) -> dict[str, Any]:
        return self.plan.config

    @property
    def data_file(self) -> Path:
        return Path(self.plan.layout.data(self.cell.dataset))

    @property
    def models_dir(self) -> str:
        """The directory of the model's seeds (``s<seed>/model.pt`` inside)."""
        return self.plan.layout.model_dir(self.cell.model)

    @property
    def model_file(self) -> Path:
        return Path(self.plan.layout.model_file(self.cell.model, self.cell.seed))

    @property
    def metrics_file(self) -> Path:
        return Path(self.plan.layout.metrics_file(self.cell.model, self.cell.seed))


def resolve(config_file: str | Path | None, cell: str | None) -> OneCell:
    """The cell ``cell`` (``dataset/arch/norm/regime/s<seed>``) of the config in ``config_file``; stops with one line
    naming the bad option and what is allowed."""
    if not config_file or not cell:
        raise SystemExit(f"--config and --cell go together: --config FILE --cell {CELL_FORMAT}")
    try:
        config = load(config_file)
    except FileNotFoundError:
        raise SystemExit(f"--config: {config_file} not found") from None
    except ConfigError as e:
        raise SystemExit(f"config error: {e}") from None
    m = re.fullmatch(r"([^/]+)/([^/]+)/([^/]+)/([^/]+)/s(\d+)", cell.strip("/"))
    if not m:
        raise SystemExit(f"--cell: '{cell}' is not of the form {CELL_FORMAT} (e.g. generated/cnn/bn/standard/s0)")
    c = Cell(*m.groups()[:4], int(m.group(5)))
    plan = Plan(config)
    if c.model not in plan.trained or c.seed not in plan.seeds:
        sample = ", ".join(m.cell(plan.seeds[0]).path for m in plan.trained[:4])
        raise SystemExit(f"--cell: '{cell}' is not a cell this config trains ({len(plan.trained) * len(plan.seeds)} "
                         f"cells, e.g. {sample})")
    return OneCell(plan, c)


def need(path: Path, what: str) -> Path:
    """``path`` if it exists, else stop with one line saying how to make it."""
    if not path.is_file():
        raise SystemExit(f"{what}: {path} not found; make it first, e.g. snakemake {path}")
    return path
