"""The plan (normrobust.plan) and the results layout (normrobust.layout): the work a config asks for, as functions
pytest reaches; typed settings; compute jobs that load no reporting code."""

from __future__ import annotations

import ast
import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from normrobust import config
from normrobust.layout import WILDCARDS, Cell, Layout, Model, benchmark_key, cell_of, job_target, model_cell_named_by
from normrobust.plan import EXECUTION_KEYS, Plan, PlanError, study_models
from normrobust.settings import EXECUTION_ENV, EvalSettings, Execution, TrainSettings, TransferSettings


@pytest.fixture(scope="module")
def plan() -> Plan:
    return Plan(config.load(ROOT / "config.yaml"))


# ---------------------------------------------------------------------------------------------- layout

def test_layout_paths_round_trip():
    L, m = Layout(), Model("generated", "cnn", "bn", "standard")
    assert L.model_file(m, 1) == "results/models/generated/cnn/bn/standard/s1/model.pt"
    assert L.metrics_file(m, 0) == "results/eval/generated/cnn/bn/standard/s0/metrics.json"
    for path in (L.model_file(m, 3), L.history_file(m, 3), L.epoch_file(m, 3, 1), L.metrics_file(m, 3),
                 L.transfer_file(m, 3, "e9_transfer", "epoch1")):
        assert cell_of(path) == m.cell(3), path
    assert model_cell_named_by(L.epoch_file(m, 2, 1)) == m.cell(2)
    assert model_cell_named_by("/elsewhere/model.pt") is None
    assert job_target(L.transfer_file(m, 0, "e9_transfer", "final")) == f"{m.path}/transfer/e9_transfer/final"
    assert job_target(L.metrics_file(m, 1)) == m.path
    assert benchmark_key(L.benchmark("transfer", L.transfer_target(m, "e9", "final"))) == (
        "transfer", f"{m.path}/transfer/e9/final")
    assert L.model_file(WILDCARDS, "{seed}") == "results/models/{dataset}/{arch}/{norm}/{regime}/s{seed}/model.pt"
    assert Layout(root="elsewhere").table("metrics") == "elsewhere/tables/metrics.csv"
    # a regime named like a seed directory is still read back right (the seed is the last s<digits> part)
    assert cell_of(L.model_file(Model("generated", "cnn", "bn", "s5"), 0)) == Cell("generated", "cnn", "bn", "s5", 0)
    with pytest.raises(ValueError, match="not a file of a cell"):
        cell_of("results/tables/metrics.csv")


# ---------------------------------------------------------------------------------------------- the plan

def test_plan_of_the_default_config(plan):
    assert set(plan.studies) == set(plan.config["run"])
    assert len(plan.cells) == len(set(plan.cells)) == len(plan.models) * len(plan.seeds)
    assert set(plan.models) <= set(plan.trained)
    sources = {c.model for c in plan.sources}
    assert set(plan.trained) == set(plan.models) | sources, "derived datasets' source models are trained too"
    assert plan.datasets[0] == "generated" and set(plan.derived) == {"d_robust", "d_nonrobust", "d_rand", "d_det",
                                                                     "d_conflict"}
    assert plan.saved_epochs == (1,), "E9's early-stopped sources"
    # one transfer job per (source model, study, source), every seed
    for (model, study, source), jobs in plan.transfer_groups.items():
        assert [j.source.seed for j in jobs] == list(plan.seeds)
        assert all(j.source.model == model and j.study == study and j.source_name == source for j in jobs)
        assert all(t.seed == j.source.seed and t.dataset == j.source.dataset for j in jobs for t in j.targets)


def test_derived_readers_are_trained_and_inputs_of_derive_data(plan):
    """A derived dataset's held-out readers (robust, standard) are trained cells, their model files inputs of its
    derive_data job and their settings digests checked by it; a set without readers has neither."""
    cfg = copy.deepcopy(plan.config)
    readers = {"robust": {"arch": "cnn", "norm": "ln", "regime": "pgd_linf", "seed": 1},
               "standard": {"arch": "cnn", "norm": "ln", "regime": "standard", "seed": 0}}
    cfg["datasets"]["d_robust"]["readers"] = readers
    other = Plan(config.validate(cfg))
    cells = {k: Cell.of({"dataset": "generated", **r}) for k, r in readers.items()}
    assert not {c.model for c in cells.values()} & set(plan.trained), "no study trains them: only the readers ask"
    assert set(cells.values()) <= set(other.sources)
    assert {c.model for c in cells.values()} <= set(other.trained)
    assert set(other.trained) - set(plan.trained) == {c.model for c in cells.values()}
    inputs = other.derive_inputs("d_robust")
    L = other.layout
    assert {k: v for k, v in inputs.items() if k.startswith("readers_")} == {
        f"readers_{k}": L.model_file(c.model, c.seed) for k, c in cells.items()}
    assert inputs["source"] == plan.derive_inputs("d_robust")["source"]
    digest = {k: other.train_settings(c.model).digest() for k, c in cells.items()}
    assert other.reader_args("d_robust") == " ".join(  # derive-data's arguments: each file and its digest
        f"--reader {k}={L.model_file(c.model, c.seed)} --reader-trained-with {k}={digest[k]}" for k, c in cells.items())
    assert other.derive_settings("d_robust")["readers"] == readers
    assert other.reader_args("d_det") == "" and not any(k.startswith("readers_") for k in other.derive_inputs("d_det"))


def test_what_studies_declare_reaches_only_their_models(plan):
    e2 = set(study_models(plan.studies["e2_trajectories"]))
    e4 = set(study_models(plan.studies["e4_conflict"]))
    for model in plan.trained:
        hist = plan.train_settings(model).training.history
        assert (hist.attack is not None and hist.ligs) == (model in e2), model
    for model in plan.models:
        measures = set(plan.eval_settings(model).measures)
        assert ("shifted_acc" in measures) == (model in e4), model


def test_settings_round_trip_through_json(plan):
    model = plan.models[0]
    ts = plan.train_settings(model)
    assert TrainSettings.from_json(ts.to_json()) == ts
    assert json.loads(ts.to_json()) == json.loads(TrainSettings.from_json(ts.to_json()).to_json())
    ev = plan.eval_settings(model)
    assert EvalSettings.from_json(ev.to_json()) == ev
    assert [g.name for g in ev.attacks] == sorted(g.name for g in ev.attacks), "attack streams by name"
    tr = plan.transfer_settings("e10_fgsm")
    assert TransferSettings.from_json(tr.to_json()) == tr and tr.attack.type == "fgsm"
    assert plan.transfer_settings("e9_transfer").attack.spec == plan.config["transfer"]["attack"]


def test_the_ligs_sigma_default_is_typed_once():
    hits = [p for p in (ROOT / "src" / "normrobust").rglob("*.py") if re.search(r"ligs_sigma[\"']?\)?,? *0\.01|"
                                                                              r"get\(\"ligs_sigma\", 0\.01\)",
                                                                              p.read_text())]
    assert not hits, hits


def test_execution_details_are_not_settings(plan):
    cfg = copy.deepcopy(plan.config)
    cfg["evaluation"]["batch_size"] = 7
    cfg["evaluation"]["fast"] = {"channels_last": False}
    cfg["training"]["fast"] = {"channels_last": False}
    cfg["transfer"]["batch_size"] = 3
    cfg.update(device="cpu", gpu_slots=4, data_dir="/elsewhere")
    other = Plan(cfg)
    assert other.config_hash() == plan.config_hash()
    for m in plan.models:
        assert other.train_settings(m).to_json() == plan.train_settings(m).to_json()
        assert other.eval_settings(m).to_json() == plan.eval_settings(m).to_json()
    env = other.environment()
    ex = json.loads(env[EXECUTION_ENV])
    assert ex["eval_batch_size"] == 7 and ex["transfer_batch_size"] == 3 and ex["train_fast"]["channels_last"] is False
    assert env["NORMROBUST_DEVICE"] == "cpu" and env["NORMROBUST_GPU_SLOTS"] == "4"
    assert env["NORMROBUST_DATA"] == "/elsewhere"
    assert not set(EXECUTION_KEYS) & set(other.recorded_config())


def test_execution_from_the_environment(monkeypatch):
    monkeypatch.delenv(EXECUTION_ENV, raising=False)
    assert Execution.from_env() == Execution()
    monkeypatch.setenv(EXECUTION_ENV, Execution(eval_batch_size=9).to_json())
    assert Execution.from_env().eval_batch_size == 9
    monkeypatch.setenv(EXECUTION_ENV, "{not json")
    with pytest.raises(ValueError, match=EXECUTION_ENV):
        Execution.from_env()


def test_tables_only_mode(plan, tmp_path, monkeypatch):
    from fixture_tables import make_tables

    monkeypatch.chdir(tmp_path)
    assert not plan.tables_only(), "no tables: the whole pipeline"
    make_tables(tmp_path / "results" / "tables", plan.config)
    assert plan.tables_only()
    cell = plan.cells[0]
    Path(plan.layout.metrics_file(cell.model, cell.seed)).parent.mkdir(parents=True)
    Path(plan.layout.metrics_file(cell.model, cell.seed)).write_text("{}")
    assert not plan.tables_only(), "per-cell results: not tables-only"
    Path(plan.layout.metrics_file(cell.model, cell.seed)).unlink()
    info = json.loads((tmp_path / "results" / "tables" / "run_info.json").read_text())
    info["config_sha256"] = "f" * 64
    (tmp_path / "results" / "tables" / "run_info.json").write_text(json.dumps(info))
    with pytest.raises(PlanError, match=r"holds the tables of another run \(config ffffffffffff; this config is"):
        plan.tables_only()


# ---------------------------------------------------------------------------------------------- opt-in studies

def test_presets_name_the_studies_they_run(root):
    for preset in sorted((root / "workflow" / "presets").glob("*.yaml")):
        data = yaml.safe_load(preset.read_text())
        assert data.get("run"), f"{preset.name} names the studies it runs (run:)"
        assert not any("enabled" in (s or {}) for s in (data.get("studies") or {}).values()), preset.name


def test_run_names_only_known_studies_with_entries(root):
    cfg = yaml.safe_load((root / "config.yaml").read_text())
    bad = copy.deepcopy(cfg)
    bad["run"] = ["e1_norms", "e99_nope"]
    with pytest.raises(config.ConfigError, match=r"run\[1\]: 'e99_nope' is not allowed \(allowed: e1_norms, "):
        config.validate(bad)
    bad = copy.deepcopy(cfg)
    del bad["studies"]["e3_disentangled"]
    with pytest.raises(config.ConfigError, match="run: 'e3_disentangled' has no entry under studies"):
        config.validate(bad)


# ---------------------------------------------------------------------------------------------- structure

COMPUTE = ("normrobust.train", "normrobust.evaluate", "normrobust.transfer", "normrobust.evaluate_autoattack",
           "normrobust.data.derived", "normrobust.data.prepare")


@pytest.mark.parametrize("module", COMPUTE)
def test_a_compute_job_loads_no_reporting_code(module):
    """A fresh interpreter importing a compute command has no pandas, matplotlib, jinja2, shared analysis code or a
    study's analysis part in sys.modules."""
    code = (f"import sys, time; t = time.perf_counter(); import {module}; t = time.perf_counter() - t; "
            "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('pandas', 'matplotlib', 'jinja2') "
            "or k.startswith('normrobust.analysis') or (k.startswith('normrobust.studies.') and "
            "k.endswith('.analysis'))); print(len(sys.modules), round(t, 2), bad)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    n, seconds, bad = r.stdout.split(" ", 2)
    print(f"import {module}: {n} modules, {seconds}s")  # measured, not asserted
    assert bad.strip() == "[]", bad


#: path fragments of the results layout (file names alone, in messages and help, are no layout)
LAYOUT_FRAGMENTS = re.compile(r"(?<![\w/])results/|/s\{|epochs/epoch|/model\.pt|/metrics\.json|/history\.csv|"
                              r"/transfer/\{|models/\{|eval/\{")


def _code_strings(path: Path) -> list[str]:
    """The string constants of a module that are not docstrings (what builds paths, messages, help)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef,
                                                                          ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docs]


def test_no_results_layout_string_outside_the_plan():
    """The results layout is encoded once (normrobust.layout, used by the plan): no other module of the package
    and no rule builds a path of it."""
    src = ROOT / "src" / "normrobust"
    found = {}
    for p in src.rglob("*.py"):
        if p.name in ("layout.py", "plan.py") and p.parent == src:
            continue
        hits = [s for s in _code_strings(p) if LAYOUT_FRAGMENTS.search(s)]
        if hits:
            found[str(p.relative_to(ROOT))] = hits
    for p in [ROOT / "Snakefile", *(ROOT / "workflow" / "rules").glob("*.smk")]:
        text = "\n".join(ln for ln in p.read_text().splitlines() if not ln.lstrip().startswith("#"))
        if LAYOUT_FRAGMENTS.search(text.replace("results/tables/ holds", "")):
            found[str(p.relative_to(ROOT))] = LAYOUT_FRAGMENTS.findall(text)
    assert not found, found


def test_common_smk_is_thin():
    assert len((ROOT / "workflow" / "rules" / "common.smk").read_text().splitlines()) < 150


def test_a_study_can_exclude_cells_no_claim_reads():
    """E7's mixed and AdvProp regimes compare BN models only: {norm: none, regime: mixed} leaves the no-norm model
    out; an entry that matches none of the study's cells is refused, naming it."""
    import copy

    import yaml

    from normrobust.config import ConfigError, validate

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text())
    config["studies"]["e7_adv_training"]["exclude"] = [{"norm": "none", "regime": "mixed"},
                                                      {"norm": "none", "regime": "advprop"}]
    plan = Plan(validate(copy.deepcopy(config)))
    e7 = {(m.norm, m.regime) for m in study_models(plan.studies["e7_adv_training"])}
    assert ("none", "mixed") not in e7 and ("none", "advprop") not in e7 and ("bn", "mixed") in e7
    assert ("none", "pgd_linf") in e7 and len(e7) == 8
    config["studies"]["e7_adv_training"]["exclude"] = [{"norm": "none", "regime": "mixd"}]
    with pytest.raises(ConfigError, match=r"studies\.e7_adv_training\.exclude\[0\]: .*'mixd'.* matches none"):
        validate(config)
