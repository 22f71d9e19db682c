"""``python -m normrobust.bench_pipeline``: a short pipeline, run with 1 and with 3 GPU slots per device.

Several small training jobs can share one accelerator (normrobust.gpu: ``gpu_slots``); this measures what it buys.
The pipeline of ``benchmarks/pipeline-gpu.yaml`` (ResNet-18 on generated 32x32 data, six cells, up to the
aggregated tables) runs twice in fresh working directories, with ``gpu_slots`` 1 and then 3 and ``--resources
gpu=<devices × slots>``; one record ``pipeline_throughput`` (cells per minute: ours = 3 slots, reference = 1 slot)
goes to ``benchmarks/results/<device>-pipeline-<time>.json`` like the benchmark's records.

Without a CUDA device it runs ``benchmarks/pipeline-cpu.yaml`` (the small CNN) instead and says so: no lease is
taken on the CPU, so the two runs differ only in how many jobs run at once.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .gpu import present_devices
from .layout import Layout
from .utils import atomic_write, log

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"gpu": ROOT / "benchmarks" / "pipeline-gpu.yaml", "cpu": ROOT / "benchmarks" / "pipeline-cpu.yaml"}
RESULTS_DIR = Path("benchmarks/results")
SLOTS = (1, 3)


def run_pipeline(config: Path, slots: int, devices: int, cores: int, workdir: Path, timeout: float) -> dict:
    """Wall time of the pipeline up to the aggregated tables, with ``slots`` GPU slots per device."""
    env = {**os.environ, "NORMROBUST_GPU_SLOTS": str(slots), "NORMROBUST_LOCK_DIR": str(workdir / "locks")}
    cmd = [sys.executable, "-m", "snakemake", Layout().table("metrics"), "-s", str(ROOT / "Snakefile"),
           "-d", str(workdir), "--cores", str(cores), "--resources", f"gpu={max(devices, 1) * slots}",
           "--configfile", str(config)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench_pipeline: the pipeline with {slots} slot(s) failed (exit {r.returncode}):\n"
                         + r.stderr[-3000:])
    n_cells = len(list((workdir / "results" / "models").rglob("model.pt")))
    return {"slots": slots, "wall_s": seconds, "cells": n_cells, "resources_gpu": max(devices, 1) * slots}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust.bench_pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="the CPU-sized run even where a GPU is present")
    p.add_argument("--out", type=Path, help="output JSON (default: benchmarks/results/<device>-pipeline-<time>.json)")
    p.add_argument("--timeout", type=float, default=240, help="seconds allowed per run")
    a = p.parse_args(argv)
    devices = [] if a.cpu else present_devices()
    kind = "gpu" if devices else "cpu"
    if kind == "cpu":
        log("bench_pipeline: no CUDA device: running the CPU-sized pipeline (benchmarks/pipeline-cpu.yaml); "
            "slots take effect on a GPU only, so this checks the mechanics, not the speed-up")
    cores = os.cpu_count() or 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="normrobust-pipeline-") as tmp:
        for slots in SLOTS:
            log(f"bench_pipeline: {CONFIGS[kind].name} with {slots} slot(s) per device on {len(devices) or 'no'} "
                f"GPU(s), {cores} cores")
            runs.append(run_pipeline(CONFIGS[kind], slots, len(devices), cores, Path(tmp) / f"slots{slots}",
                                     a.timeout))
            log(f"bench_pipeline: {runs[-1]['cells']} cells in {runs[-1]['wall_s']:.1f}s")
    one, three = runs
    device = "cpu" if kind == "cpu" else _gpu_name()
    rec = {"name": "pipeline_throughput", "ours": 60 * three["cells"] / three["wall_s"],
           "reference": 60 * one["cells"] / one["wall_s"], "unit": "cells/min", "device": device,
           "mode": "pipeline", "arch": "resnet18" if kind == "gpu" else "cnn", "norm": "none,bn,gn" if kind == "gpu"
           else "none,bn", "batch": None, "devices": len(devices), "runs": runs, "config": CONFIGS[kind].name,
           "versions": {"python": sys.version.split()[0], "torch": _version("torch"),
                        "torchvision": _version("torchvision"), "snakemake": _version("snakemake"), "threads": cores},
           "note": "ours: 3 GPU slots per device, reference: 1" + ("" if kind == "gpu" else " (CPU: no lease)")}
    rec["ratio"] = rec["ours"] / rec["reference"]
    slug = "cpu" if kind == "cpu" else device.lower().replace(" ", "-")
    out = a.out or RESULTS_DIR / f"{slug}-pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json"
    atomic_write(out, lambda f: f.write(json.dumps([rec], indent=1, sort_keys=True) + "\n"), mode="w")
    cmd = " ".join(shlex.quote(s) for s in ["python", "-m", "normrobust.bench_pipeline",
                                             *(sys.argv[1:] if argv is None else argv)])
    atomic_write(out.with_suffix(".cmd"), lambda f: f.write(cmd + "\n"), mode="w")
    print(f"pipeline: 1 slot {one['wall_s']:.1f}s, 3 slots {three['wall_s']:.1f}s ({rec['ratio']:.2f}x); wrote {out}")
    return 0


def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30).stdout.splitlines()
        return out[0].strip() if out else "cuda"
    except (OSError, subprocess.SubprocessError):
        return "cuda"


if __name__ == "__main__":
    raise SystemExit(main())
