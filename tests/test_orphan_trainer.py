"""The README's recovery after Snakemake itself was killed, with its trainer still alive: the rerun is refused before
Snakemake can clean anything, every file of the live cell stays as it is, and the live trainer finishes. (The trainer
runs about a minute: long enough for the rerun to meet it alive.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow

CONFIG = """\
seeds: [0]
datasets:
  generated: {n_train: 2000, n_test: 100}
training:
  epochs: 250
  batch_size: 50
  schedule: {kind: constant}
  save_epochs: [1]
  history: {n_test: 20}
evaluation:
  n_test: 50
  attacks:
    pgd_linf: {type: pgd, norm: linf, eps: [4], rel_step: 0.3, steps: 2}
  noise_std: []
  headline: {attack: pgd_linf, eps: 4}
run: [e1_norms]
studies:
  e1_norms: {dataset: generated, archs: [cnn], norms: [none], regimes: [standard]}
"""
CELL = "results/models/generated/cnn/none/standard/s0"


def _snakemake(wd: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", *args, "-s", str(ROOT / "Snakefile"), "-d", str(wd), "--cores", "1",
            "--configfile", str(wd / "orphan.yaml")]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}


def _trainer_pid(wd: Path) -> int | None:
    lock = wd / CELL / ".train.lock"
    try:
        parts = lock.read_text().split()
    except OSError:
        return None
    return int(parts[0]) if parts else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_rerun_never_cleans_a_live_trainers_cell(tmp_path):
    wd = tmp_path
    (wd / "orphan.yaml").write_text(CONFIG)
    target = f"{CELL}/model.pt"
    first = subprocess.Popen(_snakemake(wd, target), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    cell = wd / CELL
    try:
        deadline = time.time() + 300
        while not (cell / "epochs" / "epoch1.pt").exists() or _trainer_pid(wd) is None:
            assert first.poll() is None and time.time() < deadline, "the trainer did not get going"
            time.sleep(0.5)
        trainer = _trainer_pid(wd)
        os.kill(first.pid, signal.SIGKILL)  # Snakemake alone: its training job lives on as an orphan
        first.wait()
        assert _alive(trainer)
        log = wd / "results" / "logs" / "train" / "generated" / "cnn" / "none" / "standard.log"
        epoch1, log_head = (cell / "epochs" / "epoch1.pt").read_bytes(), log.read_bytes()
        files = {p.relative_to(cell) for p in cell.rglob("*")}

        # the README's recovery, skipping its check for live jobs
        assert subprocess.run(_snakemake(wd, "--unlock"), env=_env(), capture_output=True).returncode == 0
        r = subprocess.run(_snakemake(wd, "--rerun-incomplete", target), env=_env(), capture_output=True, text=True,
                           timeout=300)
        out = r.stdout + r.stderr
        assert r.returncode != 0 and "Traceback" not in out, out[-3000:]
        line = next(ln for ln in out.splitlines() if "is being trained by pid" in ln)
        assert f"pid {trainer}" in line and "generated/cnn/none/standard/s0" in line and "nothing was run or removed" \
            in line, line
        assert _alive(trainer), "the live trainer was not touched"
        assert {p.relative_to(cell) for p in cell.rglob("*")} >= files, "no file of the live cell was removed"
        assert (cell / "epochs" / "epoch1.pt").read_bytes() == epoch1
        assert log.read_bytes()[:len(log_head)] == log_head, "the live trainer's log was not overwritten"

        while _alive(trainer):  # the live run finishes
            assert time.time() < deadline + 300, "the orphan never finished"
            time.sleep(1)
        assert (cell / "model.pt").is_file() and (cell / "history.csv").is_file()
        assert (cell / "epochs" / "epoch1.pt").read_bytes() == epoch1
    finally:
        pid = _trainer_pid(wd)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if first.poll() is None:
            first.kill()
