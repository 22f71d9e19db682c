"""``python -m normrobust aggregate``: every per-cell result → the tables under results/tables/.

metrics.csv   dataset, arch, norm, regime, seed, metric, attack, eps, value, n, se   (long format; n images behind
              the value, se its standard error over test images)
images.csv    dataset, arch, norm, regime, seed, metric, attack, eps, n, values   (one row per metrics row of an
              evaluation, same keys: ``values`` its quantity per test image, in the test set's order, encoded by
              normrobust.perimage (``decode(values, n)``; NaN where an image has none), ``n`` the images evaluated;
              the metrics row's value is their nanmean. Every cell of a dataset is scored on the same images, so
              two cells' rows pair image by image. A per-cell file of an older version adds no rows)
history.csv   dataset, arch, norm, regime, seed, epoch, lr, train_loss, clean_acc, robust_acc, ligs, ligs_se, n_test,
              seconds, robust_acc_<name>...   (from epoch 0, the initialised model before any training: its lr and
              train_loss empty; a cell trained by an older version starts at epoch 1)
transfer.csv  study, dataset, seed, source_* (arch, norm, regime, epoch, final), target_* (arch, norm, regime),
              success_rate, error_rate, n, n_total, attack (the attack the row's examples were made with, as the
              config writes it, in JSON), images (per image of the n_total: 1 the target was fooled, 0 not, NaN
              wrong clean; normrobust.perimage), white_box_rate, white_box_n, white_box_images (the same measured
              on the source itself: the attack's white-box success on the same images). Empty where an older
              per-source file has no per-image record
costs.csv     rule, target, wall_s, cpu_s, max_rss_mib, peak_gpu_mem_mib        (one row per compute job)
derived.csv   name, method, base, source, n, steps, step, eps, source_acc, target_rate, label_rate, rf_rate,
              rf_label_rate, nrf_rate, intended, intended_rate, intended_by, reader_robust_rate,
              reader_standard_rate, seconds    (one row per derived dataset: what derive-data measured, ground truth
              included where the base has it; reader_*_rate: the share of its images its held-out robust / standard
              reader classifies as its intended label; intended_by: "ground truth" or "held-out <kind> reader".
              Empty where a record has none, e.g. an older one)
run_info.json the resolved config, its hash, git commit, package versions, device, machine

Figures, LaTeX tables and the report read only these files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pandas as pd

from .layout import CELL_KEYS, benchmark_key, cell_of, job_target
from .plan import config_hash
from .results_check import read_history, read_metrics, read_record, read_transfer
from .utils import atomic_write, log, save_json

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "jinja2", "snakemake", "normrobust")


def metrics_table(docs: Iterable[dict]) -> pd.DataFrame:
    """The per-cell metrics.json contents → one long table."""
    rows = []
    for d in docs:
        rows += [{**d["cell"], **r} for r in d["rows"]]
    return pd.DataFrame(rows, columns=[*CELL_KEYS, "metric", "attack", "eps", "value", "n", "se"])


IMAGES_COLUMNS = [*CELL_KEYS, "metric", "attack", "eps", "n", "values"]


def images_table(docs: Iterable[dict]) -> pd.DataFrame:
    """The per-image entries of the per-cell metrics.json files → one row per (cell, metric, attack, eps)."""
    rows = []
    for d in docs:
        rows += [{**d["cell"], **{k: e[k] for k in ("metric", "attack", "eps", "n", "values")}}
                 for e in d.get("images") or ()]
    return pd.DataFrame(rows, columns=IMAGES_COLUMNS)


def history_table(files: list[str]) -> pd.DataFrame:
    frames = [read_history(f).assign(**cell_of(f).as_dict()) for f in files]
    df = pd.concat(frames, ignore_index=True)
    return df[[*CELL_KEYS, *[c for c in df.columns if c not in CELL_KEYS]]]


def transfer_table(docs: Iterable[dict]) -> pd.DataFrame:
    """The per-source transfer.json contents → one row per (source, target)."""
    rows = []
    for d in docs:
        s, wb = d["source"], d.get("white_box") or {}
        for r in d["rows"]:
            t = r["target"]
            rows.append(dict(study=d.get("study"), dataset=s["dataset"], seed=s["seed"], source_arch=s["arch"],
                             source_norm=s["norm"], source_regime=s["regime"], source_epoch=d.get("source_epoch"),
                             source_final=d.get("source_final", True), target_arch=t["arch"],
                             target_norm=t["norm"], target_regime=t["regime"], success_rate=r["success_rate"],
                             error_rate=r.get("error_rate"), n=r["n"], n_total=r.get("n_total"),
                             attack=json.dumps(d.get("attack"), sort_keys=True, separators=(",", ":")),
                             images=r.get("images"), white_box_rate=wb.get("success_rate"),
                             white_box_n=wb.get("n"), white_box_images=wb.get("images"),
                             **{k: r.get(k) for k in FEATURE_PART_COLUMNS}))
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


TRANSFER_COLUMNS = ["study", "dataset", "seed", "source_arch", "source_norm", "source_regime", "source_epoch",
                    "source_final", "target_arch", "target_norm", "target_regime", "success_rate", "error_rate", "n",
                    "n_total", "attack", "images", "white_box_rate", "white_box_n", "white_box_images",
                    "rf_success_rate", "rf_images", "nrf_success_rate", "nrf_images"]
#: per target, the success of the examples' RF and NRF parts (a study's "rf_nrf" transfer measurement; else empty)
FEATURE_PART_COLUMNS = TRANSFER_COLUMNS[-4:]


DERIVED_COLUMNS = ["name", "method", "base", "source", "n", "steps", "step", "eps", "source_acc", "target_rate",
                   "label_rate", "rf_rate", "rf_label_rate", "nrf_rate", "intended", "intended_rate", "intended_by",
                   "reader_robust_rate", "reader_standard_rate", "seconds"]


def derived_table(docs: Iterable[dict]) -> pd.DataFrame:
    """The derived datasets' records (``results/data/<name>.json``) → one row each; the source as a cell path. A key a
    record lacks (an older record: no readers, no ``intended_by``) is an empty value."""
    rows = []
    for d in docs:
        src = d.get("source") or {}
        cell = "/".join(str(src[k]) for k in ("dataset", "arch", "norm", "regime") if k in src)
        rows.append({**{k: d.get(k) for k in DERIVED_COLUMNS}, "source": f"{cell}/s{src.get('seed', '?')}"})
    return pd.DataFrame(rows, columns=DERIVED_COLUMNS)


def _gpu_mem(docs: dict[str, dict], key: str) -> dict[str, float]:
    """Peak GPU memory (MiB) each job recorded, keyed like the job's benchmark file (normrobust.layout.job_target): a
    job handles every seed of one model, so the largest over its seeds. ``docs``: per-seed JSON path → contents."""
    out: dict[str, float] = {}
    for f, d in docs.items():
        v = d.get(key)
        if v is not None:
            k = job_target(f)
            out[k] = max(out.get(k, float("-inf")), float(v))
    return out


def costs_table(benchmarks: list[str], metrics: dict[str, dict], transfers: dict[str, dict]) -> pd.DataFrame:
    """Wall time, CPU time and peak RSS per compute job (Snakemake's ``benchmark:`` files), with the
    peak GPU memory the job measured itself (absent on the CPU); ``metrics`` and ``transfers`` map each
    per-cell JSON file to its contents."""
    gpu = {"train": _gpu_mem(metrics, "train_peak_gpu_mem_mib"),
           "evaluate": _gpu_mem(metrics, "peak_gpu_mem_mib"),
           "transfer": _gpu_mem(transfers, "peak_gpu_mem_mib")}
    rows = []
    for f in benchmarks:
        rule, target = benchmark_key(f)
        b = pd.read_csv(f, sep="\t")
        last = b.iloc[-1]  # one row per repeat; Snakemake writes one unless `repeat()` is used
        num = lambda c: float(pd.to_numeric(last.get(c), errors="coerce")) if c in b.columns else float("nan")  # noqa: E731
        rows.append(dict(rule=rule, target=target, wall_s=num("s"), cpu_s=num("cpu_time"),
                         max_rss_mib=num("max_rss"), peak_gpu_mem_mib=gpu.get(rule, {}).get(target, float("nan"))))
    return pd.DataFrame(rows, columns=["rule", "target", "wall_s", "cpu_s", "max_rss_mib", "peak_gpu_mem_mib"])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_info(config: dict, devices: set[str]) -> dict:
    versions = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = "not installed"
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {"config": config, "config_sha256": config_hash(config), "git_commit": commit, "versions": versions,
            "device": ", ".join(sorted(devices)) or "unknown", "machine": platform.platform(),
            "cpu": f"{_cpu_model()}, {os.cpu_count()} logical cores",
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda f: df.to_csv(f, index=False, float_format="%.6g"), mode="w")
    log(f"{path}: {len(df)} rows")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust aggregate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--metrics", nargs="*", default=[], help="per-cell metrics.json files")
    p.add_argument("--histories", nargs="*", default=[], help="per-cell history.csv files")
    p.add_argument("--transfers", nargs="*", default=[], help="per-source transfer.json files")
    p.add_argument("--benchmarks", nargs="*", default=[], help="Snakemake benchmark files of the compute jobs")
    p.add_argument("--derived", nargs="*", default=[], help="derived datasets' records (what derive-data measured)")
    p.add_argument("--config", required=True, help="the resolved config, as JSON")
    p.add_argument("--outdir", required=True)
    a = p.parse_args(argv)
    out = Path(a.outdir)
    if not a.metrics:  # never replace existing tables by empty ones
        print("normrobust aggregate: error: no per-cell metrics files given; nothing to aggregate "
              f"(the tables in {out} are left as they are)", file=sys.stderr)
        return 1
    # every input read and checked, every table made, before anything is written: a damaged file stops the step
    # with one line (normrobust.results_check) and the tables of an earlier aggregate stay as they were
    metrics = {f: read_metrics(f) for f in a.metrics}
    transfers = {f: read_transfer(f) for f in a.transfers}
    tables = {
        "metrics.csv": metrics_table(metrics.values()),
        "images.csv": images_table(metrics.values()),
        "history.csv": history_table(a.histories),
        "transfer.csv": transfer_table(transfers.values()),
        "costs.csv": costs_table(a.benchmarks, metrics, transfers),
        "derived.csv": derived_table(read_record(f) for f in a.derived),
    }
    for name, table in tables.items():
        write_csv(table, out / name)
    devices = {d.get("device_name") or d.get("device", "unknown") for d in metrics.values()}
    save_json(run_info(json.loads(a.config), devices), out / "run_info.json")
    return 0
