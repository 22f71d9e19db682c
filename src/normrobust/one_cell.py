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

from .cells import cell_path, history_needs, model_path, trained_cells
from .config import ConfigError, load

CELL_FORMAT = "dataset/arch/norm/regime/s<seed>"
#: CPU threads of a cell run by hand unless --threads says otherwise: the workflow's jobs use 1 (``threads: 1``), and
#: the thread count changes float rounding, so a by-hand run with the default matches the workflow's files
THREADS = 1


@dataclass(frozen=True)
class OneCell:
    """A cell of a config with the paths the workflow gives it (under ``results``)."""

    config: dict[str, Any]
    cell: dict[str, Any]  # dataset, arch, norm, regime, seed
    results: Path = Path("results")

    @property
    def model(self) -> dict[str, Any]:
        """The cell without its seed (one training job)."""
        return {k: self.cell[k] for k in ("dataset", "arch", "norm", "regime")}

    @property
    def history_needs(self) -> set[str]:
        from .studies import HISTORY_READS

        return history_needs(self.config, HISTORY_READS).get(tuple(self.model.values()), set())

    @property
    def data_file(self) -> Path:
        return self.results / "data" / f"{self.cell['dataset']}.pt"

    @property
    def models_dir(self) -> Path:
        """The directory of the cell's seeds (``s<seed>/model.pt`` inside)."""
        return self.results / "models" / model_path(self.cell)

    @property
    def model_file(self) -> Path:
        return self.results / "models" / cell_path(self.cell) / "model.pt"

    @property
    def metrics_file(self) -> Path:
        return self.results / "eval" / cell_path(self.cell) / "metrics.json"


def resolve(config_file: str | Path | None, cell: str | None, results: str | Path = "results") -> OneCell:
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
    c = dict(zip(("dataset", "arch", "norm", "regime"), m.groups()[:4]), seed=int(m.group(5)))
    known = trained_cells(config)
    if c not in known:
        sample = ", ".join(cell_path(k) for k in known[:4])
        raise SystemExit(f"--cell: '{cell}' is not a cell this config trains ({len(known)} cells, e.g. {sample})")
    return OneCell(config, c, Path(results))


def need(path: Path, what: str) -> Path:
    """``path`` if it exists, else stop with one line saying how to make it."""
    if not path.is_file():
        raise SystemExit(f"{what}: {path} not found; make it first, e.g. snakemake {path}")
    return path
