"""A training job killed with SIGKILL mid-run resumes from its last epoch and ends bit-identical."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import torch

CELL = "results/models/generated/cnn/bn/pgd_linf/s0"
CONFIG = """
seeds: [0]
datasets:
  generated: {n_train: 1000, n_test: 300}  # evaluation and transfer read 300 test images (config.yaml)
training:
  epochs: 6
  batch_size: 50
  schedule: {kind: multistep, milestones: [4], gamma: 0.1}
  history: {n_test: 50}
"""


def snakemake(root, wd, *args, **kw):
    cmd = [sys.executable, "-m", "snakemake", f"{CELL}/model.pt", *args, "-s", str(root / "Snakefile"),
           "-d", str(wd), "--cores", "1", "--configfile", str(wd.parent / "resume.yaml")]
    return cmd if kw.get("cmd_only") else subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def test_sigkill_mid_training_then_rerun_incomplete_matches_an_uninterrupted_run(root, tmp_path):
    (tmp_path / "resume.yaml").write_text(CONFIG)
    full, killed = tmp_path / "full", tmp_path / "killed"
    full.mkdir(), killed.mkdir()
    assert snakemake(root, full).returncode == 0

    proc = subprocess.Popen(snakemake(root, killed, cmd_only=True), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    ckpt = killed / CELL / "checkpoint.pt"
    deadline = time.time() + 300
    while time.time() < deadline:
        if ckpt.exists() and torch.load(ckpt, weights_only=True)["epoch"] >= 2:
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and the training job, at once
    proc.wait()
    last = torch.load(ckpt, weights_only=True)["epoch"]
    assert 2 <= last < 6
    assert not (killed / CELL / "model.pt").exists()

    assert snakemake(root, killed, "--unlock").returncode == 0
    r = snakemake(root, killed, "--rerun-incomplete")
    assert r.returncode == 0, r.stderr[-3000:]
    log = (killed / "results/logs/train/generated/cnn/bn/pgd_linf.log").read_text()
    assert f"resuming after epoch {last}" in log

    a = torch.load(full / CELL / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed / CELL / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ha = pd.read_csv(full / CELL / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(killed / CELL / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)
    # the saved epoch (E9's early-stopped source) that Snakemake deleted with the incomplete job's outputs
    # is written again from the resume state
    ea = torch.load(full / CELL / "epochs" / "epoch1.pt", weights_only=True)["state_dict"]
    eb = torch.load(killed / CELL / "epochs" / "epoch1.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
