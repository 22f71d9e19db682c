"""Bad input: a clear error naming the setting, before any job, and nothing already computed is lost."""

import re
import subprocess
import sys

import pytest
import torch

from normrobust import gpu
from normrobust.models.load import load_model

CASES = {
    "unknown norm": ("studies:\n  e1_norms: {norms: [batchnorm]}\n",
                     "studies.e1_norms.norms[0]: 'batchnorm' is not allowed (allowed: none, bn, ln, in, gn, fixup)"),
    "unknown regime": ("studies:\n  e1_norms: {regimes: [standard, madry]}\n",
                       "studies.e1_norms.regimes: 'madry' is not defined under regimes (allowed: standard, pgd_linf, "
                       "pgd_small, fgsm, mixed, advprop, ligs_w1, ligs_w10, wd_high, lr_high, adam, adagrad)"),
    "unknown arch": ("studies:\n  e1_norms: {archs: [resnet50]}\n",
                     "studies.e1_norms.archs: 'resnet50' is not defined under archs (allowed: cnn, resnet, cnn_wide, "
                     "cnn_deep, cnn_selu, softmax, maxout)"),
    "unknown arch kind": ("archs:\n  cnn: {kind: mlp}\n", "archs.cnn.kind: 'mlp' is not allowed (allowed: cnn, resnet"),
    "unknown dataset": ("studies:\n  e1_norms: {dataset: imagenet}\n",
                        "studies.e1_norms.dataset: 'imagenet' is not defined under datasets (allowed: generated, "
                        "d_robust, d_nonrobust, d_rand, d_det, d_conflict)"),
    "unknown dataset kind": ("datasets:\n  generated: {kind: imagenet}\n",
                             "datasets.generated.kind: 'imagenet' is not allowed (allowed: generated, mnist, "
                             "fashion_mnist, cifar10, svhn, derived)"),
    "unknown study": ("studies:\n  e11_bogus: {dataset: generated, archs: [cnn], norms: [bn], regimes: [standard]}\n",
                      "studies: unknown key 'e11_bogus' (allowed: e10_fgsm, e1_norms, e2_trajectories, "
                      "e3_disentangled, e4_conflict, e5_synthetic, e6_factors, e7_adv_training, e8_ligs_reg, "
                      "e9_transfer)"),
    "negative eps": ("regimes:\n  pgd_linf: {attack: {eps: -8}}\n",
                     "regimes.pgd_linf.attack.eps: -8 is less than or equal to the minimum of 0"),
    "absurd eps": ("regimes:\n  pgd_linf: {attack: {eps: 200}}\n",
                   "regimes.pgd_linf.attack.eps: 200 (= 200/255) is absurd; L∞ eps is in 1/255 steps, allowed (0, 80]"),
    "eps in [0,1] units": ("evaluation:\n  attacks:\n    pgd_linf: {eps: [0.03]}\n",
                           "evaluation.attacks.pgd_linf.eps: 0.03 looks like [0,1] units; L∞ eps is in 1/255 steps"),
    "zero epochs": ("training: {epochs: 0}\n", "training.epochs: 0 is less than the minimum of 1"),
    "batch larger than the dataset": ("training: {batch_size: 8192}\n",
                                      "training.batch_size: 8192 is larger than the training set of dataset "
                                      "'generated' (2000 images); allowed 1..2000"),
    "NaN learning rate": ("training: {lr: .nan}\n", "training.lr: nan is not a finite number"),
    "infinite eps": ("evaluation:\n  attacks:\n    pgd_l2: {eps: [.inf]}\n",
                     "evaluation.attacks.pgd_l2.eps[0]: inf is not a finite number"),
    "a block that is not a mapping": ("training: 5\n", "training: 5 is not of type 'object'"),
    "more images than the dataset holds": ("datasets:\n  mnist: {kind: mnist, n_train: 70000}\n",
                                           "datasets.mnist.n_train: 70000 is more than mnist's train split holds "
                                           "(60000 images); allowed 1..60000"),
    "study cell without a regime": ("studies:\n  e9_transfer: {regimes: [madry]}\n",
                                    "studies.e9_transfer.regimes: 'madry' is not defined under regimes"),
}


@pytest.fixture
def workdir(tmp_path):
    """A working directory holding finished work: a trained cell and a table."""
    done = tmp_path / "results" / "models" / "generated" / "cnn" / "bn" / "standard" / "s0"
    done.mkdir(parents=True)
    (done / "history.csv").write_text("epoch,lr\n1,0.05\n")
    (tmp_path / "results" / "tables").mkdir()
    (tmp_path / "results" / "tables" / "metrics.csv").write_text("dataset,value\ngenerated,0.5\n")
    return tmp_path


def snapshot(wd):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (wd / "results").rglob("*") if p.is_file()}


def run_with(root, workdir, *config_args: str) -> subprocess.CompletedProcess:
    """A real run (not a dry run) in ``workdir`` with the bad settings."""
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(root / "Snakefile"), "-d", str(workdir),
                           "--cores", "1", *config_args], capture_output=True, text=True, timeout=120)


def assert_stopped_by_config_error(r: subprocess.CompletedProcess, message: str) -> None:
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("config error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr[-2000:]


@pytest.mark.parametrize("case", CASES)
def test_bad_config_stops_before_any_job_naming_the_setting(root, workdir, case):
    text, message = CASES[case]
    bad = workdir / "bad.yaml"
    bad.write_text(text)
    before = snapshot(workdir)
    assert_stopped_by_config_error(r := run_with(root, workdir, "--configfile", str(bad)), message)
    assert "Job stats" not in r.stdout + r.stderr
    assert snapshot(workdir) == before, "finished work must stay as it was"


COMMAND_LINE = {
    "training=5": "training: 5 is not of type 'object'",
    "evaluation=[1]": "evaluation: ['1'] is not of type 'object'",
    "device=cuda": "device: 'cuda' asks for a GPU, but this machine shows none",
}


@pytest.mark.parametrize("setting", COMMAND_LINE)
def test_bad_command_line_config_stops_before_any_job(root, workdir, setting):
    if setting == "device=cuda" and gpu.candidates():
        pytest.skip("this machine has a GPU")
    before = snapshot(workdir)
    r = run_with(root, workdir, "--config", setting)
    assert_stopped_by_config_error(r, COMMAND_LINE[setting])
    assert "AttributeError" not in r.stderr
    assert not re.search(r"^rule \w+:", r.stdout + r.stderr, re.M), "no job started"
    assert snapshot(workdir) == before, "finished work must stay as it was"


def test_results_directory_that_cannot_be_written(root, tmp_path):
    (tmp_path / "results").write_text("not a directory")
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(root / "Snakefile"), "-d",
                        str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert f"error: results directory '{tmp_path / 'results'}' is not writable" in r.stderr
    assert (tmp_path / "results").read_text() == "not a directory"


def test_damaged_model_file_names_itself_and_the_fix(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}}, path)
    path.write_bytes(path.read_bytes()[:20])  # truncated
    with pytest.raises(SystemExit, match=rf"{path} is damaged or not a normrobust model .*; delete it"):
        load_model(path)
