"""The results layout: every path the workflow writes and reads, made here and parsed here, nowhere else.

A *model* is a cell without its seed (``{dataset}/{arch}/{norm}/{regime}``: one training, evaluation or transfer
job handles every seed of it); a *cell* is one trained network (``.../s{seed}``). Under ``results/``:

    data/<name>.pt, data/<name>.json                      a dataset; a derived dataset's record
    models/<model>/s<seed>/model.pt, history.csv           a trained cell (checkpoint.pt, epochs/epoch<k>.pt)
    eval/<model>/s<seed>/metrics.json, autoattack.json     its evaluations
    eval/<model>/s<seed>/transfer/<study>/<source>.json    transfer from it (source: final | epoch<k>)
    tables/<name>.csv, tables/run_info.json               the aggregated tables
    figures/<name>.pdf, report.pdf                          figures and the report
    logs/<rule>/<target>.log, benchmarks/<rule>/<target>.tsv

Every method takes wildcards as well as values (``Model("{dataset}", ...)``, seed ``"{seed}"``), so the workflow's
rules take their patterns from here too. Stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

CELL_KEYS = ("dataset", "arch", "norm", "regime", "seed")
CELL_FORMAT = "dataset/arch/norm/regime/s<seed>"  # a cell as a path fragment
MODEL_KEYS = CELL_KEYS[:4]
#: the aggregated tables and their file type
TABLES = {"metrics": "csv", "history": "csv", "transfer": "csv", "costs": "csv", "derived": "csv", "images": "csv",
          "run_info": "json"}
FINAL = "final"  # the source name of a transfer job from the finished model (else epoch<k>)


@dataclass(frozen=True)
class Model:
    """A cell without its seed: what one training, evaluation or transfer job handles (every seed)."""

    dataset: str
    arch: str
    norm: str
    regime: str

    @property
    def path(self) -> str:
        return f"{self.dataset}/{self.arch}/{self.norm}/{self.regime}"

    def __iter__(self):
        """(dataset, arch, norm, regime): a model unpacks like the tuple the tables' rows are selected by."""
        return iter((self.dataset, self.arch, self.norm, self.regime))

    def cell(self, seed: int) -> Cell:
        return Cell(self.dataset, self.arch, self.norm, self.regime, int(seed))

    def as_dict(self) -> dict:
        return asdict(self)

    def matches(self, entry: dict) -> bool:
        """Whether every key ``entry`` names (some of dataset, arch, norm, regime) has this model's value."""
        return all(str(getattr(self, k)) == str(v) for k, v in entry.items())

    @classmethod
    def of(cls, d: dict) -> Model:
        return cls(*(str(d[k]) for k in MODEL_KEYS))


@dataclass(frozen=True)
class Cell:
    """One trained network: a model and a seed."""

    dataset: str
    arch: str
    norm: str
    regime: str
    seed: int

    @property
    def model(self) -> Model:
        return Model(self.dataset, self.arch, self.norm, self.regime)

    @property
    def path(self) -> str:
        return f"{self.model.path}/s{self.seed}"

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, d: dict) -> Cell:
        return cls(*(str(d[k]) for k in MODEL_KEYS), int(d["seed"]))


#: the model pattern of the workflow's rules
WILDCARDS = Model("{dataset}", "{arch}", "{norm}", "{regime}")


def source_name(epoch: int | None) -> str:
    """A transfer source's name: ``final`` (the finished model) or ``epoch<k>`` (weights saved at epoch k)."""
    return FINAL if epoch is None else f"epoch{epoch}"


@dataclass(frozen=True)
class Layout:
    """Paths under ``root`` (``results``); ``tex`` is where the report's LaTeX is rendered."""

    root: str = "results"
    tex: str = "paper/generated"
    # the fixed places, set from root and tex
    tables_dir: str = field(init=False)
    claims: str = field(init=False)  # results/tables/claims.csv
    preconditions: str = field(init=False)  # results/tables/preconditions.csv, beside it
    figures_dir: str = field(init=False)
    report_pdf: str = field(init=False)
    report_tex: str = field(init=False)

    def __post_init__(self) -> None:
        fixed = {"tables_dir": f"{self.root}/tables", "claims": f"{self.root}/tables/claims.csv",
                 "preconditions": f"{self.root}/tables/preconditions.csv",
                 "figures_dir": f"{self.root}/figures", "report_pdf": f"{self.root}/report.pdf",
                 "report_tex": f"{self.tex}/report.tex"}
        for name, path in fixed.items():
            object.__setattr__(self, name, path)  # frozen: set once, here

    # ------------------------------------------------------------------ datasets
    def data(self, name: str) -> str:
        return f"{self.root}/data/{name}.pt"

    def data_record(self, name: str) -> str:
        """What derive-data measured of a derived dataset."""
        return f"{self.root}/data/{name}.json"

    # ------------------------------------------------------------------ trained models
    def model_dir(self, model: Model) -> str:
        return f"{self.root}/models/{model.path}"

    def cell_dir(self, model: Model, seed) -> str:
        return f"{self.model_dir(model)}/s{seed}"

    def model_file(self, model: Model, seed) -> str:
        return f"{self.cell_dir(model, seed)}/model.pt"

    def history_file(self, model: Model, seed) -> str:
        return f"{self.cell_dir(model, seed)}/history.csv"

    def epoch_file(self, model: Model, seed, epoch) -> str:
        return f"{self.cell_dir(model, seed)}/epochs/epoch{epoch}.pt"

    # ------------------------------------------------------------------ evaluations
    def eval_dir(self, model: Model, seed) -> str:
        return f"{self.root}/eval/{model.path}/s{seed}"

    def metrics_file(self, model: Model, seed) -> str:
        return f"{self.eval_dir(model, seed)}/metrics.json"

    def autoattack_file(self, model: Model, seed) -> str:
        return f"{self.eval_dir(model, seed)}/autoattack.json"

    def transfer_file(self, model: Model, seed, study: str, source: str) -> str:
        return f"{self.eval_dir(model, seed)}/transfer/{study}/{source}.json"

    # ------------------------------------------------------------------ tables, figures, report
    def table(self, name: str) -> str:
        return f"{self.tables_dir}/{name}.{TABLES[name]}"

    def figure(self, name: str) -> str:
        return f"{self.figures_dir}/{name}.pdf"

    # ------------------------------------------------------------------ logs and benchmarks
    def log(self, rule: str, target: str | None = None) -> str:
        return f"{self.root}/logs/{rule}.log" if target is None else f"{self.root}/logs/{rule}/{target}.log"

    def benchmark(self, rule: str, target: str) -> str:
        return f"{self.root}/benchmarks/{rule}/{target}.tsv"

    @staticmethod
    def transfer_target(model: Model, study: str, source: str) -> str:
        """A transfer job's target name (its log and benchmark): the source model, the study, the source."""
        return f"{model.path}/transfer/{study}/{source}"


# ---------------------------------------------------------------------- parsing paths back


_SEED = re.compile(r"s(\d+)")


def cell_of(path: str | Path) -> Cell:
    """The cell of a per-cell file (``.../{dataset}/{arch}/{norm}/{regime}/s{seed}/<file>``, ``.../epochs/<file>``,
    ``.../s{seed}/transfer/{study}/{source}.json``); ValueError for a path outside the layout."""
    parts = Path(path).parts
    for i in range(len(parts) - 1, 3, -1):
        if _SEED.fullmatch(parts[i]):
            return Cell(*parts[i - 4:i], int(parts[i][1:]))
    raise ValueError(f"{path}: not a file of a cell (expected .../<dataset>/<arch>/<norm>/<regime>/s<seed>/...)")


def model_cell_named_by(path: str | Path) -> Cell | None:
    """The cell a trained model file's place names (``.../models/<model>/s<seed>/model.pt`` or
    ``.../s<seed>/epochs/epoch<k>.pt``); None for a file elsewhere (a model copied out of the layout)."""
    p = Path(path)
    if p.parent.name == "epochs":
        p = p.parent
    parts = p.parent.parts
    if len(parts) < 6 or parts[-6] != "models" or not _SEED.fullmatch(parts[-1]):
        return None
    return cell_of(p)


def job_target(path: str | Path) -> str:
    """The job a per-seed result file came from, named as its benchmark file is: ``<model>`` for an evaluation,
    ``<model>/transfer/<study>/<source>`` for a transfer result."""
    p = Path(path).with_suffix("")
    model = cell_of(p).model
    if "transfer" in p.parts[:-1]:
        i = len(p.parts) - 1 - p.parts[::-1].index("transfer")
        return Layout.transfer_target(model, p.parts[i + 1], p.parts[i + 2])
    return model.path


def benchmark_key(path: str | Path) -> tuple[str, str]:
    """``results/benchmarks/<rule>/<target>.tsv`` → (rule, target)."""
    parts = Path(path).with_suffix("").parts
    i = parts.index("benchmarks") if "benchmarks" in parts else len(parts) - 2
    return parts[i + 1], "/".join(parts[i + 2:])
