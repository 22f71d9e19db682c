# What Snakemake needs and nothing more: the config checked, the plan built (normrobust.plan decides the work:
# cells, jobs, the results layout, tables-only mode, the jobs' environment), wildcard constraints, small get_*
# input functions.
#
# `snakemake --lint` reports two kinds of warnings for every rule; both are deliberate
# (tests/test_quality.py fails on any other lint):
#  * "Specify a conda environment or container for each rule": the whole workflow runs in the
#    one Python environment that scripts/bootstrap.sh makes from constraints.txt (pinned); a
#    per-rule conda env would install torch (GBs) once per rule for no gain.
#  * "Shell command directly uses variable PY from outside of the rule": PY is the absolute path
#    of the interpreter running Snakemake, so every job uses the same environment. As a param it
#    would make Snakemake rerun every job whenever the checkout moves (params are a rerun trigger).

import json
import os
import shlex

from normrobust import cell_lock, gpu
from normrobust.config import ConfigError, check_writable, validate
from normrobust.figures import code_fingerprint
from normrobust.layout import WILDCARDS, Model
from normrobust.plan import TABLES_ONLY_NOTE, Plan, PlanError
from normrobust.studies import STUDIES, figure_studies

try:
    validate(config)
    check_writable("results")
    PLAN = Plan(config)
    TABLES_ONLY = PLAN.tables_only()
except (ConfigError, PlanError) as e:
    sys.exit(f"{'config error' if isinstance(e, ConfigError) else 'error'}: {e}")
L = PLAN.layout
PY = shlex.quote(sys.executable)
MODEL = WILDCARDS  # the rules' {dataset}/{arch}/{norm}/{regime}
# Execution details (device, GPU slots, data directory, batch sizes, fast path) reach the jobs through the
# environment, never a param: changing them replans nothing. The workflow sets these variables, it does not read
# them, so they are not `envvars:` entries.
os.environ.update(PLAN.environment())
# Without --resources gpu=N, a local run allows as many GPU jobs at once as this machine has GPU slots (devices
# x gpu_slots); with no GPU found, GPU jobs run on the CPU and only --cores limits them.
if workflow.local_exec and "gpu" not in workflow.global_resources:
    if _slots := len(gpu.candidates()) * gpu.slots_per_device():
        workflow.register_resource("gpu", _slots)
if TABLES_ONLY:
    print(TABLES_ONLY_NOTE, file=sys.stderr)


def _alternatives(names):
    return "|".join(sorted(map(str, names), key=len, reverse=True)) or "__none__"


# Every wildcard matches only names the config defines, so no two patterns can match the same path.
wildcard_constraints:
    dataset=_alternatives(config["datasets"]),
    arch=_alternatives(config["archs"]),
    norm=_alternatives({m.norm for m in PLAN.trained} or ["none"]),
    regime=_alternatives(config["regimes"]),
    seed=r"\d+",
    figure=_alternatives(figure_studies()),
    study=_alternatives(STUDIES),
    source=r"final|epoch\d+",


def per_seed(path, *args):
    """``path(MODEL, seed, *args)`` for every seed of the config (a job handles every seed of one model)."""
    return [path(MODEL, s, *args) for s in PLAN.seeds]


def json_arg(text):
    return shlex.quote(text)


def model_of(w):
    return Model(w.dataset, w.arch, w.norm, w.regime)


def get_train_settings(w):
    return json_arg(PLAN.train_settings(model_of(w)).to_json())


def get_eval_settings(w):
    return json_arg(PLAN.eval_settings(model_of(w)).to_json())


def get_trained_with(w):
    return PLAN.train_settings(model_of(w)).digest()


def get_derive_inputs(w):
    return PLAN.derive_inputs(w.dataset)


def get_transfer_inputs(w):
    return PLAN.transfer_inputs((model_of(w), w.study, w.source))


def get_transfer_plan(w):
    return json_arg(json.dumps(PLAN.transfer_plan((model_of(w), w.study, w.source))))


def get_figure_inputs(w):
    """A figure reads only its own tables (and run_info.json); its study's analysis part is an input too, marked
    ancient: the module holds more than this figure, so its modification time would redraw every figure of the
    study. What redraws a figure when its code changes is the param `code` (a rerun trigger).
    """
    study = figure_studies()[w.figure]
    tables = list(study.FIGURES[w.figure].tables) + ["run_info"]
    return {"tables": [L.table(t) for t in tables], "code": ancient(study.__file__)}


def get_figure_code(w):
    """A hash of the code that draws the figure (its function and the module functions it calls)."""
    return code_fingerprint(w.figure)


def get_tables():
    return PLAN.tables(present_only=TABLES_ONLY)


onstart:
    # Checked here, not at parse time: only now does Snakemake say whether the jobs run here and for real (a dry
    # run plans, and onstart is not run for it). A live trainer's cell stops the run before Snakemake can clean
    # any of its files; device: cuda without a GPU stops before any job.
    try:
        cell_lock.check_free(
            [L.cell_dir(m, s) for m in PLAN.trained for s in PLAN.seeds]
        )
    except cell_lock.CellLocked as e:
        sys.exit(f"{e}; nothing was run or removed")
    if (
        config["device"].startswith("cuda")
        and workflow.local_exec
        and not gpu.candidates()
    ):
        sys.exit(
            f"config error: device: '{config['device']}' asks for a GPU, but this machine shows none (nvidia-smi "
            f"-L lists none; CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); nothing was "
            "run; allowed: auto (a GPU when there is one, else the CPU), cpu, cuda; or submit the jobs to GPU "
            "nodes with a profile (--workflow-profile workflow/profiles/slurm)"
        )
