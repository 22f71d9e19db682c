"""Dry runs of the DAG: every stage present, one training job per cell, bad config stops first."""

import re
import subprocess
import sys

import pytest
import yaml

from normrobust import config as C


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
        cfg = C.validate(yaml.safe_load(f))
    n_cells = len(C.cells(cfg))
    assert n_cells >= 5 * 2 * 2
    assert counts["train"] == n_cells
    assert counts["evaluate"] == n_cells
    assert counts["transfer"] == len(C.study_cells(cfg, cfg["studies"]["e9_transfer"]))
    assert counts["prepare_data"] == 1
    assert counts["figure"] == 5
    for stage in ("aggregate", "claims", "render_report", "build_report", "all"):
        assert counts[stage] == 1, stage


def test_figures_target_stops_before_the_report(root, tmp_path):
    r = dry_run(root, tmp_path, "figures")
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert counts["figure"] == 5 and "build_report" not in counts


def test_disabled_study_drops_its_jobs(root, tmp_path):
    off = tmp_path / "off.yaml"
    off.write_text("studies:\n  e9_transfer: {enabled: false}\n")
    r = dry_run(root, tmp_path, "--configfile", str(off))
    assert r.returncode == 0, r.stderr
    counts = job_counts(r.stdout)
    assert "transfer" not in counts and counts["figure"] == 4


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
