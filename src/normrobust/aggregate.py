"""``python -m normrobust aggregate``: every per-cell result → the tables under results/tables/.

metrics.csv   dataset, arch, norm, regime, seed, metric, attack, eps, value   (long format)
history.csv   dataset, arch, norm, regime, seed, epoch, lr, train_loss, clean_acc, robust_acc, ligs, seconds
transfer.csv  dataset, seed, source_*, target_* (arch, norm, regime), success_rate, n
run_info.json the resolved config, git commit, package versions, device

Figures, LaTeX tables and the report read only these files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from .config import CELL_KEYS
from .utils import atomic_write, load_json, log, save_json

PACKAGES = ("torch", "torchvision", "numpy", "pandas", "matplotlib", "jinja2", "snakemake", "normrobust")


def cell_from_path(path: str | Path) -> dict:
    """``.../{dataset}/{arch}/{norm}/{regime}/s{seed}/file`` → the cell's keys."""
    dataset, arch, norm, regime, seed = Path(path).parent.parts[-5:]
    return dict(dataset=dataset, arch=arch, norm=norm, regime=regime, seed=int(seed.lstrip("s")))


def metrics_table(files: list[str]) -> pd.DataFrame:
    rows = []
    for f in files:
        d = load_json(f)
        rows += [{**d["cell"], **r} for r in d["rows"]]
    return pd.DataFrame(rows, columns=[*CELL_KEYS, "metric", "attack", "eps", "value"])


def history_table(files: list[str]) -> pd.DataFrame:
    frames = [pd.read_csv(f).assign(**cell_from_path(f)) for f in files]
    df = pd.concat(frames, ignore_index=True)
    return df[[*CELL_KEYS, *[c for c in df.columns if c not in CELL_KEYS]]]


def transfer_table(files: list[str]) -> pd.DataFrame:
    rows = []
    for f in files:
        d = load_json(f)
        s = d["source"]
        for r in d["rows"]:
            t = r["target"]
            rows.append(dict(dataset=s["dataset"], seed=s["seed"], source_arch=s["arch"], source_norm=s["norm"],
                             source_regime=s["regime"], target_arch=t["arch"], target_norm=t["norm"],
                             target_regime=t["regime"], success_rate=r["success_rate"], n=r["n"]))
    cols = ["dataset", "seed", "source_arch", "source_norm", "source_regime", "target_arch", "target_norm",
            "target_regime", "success_rate", "n"]
    return pd.DataFrame(rows, columns=cols)


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
    return {"config": config, "git_commit": commit, "versions": versions,
            "device": ", ".join(sorted(devices)) or "unknown", "machine": platform.platform(),
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
    p.add_argument("--config", required=True, help="the resolved config, as JSON")
    p.add_argument("--outdir", required=True)
    a = p.parse_args(argv)
    out = Path(a.outdir)
    write_csv(metrics_table(a.metrics), out / "metrics.csv")
    write_csv(history_table(a.histories), out / "history.csv")
    write_csv(transfer_table(a.transfers), out / "transfer.csv")
    devices = {load_json(f).get("device", "unknown") for f in a.metrics}
    save_json(run_info(json.loads(a.config), devices), out / "run_info.json")
    return 0
