# Helpers only: config → cells, wildcard constraints, target lists.
#
# `snakemake --lint` reports two kinds of warnings for every rule; both are deliberate
# (tests/test_quality.py fails on any other lint):
#  * "Specify a conda environment or container for each rule": the whole workflow runs in the
#    one Python environment that scripts/bootstrap.sh makes from constraints.txt (pinned); a
#    per-rule conda env would install torch (GBs) once per rule for no gain.
#  * "Shell command directly uses variable PY from outside of the rule": PY is the absolute path
#    of the interpreter running Snakemake, so every job uses the same environment. As a param it
#    would make Snakemake rerun every job whenever the checkout moves (params are a rerun trigger).
#
# One training, evaluation or transfer job handles every seed of one cell (dataset, arch, norm,
# regime): the cost of starting Python and torch and of loading the data is paid once per cell.

import json
import os
import shlex

from normrobust import gpu
from normrobust.cells import (
    autoattack_cells,
    cell_path,
    cells,
    config_hash,
    derived_source,
    enabled_studies,
    evaluation_settings,
    history_needs,
    model_path,
    needed_datasets,
    recorded_config,
    saved_epochs,
    trained_cells,
    training_settings,
    transfer_jobs,
)
from normrobust.config import ConfigError, check_writable, validate
from normrobust.data.derived_settings import dataset_settings
from normrobust.figures import code_fingerprint
from normrobust.studies import FIGURE_STUDY, HISTORY_READS, STUDIES

try:
    validate(config)
except ConfigError as e:
    sys.exit(f"config error: {e}")
try:
    check_writable("results")
except ConfigError as e:
    sys.exit(f"error: {e}")

PY = shlex.quote(sys.executable)
# GPU slots per device (normrobust.gpu): the config key wins over $NORMROBUST_GPU_SLOTS. An execution detail,
# handed to the jobs through the environment, not a param (params are a rerun trigger). The workflow sets this
# variable, it does not read it, so it is not an `envvars:` entry.
if config.get("gpu_slots"):
    os.environ.update(NORMROBUST_GPU_SLOTS=str(config["gpu_slots"]))
# Where the real datasets live likewise (md5-checked, so moving them changes no result): $NORMROBUST_DATA, made
# absolute here, where relative paths mean the working directory.
if config.get("data_dir"):
    os.environ.update(
        NORMROBUST_DATA=str(Path(str(config["data_dir"])).expanduser().resolve())
    )
# The device (auto | cpu | cuda) likewise: moving a finished run between a CPU and a GPU machine replans nothing.
os.environ.update(NORMROBUST_DEVICE=str(config.get("device", "auto")))
# Without --resources gpu=N, a local run allows as many GPU jobs at once as this machine has GPU slots (devices found
# x gpu_slots), so no job holds a core while it waits for a lease; with no GPU found, GPU jobs run on the CPU and
# only --cores limits them.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    _slots = len(gpu.candidates()) * gpu.slots_per_device()
    if _slots:
        workflow.register_resource("gpu", _slots)
SEEDS = [int(s) for s in config["seeds"]]
CELLS = cells(config)
AUTOATTACK_CELLS = autoattack_cells(
    config
)  # adversarially trained cells, when evaluation.autoattack is set
ENABLED = enabled_studies(config)
# every model trained: the studies' cells and the derived datasets' source cells no study lists
TRAINED = trained_cells(config)
DATASETS = needed_datasets(config)
DERIVED = [d for d in DATASETS if config["datasets"][d]["kind"] == "derived"]
# what the studies read of each cell's per-epoch history (normrobust.studies: HISTORY)
HISTORY = history_needs(config, HISTORY_READS)
# Transfer jobs (E9, E10): one per (study, source cell, source weights: final or an early epoch), every seed.
TRANSFERS = {}
for _j in transfer_jobs(config):
    _source = "final" if _j["epoch"] is None else f"epoch{_j['epoch']}"
    TRANSFERS.setdefault(
        f"{model_path(_j['source'])}/transfer/{_j['study']}/{_source}", []
    ).append(_j)
REPORT_PDF = "results/report.pdf"
# The aggregated tables: everything figures and the report read (docs/architecture.md: figures and
# tables are made from aggregated CSVs only).
TABLES = {
    name: f"results/tables/{name}.{ext}"
    for name, ext in (
        ("metrics", "csv"),
        ("history", "csv"),
        ("transfer", "csv"),
        ("costs", "csv"),
        ("derived", "csv"),
        ("run_info", "json"),
    )
}
MODEL = "{dataset}/{arch}/{norm}/{regime}"


def _alternatives(names):
    return "|".join(sorted(map(str, names), key=len, reverse=True))


# Constraints from the config: every wildcard matches only names the config defines,
# so no two patterns can match the same path and every path stays under results/.
wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    arch=_alternatives(config["archs"]),
    norm=_alternatives({c["norm"] for c in TRAINED} or ["none"]),
    regime=_alternatives(config["regimes"]),
    seed=r"\d+",
    figure=_alternatives(FIGURE_STUDY),
    study=_alternatives(STUDIES),
    source=r"final|epoch\d+",


def json_arg(obj):
    """A value as one shell-quoted JSON argument."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


def per_seed(pattern):
    """A path pattern of one seed of the cell {dataset}/{arch}/{norm}/{regime}, for every seed of the config."""
    return [pattern.replace("{seed}", str(s)) for s in SEEDS]


def model_of(w):
    return dict(dataset=w.dataset, arch=w.arch, norm=w.norm, regime=w.regime)


def train_settings(w):
    model = model_of(w)
    return json_arg(
        training_settings(config, model, HISTORY.get(tuple(model.values()), set()))
    )


def model_file(c):
    return f"results/models/{cell_path(c)}/model.pt"


def derive_settings(w):
    """A derived dataset's settings as derive-data reads them: its source cell resolved (dataset included), the
    keys that only change training on it (``training``) left out, so they never rebuild it.
    """
    entry = dataset_settings(config["datasets"][w.dataset])
    return {**entry, "source": derived_source(config, w.dataset)}


def derive_inputs(w):
    """A derived dataset (E3/E4) is made from its base dataset with the model of its source cell."""
    d = config["datasets"][w.dataset]
    return {
        "base": f"results/data/{d['base']}.pt",
        "source": model_file(derived_source(config, w.dataset)),
    }


def transfer_group(w):
    return TRANSFERS[f"{model_path(model_of(w))}/transfer/{w.study}/{w.source}"]


def epoch_file(job):
    return f"results/models/{cell_path(job['source'])}/epochs/epoch{job['epoch']}.pt"


def transfer_out(job):
    source = "final" if job["epoch"] is None else f"epoch{job['epoch']}"
    return (
        f"results/eval/{cell_path(job['source'])}/transfer/{job['study']}/{source}.json"
    )


def transfer_inputs(w):
    """The source models (and their saved epoch for an early-stopped source), the targets, the data."""
    jobs = transfer_group(w)
    files = [model_file(j["source"]) for j in jobs]
    files += [model_file(c) for j in jobs for c in j["targets"]]
    files += [epoch_file(j) for j in jobs if j["epoch"] is not None]
    return {"models": sorted(set(files)), "data": f"results/data/{w.dataset}.pt"}


def transfer_plan(w):
    """Per seed: the source (and its early epoch), its targets, the output."""
    return json_arg(
        [
            {
                "source": model_file(j["source"]),
                "source_epoch": None if j["epoch"] is None else epoch_file(j),
                "targets": [model_file(c) for c in j["targets"]],
                "out": transfer_out(j),
            }
            for j in transfer_group(w)
        ]
    )


def transfer_settings(w):
    j = transfer_group(w)[0]
    return json_arg({**config["transfer"], "attack": j["attack"], "study": w.study})


def figure_targets():
    """The figures of the enabled studies (each study module lists its own, normrobust.studies)."""
    return [
        f"results/figures/{name}.pdf"
        for key, study in STUDIES.items()
        if key in ENABLED
        for name in study.FIGURES
    ]


def figure_inputs(w):
    """A figure reads only its own tables (and run_info.json); its study module is an input too, marked
    ancient: the module holds more than this figure, so its modification time would redraw every figure of
    the study. What redraws a figure when its code changes is the param `code` below (a rerun trigger).
    """
    study = FIGURE_STUDY[w.figure]
    return {
        "tables": [TABLES[t] for t in study.FIGURES[w.figure].tables]
        + [TABLES["run_info"]],
        "code": ancient(study.__file__),
    }


def figure_code(w):
    """A hash of the code that draws the figure (its function and the module functions it calls)."""
    return code_fingerprint(w.figure)


def figure_caption(w):
    """The figure's caption in Snakemake's HTML report, from its study module."""
    return FIGURE_STUDY[w.figure].FIGURES[w.figure].caption


def report_code():
    """What the claims and the report are made with: the study modules and their report fragments."""
    return [m.__file__ for m in STUDIES.values()] + [
        str(Path(workflow.basedir) / "paper" / "sections" / f"{key}.tex.j2")
        for key in STUDIES
    ]


def all_metrics():
    """Per-cell evaluation files: every cell's metrics, and AutoAttack's for the adversarially trained cells."""
    return [f"results/eval/{cell_path(c)}/metrics.json" for c in CELLS] + [
        f"results/eval/{cell_path(c)}/autoattack.json" for c in AUTOATTACK_CELLS
    ]


def all_histories():
    return [f"results/models/{cell_path(c)}/history.csv" for c in CELLS]


def all_derived():
    """The derived datasets' records (what derive-data measured), for the derived table."""
    return [f"results/data/{d}.json" for d in DERIVED]


def all_transfers():
    return [transfer_out(j) for jobs in TRANSFERS.values() for j in jobs]


def all_benchmarks():
    """Snakemake benchmark files of the compute jobs (wall time, memory), for the costs table."""
    return (
        [
            f"results/benchmarks/{'derive_data' if d in DERIVED else 'prepare_data'}/{d}.tsv"
            for d in DATASETS
        ]
        + [
            f"results/benchmarks/train/{m}.tsv"
            for m in dict.fromkeys(model_path(c) for c in TRAINED)
        ]
        + [
            f"results/benchmarks/evaluate/{m}.tsv"
            for m in dict.fromkeys(model_path(c) for c in CELLS)
        ]
        + [
            f"results/benchmarks/evaluate_autoattack/{m}.tsv"
            for m in dict.fromkeys(model_path(c) for c in AUTOATTACK_CELLS)
        ]
        + [f"results/benchmarks/transfer/{key}.tsv" for key in TRANSFERS]
    )


def _tables_made_by():
    """The config hash results/tables/run_info.json records (None when it records none or cannot be read)."""
    try:
        with open(TABLES["run_info"]) as f:
            return json.load(f).get("config_sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _tables_only():
    """True in a checkout that holds the aggregated tables of this config but no per-cell results, e.g. a fresh
    clone with results/tables/ copied in: figures and the paper are then built from the tables alone and nothing
    is trained (the aggregate rule is left out of the workflow). Tables that another config made (run_info.json
    records the config's hash) stop the run with one line: never a report of something else, and the tables are
    left as they are."""
    core = [TABLES[n] for n in ("metrics", "history", "transfer", "run_info")]
    per_cell = all_metrics() + all_histories() + all_transfers()
    if not all(Path(f).exists() for f in core) or any(
        Path(f).exists() for f in per_cell
    ):
        return False
    made_by, this = _tables_made_by(), config_hash(recorded_config(config))
    if made_by != this:
        found = (
            f"config {str(made_by)[:12]}" if made_by else "a config it does not record"
        )
        sys.exit(
            f"error: results/tables/ holds the tables of another run ({found}; this config is {this[:12]}) "
            "and none of this config's per-cell results exist; nothing was run or changed. To run this config, "
            f"move the old tables away first (mv results/tables results/tables-{str(made_by or 'old')[:12]}); to "
            'rebuild their figures and report, rerun with the config they record ("config" in '
            "results/tables/run_info.json)."
        )
    return True


TABLES_ONLY = _tables_only()
if TABLES_ONLY:
    print(
        "normrobust: results/tables/ holds the aggregated tables of this config and there are no per-cell "
        "results: figures and the report are built from the tables alone, nothing is trained. "
        "Delete results/tables/ to run the whole pipeline.",
        file=sys.stderr,
    )


def table_inputs():
    """The tables the plotting and report rules read; in tables-only mode only those present
    (an older results/tables/ may lack costs.csv: the report then says so)."""
    return [f for f in TABLES.values() if not TABLES_ONLY or Path(f).exists()]


# device: cuda on a machine that runs its jobs itself and shows no GPU: stop before any job. Here, not at parse
# time: only now does Snakemake say whether the jobs run here (not on a cluster's GPU nodes) and for real (a dry
# run plans, and onstart is not run for it).
onstart:
    if (
        str(config["device"]).startswith("cuda")
        and workflow.local_exec
        and not gpu.candidates()
    ):
        sys.exit(
            f"config error: device: '{config['device']}' asks for a GPU, but this machine shows none (nvidia-smi -L "
            f"lists none; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); nothing was "
            "run; allowed: auto (a GPU when there is one, else the CPU), cpu, cuda; or submit the jobs to GPU nodes "
            "with a profile (--workflow-profile workflow/profiles/slurm)"
        )
