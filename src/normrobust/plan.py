"""The plan: what a validated config asks for, decided once, in Python (the workflow's rules only read it).

:class:`Plan` turns a config (``normrobust.config.validate`` first) into the work: the enabled studies (``run:``),
their models and cells (the union over studies, each trained once, plus the source models derived datasets are made
with), the datasets to prepare or derive, the transfer jobs grouped one job per (source model, study, source), the
settings of every job as typed objects (:mod:`normrobust.settings`), the per-cell files the aggregate step reads,
tables-only mode (a checkout with the tables of this config and no per-cell results) and the environment a job runs
in (execution details: device, GPU slots, data directory, batch sizes and fast path). Paths come from
:class:`normrobust.layout.Layout`, the one encoding of the results layout.

Light: no torch, pandas or analysis code (compute jobs and ``snakemake -n`` import it); what the workflow needs of
the reporting half (the figures of the enabled studies) is imported only when asked for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .layout import FINAL, TABLES, Cell, Layout, Model, source_name
from .settings import (
    LIGS_SIGMA,
    MEASUREMENTS,
    TRANSFER_MEASUREMENTS,
    Attack,
    AttackGrid,
    EvalSettings,
    Execution,
    History,
    Regime,
    Training,
    TrainSettings,
    TransferSettings,
)
from .studies import HISTORY_READS, MEASURES, STUDIES

#: config keys that say how to run, not what: they never make finished work stale, and the tables' record of the
#: config (run_info.json, its hash) leaves them out (settings.Execution's keys, and these top-level ones)
EXECUTION_KEYS = ("device", "gpu_slots", "data_dir")
DESIGNS = ("factorial", "one_at_a_time")


TABLES_ONLY_NOTE = ("normrobust: results/tables/ holds the aggregated tables of this config and there are no "
                    "per-cell results: figures and the report are built from the tables alone, nothing is trained. "
                    "Delete results/tables/ to run the whole pipeline.")


class PlanError(ValueError):
    """The config's work cannot be planned here (e.g. results/tables/ holds another run's tables)."""


# ------------------------------------------------------------------------------ a study's cells, from its entry

def enabled_studies(config: dict) -> dict[str, dict]:
    """Study key → config entry of every study the config runs (``run:``; without it, every entry), in the config's
    order of entries."""
    studies = config.get("studies") or {}
    run = config.get("run")
    return {k: s for k, s in studies.items() if isinstance(s, dict) and (run is None or k in run)}


def study_datasets(study: dict) -> list[str]:
    """A study's datasets: ``dataset`` is one name or a list of names (E3 trains on several)."""
    d = study.get("dataset")
    if d is None:
        return []
    return [str(d)] if isinstance(d, str) else [str(x) for x in d]


def study_pairs(study: dict) -> list[tuple[str, str]]:
    """(arch, regime) pairs of a study. ``design: factorial`` (default): every arch × regime; ``one_at_a_time``
    (E6): the base pair (archs[0], regimes[0]), each other arch with regimes[0], each other regime with archs[0]."""
    archs = [str(a) for a in study.get("archs", [])]
    regimes = [str(r) for r in study.get("regimes", [])]
    if not archs or not regimes:
        return []
    if study.get("design", "factorial") == "one_at_a_time":
        return [(archs[0], regimes[0])] + [(a, regimes[0]) for a in archs[1:]] + [(archs[0], r) for r in regimes[1:]]
    return [(a, r) for a in archs for r in regimes]


def study_models(study: dict) -> list[Model]:
    """The models (cells without their seed) of a study, each once, in design order, less those its ``exclude``
    entries match (an entry names some of dataset, arch, norm, regime: cells no claim of the study reads)."""
    models = dict.fromkeys(Model(d, a, str(n), r) for d in study_datasets(study) for a, r in study_pairs(study)
                           for n in study.get("norms", []))
    return [m for m in models if not any(m.matches(e) for e in study.get("exclude") or ())]


def study_cells(config: dict, study: dict) -> list[Cell]:
    """The cells of one study, for every seed of the config."""
    return [m.cell(s) for m in study_models(study) for s in config.get("seeds", [0])]


def derived_source(config: dict, name: str) -> Cell:
    """The cell a derived dataset is made with; its dataset defaults to the first non-derived ancestor of the base."""
    d = config["datasets"][name]
    src = dict(d["source"])
    if "dataset" not in src:
        base = d["base"]
        while config["datasets"][base].get("kind") == "derived":
            base = config["datasets"][base]["base"]
        src["dataset"] = base
    return Cell.of(src)


def derived_readers(config: dict, name: str) -> dict[str, Cell]:
    """A derived dataset's held-out reader cells by kind (robust, standard; {} without ``readers``), their dataset
    defaulting to the source's; PlanError (one line) when one is not the config's, not held out or not of its kind."""
    from .data.derived_settings import resolve_readers

    try:
        readers = resolve_readers(name, config["datasets"][name], derived_source(config, name).as_dict(), config)
    except ValueError as e:
        raise PlanError(str(e)) from None
    return {k: Cell.of(r) for k, r in readers.items()}


def transfer_attack(config: dict, study: dict) -> dict:
    """The attack a study's transfer jobs make (its own ``transfer.attack``, else the config's ``transfer.attack``),
    as the config writes it: the jobs use it, transfer.csv records it, the report prints it."""
    return dict((study.get("transfer") or {}).get("attack") or (config.get("transfer") or {}).get("attack") or {})


def history_passes(history: History) -> int:
    """Images through the network per epoch for a history (a forward or a backward pass of one image counts one):
    clean accuracy 1; a k-step attack 2k + 1 (FGSM: k = 1); LIGS 4 (gradients at x and x + v)."""
    attacks = [history.attack] + [a for _, a in history.extra]
    per_image = 1 + sum(2 * a.steps + 1 for a in attacks if a is not None)
    return history.n_test * (per_image + (4 if history.ligs else 0))


@dataclass(frozen=True)
class TransferJob:
    """Adversarial examples made on ``source`` (its final weights, or those of ``epoch``) tried on ``targets``."""

    study: str
    source: Cell
    epoch: int | None
    targets: tuple[Cell, ...]

    @property
    def source_name(self) -> str:
        return source_name(self.epoch)


# ------------------------------------------------------------------------------------------ the plan

class Plan:
    """The work of one validated config (module docstring). Built once; every list in a stable order."""

    def __init__(self, config: dict, layout: Layout | None = None):
        self.config = config
        self.layout = layout or Layout()
        self.seeds: tuple[int, ...] = tuple(int(s) for s in config["seeds"])
        self.studies = enabled_studies(config)
        self.models: list[Model] = list(dict.fromkeys(m for s in self.studies.values() for m in study_models(s)))
        self.cells: list[Cell] = [m.cell(s) for m in self.models for s in self.seeds]
        self.datasets: list[str] = self._datasets()
        self.derived: list[str] = [d for d in self.datasets if config["datasets"][d].get("kind") == "derived"]
        sources = list(dict.fromkeys(c for d in self.derived
                                     for c in (derived_source(config, d), *derived_readers(config, d).values())))
        self.sources: list[Cell] = sources  # the cells derived datasets are made (and read) with
        #: every model trained: the studies' models, then derived datasets' source and reader models no study lists
        self.trained: list[Model] = self.models + [m for m in dict.fromkeys(c.model for c in sources)
                                                   if m not in self.models]

    # -------------------------------------------------------------------------------------- what is made
    def _datasets(self) -> list[str]:
        out: list[str] = []

        def add(name: str) -> None:
            if name in out:
                return
            d = self.config["datasets"][name]
            if d.get("kind") == "derived":
                add(d["base"])
                for c in (derived_source(self.config, name), *derived_readers(self.config, name).values()):
                    add(c.dataset)
            out.append(name)

        for s in self.studies.values():
            for name in study_datasets(s):
                add(name)
        return out

    def _reads(self, table: dict[str, tuple[str, ...]]) -> dict[Model, set[str]]:
        out: dict[Model, set[str]] = {}
        for key, s in self.studies.items():
            for m in study_models(s):
                out.setdefault(m, set()).update(table.get(key, ()))
        return out

    @cached_property
    def history_needs(self) -> dict[Model, set[str]]:
        """Model → what the enabled studies that train it read of its per-epoch history (robust, ligs)."""
        return self._reads(HISTORY_READS)

    @cached_property
    def measure_needs(self) -> dict[Model, set[str]]:
        """Model → the evaluation measurements beyond the core ones that the studies reading it declare."""
        return self._reads(MEASURES)

    @cached_property
    def saved_epochs(self) -> tuple[int, ...]:
        """Epochs whose weights training keeps: training.save_epochs and every early-stopped transfer source."""
        out = set(self.config["training"].get("save_epochs") or [])
        for s in self.studies.values():
            out |= set((s.get("transfer") or {}).get("source_epochs") or [])
        return tuple(sorted(out))

    @cached_property
    def autoattack_models(self) -> list[Model]:
        """With an ``evaluation.autoattack`` block, every model of the enabled studies trained on attacks."""
        if not self.config["evaluation"].get("autoattack"):
            return []
        return [m for m in self.models if self.config["regimes"][m.regime].get("attack")]

    @cached_property
    def transfer_jobs(self) -> list[TransferJob]:
        """One per (study with a transfer block, source cell, source epoch): targets are the study's cells of a
        target regime, same dataset and seed; early-stopped sources are the saved epochs of target-regime cells."""
        jobs = []
        for key, s in self.studies.items():
            t = s.get("transfer")
            if not t:
                continue
            cells = study_cells(self.config, s)
            for src in cells:
                targets = tuple(c for c in cells if c.regime in t["targets"] and c.dataset == src.dataset
                                and c.seed == src.seed)
                epochs = [None] + (list(t.get("source_epochs") or []) if src.regime in t["targets"] else [])
                jobs += [TransferJob(key, src, e, targets) for e in epochs]
        return jobs

    @cached_property
    def transfer_groups(self) -> dict[tuple[Model, str, str], list[TransferJob]]:
        """(source model, study, source name) → its jobs, one per seed: what one transfer job of the workflow runs."""
        out: dict[tuple[Model, str, str], list[TransferJob]] = {}
        for j in self.transfer_jobs:
            out.setdefault((j.source.model, j.study, j.source_name), []).append(j)
        return out

    # -------------------------------------------------------------------------------------- settings
    def train_settings(self, model: Model) -> TrainSettings:
        """The settings one training job trains ``model`` with (every seed)."""
        cfg = self.config
        regime = cfg["regimes"][model.regime]
        tr = {**cfg["training"], **(cfg["datasets"][model.dataset].get("training") or {}),
              **(regime.get("training") or {})}  # a dataset, then a regime, may override ([B]: lr 0.01 on D_NR)
        needs = self.history_needs.get(model, set())
        h = tr.get("history") or {}
        history = History(int(h.get("n_test", 0)), Attack.optional(h.get("attack")) if "robust" in needs else None,
                          tuple((n, Attack.of(a)) for n, a in sorted((h.get("extra_attacks") or {}).items()))
                          if "robust" in needs else (), "ligs" in needs)
        training = Training(int(tr["epochs"]), int(tr["batch_size"]), float(tr["lr"]), history,
                            tr.get("optimizer", "sgd"), float(tr.get("momentum", 0.9)),
                            float(tr.get("weight_decay", 0.0)), dict(tr.get("schedule") or {"kind": "constant"}),
                            self.saved_epochs)
        return TrainSettings(model, dict(cfg["archs"][model.arch]), Regime.from_config(model.regime, regime),
                             training, float(cfg["evaluation"].get("ligs_sigma", LIGS_SIGMA)))

    def eval_settings(self, model: Model) -> EvalSettings:
        """What the evaluation job of ``model`` measures: the core rows and what its studies declare."""
        ev = self.config["evaluation"]
        measures = tuple(sorted(m for m in self.measure_needs.get(model, ()) if m in MEASUREMENTS))
        return EvalSettings(int(ev["n_test"]), tuple(AttackGrid(n, dict(s)) for n, s in sorted(ev["attacks"].items())),
                            tuple(float(s) for s in ev.get("noise_std") or ()),
                            float(ev.get("ligs_sigma", LIGS_SIGMA)), measures)

    def autoattack_settings(self) -> dict:
        """AutoAttack's block (``evaluation.autoattack``; ``n_test`` defaults to ``evaluation.n_test``)."""
        aa = dict(self.config["evaluation"].get("autoattack") or {})
        return {**aa, "n_test": int(aa.get("n_test", self.config["evaluation"]["n_test"]))} if aa else {}

    def transfer_settings(self, study: str) -> TransferSettings:
        """A study's transfer attack and test images."""
        return TransferSettings(study, int(self.config["transfer"]["n_test"]),
                                Attack.of(transfer_attack(self.config, self.studies[study])),
                                tuple(m for m in MEASURES.get(study, ()) if m in TRANSFER_MEASUREMENTS))

    def derive_settings(self, name: str) -> dict:
        """A derived dataset's settings as derive-data reads them: its source cell resolved (dataset included), the
        keys that only change training on it (``training``) left out, so they never rebuild it."""
        from .data.derived_settings import dataset_settings

        entry = dataset_settings(self.config["datasets"][name])
        return {**entry, "source": derived_source(self.config, name).as_dict()}

    @property
    def execution(self) -> Execution:
        return Execution.from_config(self.config)

    def environment(self) -> dict[str, str]:
        """The environment every job runs in: the execution details, never a rule param (params rerun jobs)."""
        from .data import DATA_DIR_ENV
        from .gpu import SLOTS_ENV
        from .settings import EXECUTION_ENV
        from .utils import DEVICE_ENV

        env = {DEVICE_ENV: str(self.config.get("device", "auto")), EXECUTION_ENV: self.execution.to_json()}
        if self.config.get("gpu_slots"):
            env[SLOTS_ENV] = str(self.config["gpu_slots"])
        if self.config.get("data_dir"):  # md5-checked, so moving the data changes no result; absolute here
            env[DATA_DIR_ENV] = str(Path(str(self.config["data_dir"])).expanduser().resolve())
        return env

    # -------------------------------------------------------------------------------------- per-cell files
    def metrics_files(self) -> list[str]:
        return [self.layout.metrics_file(c.model, c.seed) for c in self.cells]

    def autoattack_files(self) -> list[str]:
        return [self.layout.autoattack_file(m, s) for m in self.autoattack_models for s in self.seeds]

    def history_files(self) -> list[str]:
        return [self.layout.history_file(c.model, c.seed) for c in self.cells]

    def transfer_file(self, job: TransferJob) -> str:
        return self.layout.transfer_file(job.source.model, job.source.seed, job.study, job.source_name)

    def transfer_files(self) -> list[str]:
        return [self.transfer_file(j) for jobs in self.transfer_groups.values() for j in jobs]

    def source_digest(self, name: str) -> str:
        """The training settings' digest of a derived dataset's source model (derive-data checks its model.pt)."""
        return self.train_settings(derived_source(self.config, name).model).digest()

    def derive_inputs(self, name: str) -> dict[str, str]:
        """A derived dataset (E3/E4) is made from its base dataset with the model of its source cell (and read by its
        held-out readers' models: ``readers_<kind>``)."""
        src, L, readers = derived_source(self.config, name), self.layout, derived_readers(self.config, name)
        return {"base": L.data(self.config["datasets"][name]["base"]), "source": L.model_file(src.model, src.seed),
                **{f"readers_{k}": L.model_file(c.model, c.seed) for k, c in readers.items()}}

    def reader_args(self, name: str) -> str:
        """derive-data's held-out readers: ``--reader KIND=model.pt --reader-trained-with KIND=digest`` for each."""
        readers = derived_readers(self.config, name)
        return " ".join(f"--reader {k}={self.layout.model_file(c.model, c.seed)} --reader-trained-with "
                        f"{k}={self.train_settings(c.model).digest()}" for k, c in readers.items())

    def transfer_inputs(self, key: tuple[Model, str, str]) -> dict[str, Any]:
        """One transfer job's inputs: the sources (and their saved epoch), the targets, the dataset."""
        L, files = self.layout, set()
        for j in self.transfer_groups[key]:
            files |= {L.model_file(c.model, c.seed) for c in (j.source, *j.targets)}
            if j.epoch is not None:
                files.add(L.epoch_file(j.source.model, j.source.seed, j.epoch))
        return {"models": sorted(files), "data": L.data(key[0].dataset)}

    def transfer_plan(self, key: tuple[Model, str, str]) -> list[dict]:
        """One transfer job's work, per seed: the source (and its early epoch), its targets, the output."""
        L = self.layout
        return [{"source": L.model_file(j.source.model, j.source.seed),
                 "source_epoch": None if j.epoch is None else L.epoch_file(j.source.model, j.source.seed, j.epoch),
                 "targets": [L.model_file(c.model, c.seed) for c in j.targets], "out": self.transfer_file(j),
                 "trained_with": {L.model_file(c.model, c.seed): self.train_settings(c.model).digest()
                                  for c in (j.source, *j.targets)}}
                for j in self.transfer_groups[key]]

    def derived_records(self) -> list[str]:
        return [self.layout.data_record(d) for d in self.derived]

    def benchmark_files(self) -> list[str]:
        """Snakemake benchmark files of the compute jobs (wall time, memory), for the costs table."""
        L = self.layout
        return ([L.benchmark("derive_data" if d in self.derived else "prepare_data", d) for d in self.datasets]
                + [L.benchmark("train", m.path) for m in self.trained]
                + [L.benchmark("evaluate", m.path) for m in self.models]
                + [L.benchmark("evaluate_autoattack", m.path) for m in self.autoattack_models]
                + [L.benchmark("transfer", L.transfer_target(*key)) for key in self.transfer_groups])

    def tables(self, present_only: bool = False) -> list[str]:
        """The aggregated tables (``present_only``: those that exist, for tables-only mode, where an older
        results/tables/ may lack costs.csv: the report then says so)."""
        files = [self.layout.table(n) for n in TABLES]
        return [f for f in files if not present_only or Path(f).exists()]

    def report_code(self) -> list[str]:
        """What the claims and the report are made with: every study package (both parts) and its report fragment."""
        from .resources import resource

        sections = resource("paper", "sections")
        return [f for m in STUDIES.values() for f in (m.__file__, str(Path(m.__file__).with_name("analysis.py")),
                                                       str(sections / f"{m.KEY}.tex.j2"))]

    def figures(self) -> list[str]:
        """The figures of the enabled studies (each study's analysis part lists its own)."""
        from .studies import analysis

        return [name for key in STUDIES if key in self.studies for name in analysis(key).FIGURES]

    # -------------------------------------------------------------------------------------- the tables' record
    def recorded_config(self) -> dict:
        """The config as the tables record it (run_info.json, the aggregate rule's param): without the execution
        details, so moving a finished run to another machine, or changing a batch size, reruns nothing."""
        out = {k: v for k, v in self.config.items() if k not in EXECUTION_KEYS}
        for block, key in Execution.CONFIG_KEYS:
            if key in (out.get(block) or {}):
                out[block] = {k: v for k, v in out[block].items() if k != key}
        return out

    def config_hash(self) -> str:
        return config_hash(self.recorded_config())

    def tables_only(self) -> bool:
        """True in a checkout that holds this config's aggregated tables but no per-cell results (a fresh clone with
        results/tables/ copied in): figures and the report are built from the tables alone, nothing is trained.
        Raises :class:`PlanError` (one line) when the tables there are another config's, or record none."""
        L = self.layout
        core = [L.table(n) for n in ("metrics", "history", "transfer", "run_info")]
        per_cell = self.metrics_files() + self.history_files() + self.transfer_files()
        if any(Path(f).exists() for f in per_cell):
            return False
        present = [f for f in map(L.table, TABLES) if Path(f).exists()]
        if present and not Path(L.table("run_info")).exists():
            raise PlanError(
                f"{L.tables_dir}/ holds tables of unknown origin ({len(present)} of them, no run_info.json recording "
                f"the config that made them) and none of this config's per-cell results exist; nothing was run or "
                f"changed. To run this config, move them away first (mv {L.tables_dir} {L.tables_dir}-old)")
        if not all(Path(f).exists() for f in core):
            return False
        try:
            made_by = json.loads(Path(L.table("run_info")).read_text()).get("config_sha256")
        except (OSError, ValueError, AttributeError):
            made_by = None
        this = self.config_hash()
        if made_by != this:
            found = f"config {str(made_by)[:12]}" if made_by else "a config it does not record"
            raise PlanError(
                f"{L.tables_dir}/ holds the tables of another run ({found}; this config is {this[:12]}) and none of "
                f"this config's per-cell results exist; nothing was run or changed. To run this config, move the old "
                f"tables away first (mv {L.tables_dir} {L.tables_dir}-{str(made_by or 'old')[:12]}); to rebuild their "
                f'figures and report, rerun with the config they record ("config" in {L.table("run_info")}).')
        return True


def config_hash(config: dict) -> str:
    """SHA-256 of a config as canonical JSON (after a JSON round trip, as the aggregate step receives it)."""
    canonical = json.loads(json.dumps(config))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


__all__ = ["DESIGNS", "EXECUTION_KEYS", "FINAL", "Plan", "PlanError", "TransferJob", "config_hash", "derived_readers",
           "derived_source", "enabled_studies", "history_passes", "study_cells", "study_datasets", "study_models",
           "study_pairs", "transfer_attack"]
