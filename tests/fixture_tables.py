"""Aggregated tables made by code, not stored: every row the pipeline would write for a config, with random values.

``make_tables(dest, config)`` plans the config (normrobust.plan) and writes, as the aggregate step does, the tables
of every cell of its studies: metrics.csv (the core rows of every cell's evaluation settings and the measurements its
studies declare), history.csv (every epoch of every trained cell; robust accuracy and LIGS where a study reads
them), transfer.csv (a row per transfer job and target, with the attack), costs.csv, derived.csv and run_info.json
(the recorded config and its hash). A study added to the registry and to the config is in these tables with no
change here.

Run as a script (``python tests/fixture_tables.py OUT [--configfile F ...]``) with PYTHONPATH at a checkout's src, it
makes the tables of that checkout's registry (the toy-study test does).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_config(*configfiles: str | Path, root: Path = ROOT) -> dict:
    """config.yaml with ``configfiles`` merged in order (as --configfile does), validated."""
    from snakemake.utils import update_config

    from normrobust.config import validate

    config = yaml.safe_load((root / "config.yaml").read_text())
    for f in configfiles:
        update_config(config, yaml.safe_load(Path(f).read_text()))
    return validate(config)


def _metric_rows(plan, rng) -> list[dict]:
    from normrobust.data.generated import nrf_amplitudes
    from normrobust.settings import MEASUREMENTS

    rows = []
    for cell in plan.cells:
        ev = plan.eval_settings(cell.model)
        n = ev.n_test
        clean = float(rng.uniform(0.3, 0.99))
        base = {**cell.as_dict(), "n": n}

        def row(metric, value, attack="none", eps=0.0, **kw):
            rows.append({**base, "metric": metric, "attack": attack, "eps": eps, "value": round(float(value), 4),
                         "se": round(float(np.sqrt(max(value * (1 - value), 0.01) / n)), 5), **kw})

        row("clean_acc", clean)
        if "shifted_acc" in ev.measures:
            row("shifted_acc", rng.uniform(0, 1 - clean))
        for grid in ev.attacks:
            for j, (eps, _) in enumerate(grid.points()):
                row("robust_acc", clean * rng.uniform(0.0, 1.0) / (1 + j), grid.name, eps)
                if "adv_confidence" in ev.measures:
                    row("adv_confidence", rng.uniform(0.5, 1), grid.name, eps)
                    row("adv_wrong_confidence", rng.uniform(0.5, 1), grid.name, eps)
        for std in ev.noise_std:
            row("noise_acc", clean * rng.uniform(0.5, 1), "gaussian", std)
        row("ligs", rng.uniform(0.2, 1.0))
        dataset = plan.config["datasets"][cell.dataset]
        if "nrf_reliance" in ev.measures and dataset.get("kind") == "generated":
            names = [m for m in MEASUREMENTS["nrf_reliance"] if not m.endswith("_family")]
            for name in names:
                row(name, rng.uniform(0.05, 0.95))
            amps = nrf_amplitudes(dataset)
            for amp in amps if len(amps) > 1 else []:  # one family: no per-family rows
                for name in [m for m in MEASUREMENTS["nrf_reliance"] if m.endswith("_family")]:
                    row(name, rng.uniform(0.05, 0.95), eps=amp)
    return rows


def _history_rows(plan, rng) -> list[dict]:
    rows = []
    for model in plan.trained:
        tr = plan.train_settings(model).training
        for seed in plan.seeds:
            for epoch in range(1, tr.epochs + 1):
                r = {**model.cell(seed).as_dict(), "epoch": epoch, "lr": tr.lr, "train_loss": rng.uniform(0.1, 2.3),
                     "clean_acc": rng.uniform(0.1, 1), "n_test": tr.history.n_test, "seconds": 1.0}
                if tr.history.attack is not None:
                    r["robust_acc"] = rng.uniform(0, r["clean_acc"])
                for name, _ in tr.history.extra:
                    r[f"robust_acc_{name}"] = round(float(rng.uniform(0, r["clean_acc"])), 4)
                if tr.history.ligs:
                    r["ligs"], r["ligs_se"] = rng.uniform(0.3, 1), 0.01
                rows.append(r)
    return rows


def _transfer_rows(plan, rng) -> list[dict]:
    rows = []
    for job in plan.transfer_jobs:
        s = job.source
        attack = json.dumps(plan.transfer_settings(job.study).attack.spec, sort_keys=True, separators=(",", ":"))
        epochs = plan.train_settings(s.model).training.epochs
        for t in job.targets:
            n_total = plan.config["transfer"]["n_test"]
            rows.append(dict(study=job.study, dataset=s.dataset, seed=s.seed, source_arch=s.arch, source_norm=s.norm,
                             source_regime=s.regime, source_epoch=job.epoch or epochs, source_final=job.epoch is None,
                             target_arch=t.arch, target_norm=t.norm, target_regime=t.regime,
                             success_rate=round(float(rng.uniform(0.05, 0.95)), 4),
                             error_rate=round(float(rng.uniform(0.05, 0.95)), 4), n=int(n_total * 0.9),
                             n_total=n_total, attack=attack))
    return rows


def make_tables(dest: Path, config: dict, seed: int = 7) -> Path:
    """The tables of ``config`` (validated) with random values, written into ``dest`` as the aggregate step would."""
    from normrobust.aggregate import DERIVED_COLUMNS, TRANSFER_COLUMNS
    from normrobust.layout import CELL_KEYS, benchmark_key
    from normrobust.plan import Plan, derived_source

    plan = Plan(config)
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    metrics = pd.DataFrame(_metric_rows(plan, rng),
                           columns=[*CELL_KEYS, "metric", "attack", "eps", "value", "n", "se"])
    metrics.to_csv(dest / "metrics.csv", index=False, float_format="%.6g")
    history = pd.DataFrame(_history_rows(plan, rng))
    cols = [*CELL_KEYS, "epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "ligs_se", "n_test", "seconds"]
    history = history.reindex(columns=cols + sorted(set(history.columns) - set(cols)))
    history.to_csv(dest / "history.csv", index=False, float_format="%.6g")
    pd.DataFrame(_transfer_rows(plan, rng), columns=TRANSFER_COLUMNS).to_csv(dest / "transfer.csv", index=False)
    costs = [dict(zip(("rule", "target"), benchmark_key(f)), wall_s=round(float(rng.uniform(1, 60)), 2),
                  cpu_s=1.0, max_rss_mib=500.0, peak_gpu_mem_mib=np.nan) for f in plan.benchmark_files()]
    pd.DataFrame(costs).to_csv(dest / "costs.csv", index=False)
    derived = [{"name": d, "method": config["datasets"][d]["method"], "base": config["datasets"][d]["base"],
                "source": derived_source(config, d).path, "n": 100, "target_rate": 0.95, "intended_rate": 0.9}
               for d in plan.derived]
    pd.DataFrame(derived, columns=DERIVED_COLUMNS).to_csv(dest / "derived.csv", index=False)
    info = {"config": plan.recorded_config(), "config_sha256": plan.config_hash(), "git_commit": "fixture",
            "versions": {"python": "3", "normrobust": "fixture"}, "device": "cpu", "machine": "fixture",
            "cpu": "fixture", "created": "2026-01-01T00:00:00+00:00"}
    (dest / "run_info.json").write_text(json.dumps(info, indent=2))
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out")
    p.add_argument("--configfile", nargs="*", default=[])
    p.add_argument("--root", default=str(ROOT), help="the checkout whose config.yaml is the base")
    a = p.parse_args(argv)
    make_tables(Path(a.out), load_config(*a.configfile, root=Path(a.root)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
