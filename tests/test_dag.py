"""Dry runs of the DAG: every stage present, one training job per cell, bad config stops first."""

import re
import subprocess
import sys

import pytest
import yaml

from normrobust import config
from normrobust.plan import Plan, history_passes, study_cells, study_models
from normrobust.studies import STUDIES, analysis, figure_studies

FIGURE_STUDY = figure_studies()


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
        plan = Plan(config.validate(yaml.safe_load(f)))
    n_cells = len(plan.cells)
    assert n_cells >= 5 * 2 * 2
    assert set(plan.studies) == set(STUDIES), "the default config runs every study"
    # one job per model (it trains every seed), the derived datasets' source models included
    assert counts["train"] == len(plan.trained) == n_cells // len(plan.seeds)
    assert counts["evaluate"] == len(plan.models)
    jobs = plan.transfer_jobs
    assert counts["transfer"] == len(plan.transfer_groups) == len(jobs) // len(plan.seeds)
    assert {j.study for j in jobs} == {"e9_transfer", "e10_fgsm"}
    assert any(j.epoch == 1 for j in jobs), "E9's early-stopped sources"
    assert all(t.regime == "standard" for j in jobs if j.study == "e9_transfer" for t in j.targets)
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


def test_a_study_not_run_drops_its_jobs(root, tmp_path):
    plan = Plan(config.load(root / "config.yaml"))
    off = tmp_path / "off.yaml"
    off.write_text(f"run: {[k for k in plan.studies if k != 'e9_transfer']}\n")
    r = dry_run(root, tmp_path, "--configfile", str(off))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["transfer"] == len([k for k in plan.transfer_groups if k[1] == "e10_fgsm"])
    assert counts["figure"] == len(FIGURE_STUDY) - len(analysis("e9_transfer").FIGURES)
    off.write_text(f"run: {[k for k in plan.studies if k not in ('e3_disentangled', 'e4_conflict')]}\n")
    counts = job_counts(dry_run(root, tmp_path, "--configfile", str(off)).stdout)
    assert "derive_data" not in counts, "no study needs a derived dataset"


def test_enabled_is_refused_with_the_new_way(root):
    with open(root / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg["studies"]["e9_transfer"]["enabled"] = False
    with pytest.raises(config.ConfigError, match=r"studies.e9_transfer.enabled: a study runs when the config lists "
                                                 r"it under run"):
        config.validate(cfg)


def test_one_at_a_time_design_and_dataset_lists(root):
    cfg = config.load(root / "config.yaml")
    e6 = study_cells(cfg, cfg["studies"]["e6_factors"])
    pairs = {(c.arch, c.regime) for c in e6}
    assert pairs == {("cnn", "standard"), ("cnn_wide", "standard"), ("cnn_deep", "standard"),
                     ("cnn_selu", "standard"), ("cnn", "wd_high"), ("cnn", "lr_high"), ("cnn", "adam"),
                     ("cnn", "adagrad")}
    assert len(e6) == len(pairs) * len(cfg["seeds"])
    e3 = study_cells(cfg, cfg["studies"]["e3_disentangled"])
    assert {c.dataset for c in e3} == {"d_robust", "d_nonrobust", "d_rand", "d_det"}
    datasets = Plan(cfg).datasets
    assert datasets[0] == "generated" and "d_conflict" in datasets


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

    module = repo / "src" / "normrobust" / "studies" / "e4_conflict" / "analysis.py"
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
    """History settings belong to the studies that read them: E2's models keep [B]'s full per-epoch measurement,
    every other model's per-epoch work falls (only the loss and clean accuracy)."""
    from fixture_tables import load_config
    from normrobust.settings import History

    plan = Plan(load_config(root / "workflow" / "presets" / "paper-cifar10.yaml"))
    h = plan.config["training"]["history"]
    full = History.from_dict({**h, "ligs": True})
    e2 = set(study_models(plan.studies["e2_trajectories"]))
    before = after = 0
    for model in plan.trained:
        hist = plan.train_settings(model).training.history
        passes = history_passes(hist)
        before, after = before + history_passes(full), after + passes
        if model in e2:
            assert hist == full and passes == history_passes(full), model
        elif not plan.history_needs.get(model):
            assert passes < history_passes(full) and hist.attack is None and not hist.ligs, model
    epochs = plan.config["training"]["epochs"]
    print(f"paper preset, per-epoch history: {before * epochs:.3g} image passes before, {after * epochs:.3g} after")
    assert after < before / 2
