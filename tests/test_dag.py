"""Dry runs of the DAG: every stage present, one training job per cell, bad config stops first."""

import re
import subprocess
import sys

import pytest
import yaml

from normrobust import cells, config
from normrobust.studies import FIGURE_STUDY, STUDIES


def dry_run(root, tmp_path, *args):
    cmd = [sys.executable, "-m", "snakemake", "-n", "-s", str(root / "Snakefile"), "-d", str(tmp_path), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def job_counts(output: str) -> dict:
    stats = output.split("Job stats:")[1].split("total")[0]
    return {m[0]: int(m[1]) for m in re.findall(r"^(\w+)\s+(\d+)$", stats, re.M)}


def test_default_dag_has_every_stage_and_one_training_job_per_cell(root, tmp_path):
    r = dry_run(root, tmp_path)
    assert r.returncode == 0, r.stderr + r.stdout
    counts = job_counts(r.stdout)
    with open(root / "config.yaml") as f:
        cfg = config.validate(yaml.safe_load(f))
    n_cells = len(cells.cells(cfg))
    assert n_cells >= 5 * 2 * 2
    assert set(cells.enabled_studies(cfg)) == set(STUDIES), "the default config enables every study"
    # one job per cell without its seed (it trains every seed), the derived datasets' source models included
    models = {cells.model_path(c) for c in cells.trained_cells(cfg)}
    assert counts["train"] == len(models) == n_cells // len(cfg["seeds"])
    assert counts["evaluate"] == len({cells.model_path(c) for c in cells.cells(cfg)})
    jobs = cells.transfer_jobs(cfg)
    assert counts["transfer"] == len(jobs) // len(cfg["seeds"])
    assert {j["study"] for j in jobs} == {"e9_transfer", "e10_fgsm"}
    assert any(j["epoch"] == 1 for j in jobs), "E9's early-stopped sources"
    assert all(t["regime"] == "standard" for j in jobs if j["study"] == "e9_transfer" for t in j["targets"])
    assert counts["prepare_data"] == 1
    assert counts["derive_data"] == 5, "E3's D_R, D_NR, D_rand, D_det and E4's conflict set"
    assert counts["figure"] == len(FIGURE_STUDY)
    for stage in ("aggregate", "claims", "render_report", "build_report", "all"):
        assert counts[stage] == 1, stage


def test_figures_target_stops_before_the_report(root, tmp_path):
    r = dry_run(root, tmp_path, "figures")
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["figure"] == len(FIGURE_STUDY) and "build_report" not in counts


def test_disabled_study_drops_its_jobs(root, tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("studies:\n  e9_transfer: {enabled: false}\n")
    r = dry_run(root, tmp_path, "--configfile", str(off))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    cfg = config.load(root / "config.yaml")
    assert counts["transfer"] == len([j for j in cells.transfer_jobs(cfg) if j["study"] == "e10_fgsm"]) // len(
        cfg["seeds"])  # a job handles every seed of its source cell
    assert counts["figure"] == len(FIGURE_STUDY) - len(STUDIES["e9_transfer"].FIGURES)
    off.write_text("studies:\n  e3_disentangled: {enabled: false}\n  e4_conflict: {enabled: false}\n")
    counts = job_counts(dry_run(root, tmp_path, "--configfile", str(off)).stdout)
    assert "derive_data" not in counts, "no study needs a derived dataset"


def test_one_at_a_time_design_and_dataset_lists(root):
    cfg = config.load(root / "config.yaml")
    e6 = cells.study_cells(cfg, cfg["studies"]["e6_factors"])
    pairs = {(c["arch"], c["regime"]) for c in e6}
    assert pairs == {("cnn", "standard"), ("cnn_wide", "standard"), ("cnn_deep", "standard"),
                     ("cnn_selu", "standard"), ("cnn", "wd_high"), ("cnn", "lr_high"), ("cnn", "adam"),
                     ("cnn", "adagrad")}
    assert len(e6) == len(pairs) * len(cfg["seeds"])
    e3 = cells.study_cells(cfg, cfg["studies"]["e3_disentangled"])
    assert {c["dataset"] for c in e3} == {"d_robust", "d_nonrobust", "d_rand", "d_det"}
    assert cells.needed_datasets(cfg)[0] == "generated" and "d_conflict" in cells.needed_datasets(cfg)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["datasets"]["d_conflict"].update(base="nope"), "datasets.d_conflict.base: 'nope' is not defined"),
    (lambda c: c["datasets"]["d_robust"].update(base="d_conflict"), "derives from"),
    (lambda c: c["datasets"]["d_rand"]["source"].update(arch="vgg99"), "datasets.d_rand.source.arch: 'vgg99'"),
    (lambda c: c["studies"]["e9_transfer"]["transfer"].update(targets=["adam"]),
     "studies.e9_transfer.transfer.targets: 'adam' is not a regime of the study"),
    (lambda c: c["studies"]["e9_transfer"]["transfer"].update(source_epochs=[99]),
     "studies.e9_transfer.transfer.source_epochs: epoch 99 is beyond training.epochs"),
    (lambda c: c["studies"]["e3_disentangled"].update(dataset=["d_robust", "d_nope"]),
     "studies.e3_disentangled.dataset: 'd_nope' is not defined"),
    (lambda c: c["regimes"]["adam"]["training"].update(optimizer="rmsprop"), "regimes.adam.training.optimizer"),
])
def test_study_config_errors_name_the_key(root, edit, message):
    with open(root / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    edit(cfg)
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.validate(cfg)


def test_bad_config_value_fails_before_any_job_naming_the_key(root, tmp_path):
    r = dry_run(root, tmp_path, "--config", "studies={'e1_norms': {'norms': ['bogus']}}")
    assert r.returncode != 0
    assert "config error: studies.e1_norms.norms[0]: 'bogus' is not allowed (allowed: none, bn, ln, in, gn, fixup)" \
        in r.stderr
    assert "Job stats" not in r.stdout


def test_unknown_config_key_fails_naming_it(root, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  lr_decay: 3\n")
    r = dry_run(root, tmp_path, "--configfile", str(bad))
    assert r.returncode != 0
    assert "config error: training: unknown key 'lr_decay'" in r.stderr


def test_paper_preset_plans_every_cell_without_any_data(root, tmp_path):
    r = dry_run(root, tmp_path, "--configfile", str(root / "workflow" / "presets" / "paper-cifar10.yaml"))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    train = re.findall(r"output: results/models/cifar10/(\w+)/(\w+)/(\w+)/s\d+/model\.pt", r.stdout)
    archs, norms, regimes = ({t[i] for t in train} for i in range(3))
    assert len(archs) >= 2 and norms == {"none", "bn", "ln", "in", "gn"} and len(regimes) >= 5
    assert counts["train"] >= 2 * 5 * 5
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("preset", ["mnist-quick", "fgsm-mnist", "gpu-quick"])
def test_every_preset_validates_and_plans(root, tmp_path, preset):
    r = dry_run(root, tmp_path, "--configfile", str(root / "workflow" / "presets" / f"{preset}.yaml"))
    assert r.returncode == 0, r.stderr
    assert job_counts(r.stdout)["train"] >= 4


def test_editing_one_figure_function_redraws_that_figure_only(tmp_path):
    """The figure rule's inputs are its study module and the tables it reads; the drawing code's hash is a param:
    editing fig_conflict redraws conflict.pdf alone, editing a claim of the same module redraws no figure."""

    from conftest import copy_checkout, copy_tables_of_config, snakemake_in

    repo, wd = copy_checkout(tmp_path / "repo"), tmp_path / "wd"
    copy_tables_of_config(wd / "results" / "tables")  # tables only: figures need no training
    r = snakemake_in(repo, wd, "figures")
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list((wd / "results" / "figures").glob("*.pdf"))) == len(FIGURE_STUDY)
    assert "Nothing to be done" in snakemake_in(repo, wd, "figures").stderr

    module = repo / "src" / "normrobust" / "studies" / "e4_conflict.py"
    text = module.read_text()
    edited = text.replace('ax.set_title("accuracy on the real test set")', 'ax.set_title("accuracy, real test set")')
    assert edited != text
    module.write_text(edited)
    r = snakemake_in(repo, wd, "figures")
    assert r.returncode == 0, r.stderr[-3000:]
    assert re.findall(r"wildcards: figure=(\w+)", r.stderr + r.stdout) == ["conflict"]

    module.write_text(edited.replace('TAG}-{norm}-t{sfx}"', 'TAG}-{norm}-t-labels{sfx}"'))  # a claim, not a figure
    r = snakemake_in(repo, wd, "-n", "figures")
    assert "Nothing to be done" in r.stdout + r.stderr, r.stdout[-2000:]
    with open(wd / "results" / "tables" / "transfer.csv", "a") as f:  # a table only E9 and E10 figures read
        f.write("\n")
    r = snakemake_in(repo, wd, "-n", "figures")
    assert sorted(re.findall(r"wildcards: figure=(\w+)", r.stdout + r.stderr)) == ["fgsm", "transfer_heatmap",
                                                                               "transfer_sources"]


def test_paper_preset_measures_per_epoch_only_what_a_study_reads(root):
    """History settings belong to the studies that read them: E2's cells keep [B]'s full per-epoch measurement,
    every other cell's per-epoch work falls (only the loss and clean accuracy)."""
    from normrobust.studies import HISTORY_READS

    with open(root / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    with open(root / "workflow" / "presets" / "paper-cifar10.yaml") as f:
        preset = yaml.safe_load(f)

    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k) or {}, v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    cfg = config.validate(merge(cfg, preset))
    needs = cells.history_needs(cfg, HISTORY_READS)
    full = cells.history_passes({**cfg["training"]["history"], "ligs": True})
    e2 = set(cells.study_models(cfg["studies"]["e2_trajectories"]))
    before = after = 0
    for c in cells.trained_cells(cfg):
        model = tuple(c[k] for k in cells.MODEL_KEYS)
        hist = cells.training_history(cfg, needs.get(model, set()))
        passes = cells.history_passes(hist)
        before, after = before + full, after + passes
        if model in e2:
            assert hist == {**cfg["training"]["history"], "ligs": True} and passes == full, model
        elif not needs.get(model):
            assert passes < full and "attack" not in hist and not hist["ligs"], model
    epochs = cfg["training"]["epochs"]
    print(f"paper preset, per-epoch history: {before * epochs:.3g} image passes before, {after * epochs:.3g} after")
    assert after < before / 2
