"""The command line a person uses: --version, one-line errors, one cell outside Snakemake, GPUs used or refused."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import normrobust_cli
from normrobust import __version__

ROOT = Path(__file__).resolve().parents[1]
CELL = "generated/cnn/none/standard/s0"  # a cell of the default config (E2, E7)


def test_version():
    r = normrobust_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"normrobust {__version__}"


@pytest.mark.parametrize("args,message", [
    (["train", "--settings", "{}", "--data", "x.pt", "--out", "o", "--seeds", "0"],
     "--settings: not the training settings the workflow writes (KeyError: 'model')"),
    (["train", "--settings", "{", "--data", "x.pt", "--out", "o", "--seeds", "0"], "--settings: not valid JSON"),
    (["train", "--data", "x.pt"], "--settings, --out, --seeds required (or --config FILE --cell"),
    (["train", "--config", "config.yaml", "--cell", "generated/cnn/bogus/standard/s0"],
     "--cell: 'generated/cnn/bogus/standard/s0' is not a cell this config trains"),
    (["train", "--config", "config.yaml", "--cell", "generated/cnn"], "is not of the form dataset/arch/norm/regime/s<"),
    (["train", "--config", "nope.yaml", "--cell", CELL], "--config: nope.yaml not found"),
    (["evaluate", "--config", "config.yaml", "--cell", CELL], "model: results/models/generated/cnn/none/standard/s0"),
    (["evaluate", "--model", "m.pt", "--data", "d.pt", "--settings", '{"n_test": 5, "attacks": {}}', "--out",
      "o.json"], "DatasetFileError: d.pt not found; make it first (snakemake d.pt)"),
    (["evaluate", "--model", "m.pt", "--data", "d.pt", "--settings", "{}", "--out", "o.json"],
     "--settings: not the evaluation settings the workflow writes (KeyError: 'n_test')"),
])
def test_bad_input_gives_one_line(tmp_path, args, message):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    r = normrobust_cli(*args, cwd=tmp_path)
    # what is left once the lease log and argparse's usage (first line "usage:", then indented) are dropped
    lines = [ln for ln in r.stderr.splitlines()
             if ln.strip() and "] gpu: " not in ln and not ln.startswith(("usage:", " "))]
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA is unusable")
def test_a_job_bound_to_a_gpu_it_cannot_use_stops_saying_what_it_found():
    """Under SLURM with a GPU bound (or a local lease), device auto never falls back to the CPU silently."""
    env = {**os.environ, "SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "0"}
    code = ("from normrobust.__main__ import take_gpu_lease; take_gpu_lease('train'); "
            "from normrobust.utils import pick_device; pick_device('auto')")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    last = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert last.startswith("device: this job holds GPU 0 (SLURM job 4242) but CUDA is unusable"), last
    assert "torch.cuda.device_count()=0" in last and "built for CUDA" in last and "driver:" in last
    env.pop("SLURM_JOB_ID")  # no SLURM, and no GPU on this machine: no lease, so the CPU is right
    env["CUDA_VISIBLE_DEVICES"] = ""
    r = subprocess.run([sys.executable, "-c", code.replace("pick_device('auto')", "print(pick_device('auto'))")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "cpu", r.stderr


def _provided(wd: Path, env: dict, *extra: str) -> str:
    """The resources Snakemake says it was given, on a run that makes the generated dataset."""
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(wd), "--cores",
                        "1", "results/data/generated.pt", *extra], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return next((ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("Provided resources")), "")


def test_without_resources_gpu_jobs_are_limited_to_the_gpus_found(tmp_path):
    """Two devices (emulated with CUDA_VISIBLE_DEVICES), gpu_slots 1: at most 2 GPU jobs at once, by default; with
    no GPU the limit is --cores alone; --resources gpu=N wins."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0,1"}
    env.pop("NORMROBUST_GPU_SLOTS", None)
    assert re.search(r"gpu=(Resource\(\"gpu\", )?2\b", _provided(tmp_path / "a", env))
    assert re.search(r"gpu=(Resource\(\"gpu\", )?5\b", _provided(tmp_path / "b", env, "--resources", "gpu=5"))
    assert "gpu" not in _provided(tmp_path / "c", {**env, "CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.slow
def test_one_cell_by_hand_matches_the_pipeline(tmp_path):
    """train and evaluate --config config.yaml --cell ...: the same model, history and metrics as the workflow."""
    wf, hand = tmp_path / "workflow", tmp_path / "by-hand"
    metrics = f"results/eval/{CELL}/metrics.json"
    r = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(wf), "--cores",
                        "2", metrics], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    (hand / "results" / "data").mkdir(parents=True)
    shutil.copy(wf / "results" / "data" / "generated.pt", hand / "results" / "data" / "generated.pt")
    for command in ("train", "evaluate"):
        r = normrobust_cli(command, "--config", str(ROOT / "config.yaml"), "--cell", CELL, cwd=hand)
        assert r.returncode == 0, r.stderr[-3000:]
    a, b = (torch.load(d / "results" / "models" / CELL / "model.pt", weights_only=True) for d in (wf, hand))
    assert a["settings"] == b["settings"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    ha, hb = (pd.read_csv(d / "results" / "models" / CELL / "history.csv").drop(columns="seconds") for d in (wf, hand))
    pd.testing.assert_frame_equal(ha, hb)
    ma, mb = (json.loads((d / metrics).read_text()) for d in (wf, hand))
    assert ma["rows"] == mb["rows"] and len(ma["rows"]) >= 9  # clean, 6 robust, noise, LIGS
