"""Aggregated tables made by code, not stored: every row the pipeline would write for a config, with random values.

``make_tables(dest, config)`` plans the config (normrobust.plan) and writes, as the aggregate step does, the tables
of every cell of its studies: metrics.csv (the core rows of every cell's evaluation settings and the measurements its
studies declare), images.csv (each metrics row's per-image values, drawn first: the row's value is their nanmean and
its n their count that is not NaN; a robust image is a clean-right one, as the evaluation counts it), history.csv
(every epoch of every trained cell from epoch 0, the initialised model; robust accuracy and LIGS where a study reads
them), transfer.csv (a row per transfer job and target, with the attack, its per-image successes and the source's
white-box success), costs.csv, derived.csv and run_info.json (the recorded config and its hash). A study added to
the registry and to the config is in these tables with no change here.

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


def _bits(rng, n: int, p: float) -> np.ndarray:
    """n draws of 1 with probability p, else 0 (float: per-image outcomes)."""
    return (rng.uniform(size=n) < p).astype(float)


def _f32(values: np.ndarray) -> np.ndarray:
    """``values`` as float32 would hold them (the per-image encoding of non-0/1 values), so the row made from them
    is their decoded nanmean."""
    return values.astype(np.float32).astype(float)


CONFLICT = ("conflict_rf_rate", "conflict_nrf_rate", "nrf_reliance")  # the per-image outcomes of _conflict


def _conflict(rng, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image on a conflict set: 1 if the RF's class, 1 if the NRF's class, the reliance (NaN for neither)."""
    p_rf, p_nrf = rng.uniform(0.05, 0.6), rng.uniform(0.05, 0.35)
    u = rng.uniform(size=n)
    rf, nrf = (u < p_rf).astype(float), ((u >= p_rf) & (u < p_rf + p_nrf)).astype(float)
    return rf, nrf, np.where(nrf == 1, 1.0, np.where(rf == 1, 0.0, np.nan))


def _metric_rows(plan, rng) -> tuple[list[dict], list[dict]]:
    """metrics.csv's rows and images.csv's: the per-image values of every row drawn first, the row made from them."""
    from normrobust.data.generated import nrf_amplitudes
    from normrobust.perimage import encode
    from normrobust.settings import MEASUREMENTS

    rows, images = [], []
    for cell in plan.cells:
        ev = plan.eval_settings(cell.model)
        n = ev.n_test
        clean = _bits(rng, n, rng.uniform(0.3, 0.99))

        def row(metric, values, attack="none", eps=0.0):
            valid = ~np.isnan(values)
            k = int(valid.sum())
            value = float(np.nanmean(values)) if k else np.nan
            se = np.sqrt(max(value * (1 - value), 0.01) / max(k, 1)) if k else np.nan
            keys = {**cell.as_dict(), "metric": metric, "attack": attack, "eps": eps}
            rows.append({**keys, "value": value, "n": k, "se": round(float(se), 5)})
            images.append({**keys, "n": n, "values": encode(values)})

        row("clean_acc", clean)
        if "shifted_acc" in ev.measures:
            row("shifted_acc", (1 - clean) * _bits(rng, n, rng.uniform(0, 1)))
        if "train_acc" in ev.measures:
            row("train_acc", _bits(rng, n, rng.uniform(0.5, 1.0)))
        for grid in ev.attacks:
            for j, (eps, _) in enumerate(grid.points()):
                robust = clean * _bits(rng, n, rng.uniform(0.0, 1.0) / (1 + j))  # right clean and adversarial
                row("robust_acc", robust, grid.name, eps)
                if "adv_confidence" in ev.measures:
                    confidence = _f32(rng.uniform(0.5, 1, size=n))
                    row("adv_confidence", confidence, grid.name, eps)
                    row("adv_wrong_confidence", np.where(robust == 1, np.nan, confidence), grid.name, eps)
        for std in ev.noise_std:
            row("noise_acc", clean * _bits(rng, n, rng.uniform(0.5, 1)), "gaussian", std)
        cosines = _f32(np.clip(rng.uniform(0.2, 1.0) + rng.normal(0, 0.1, size=n), -1, 1))
        row("ligs", np.where(rng.uniform(size=n) < 0.01, np.nan, cosines))  # a dropped pair now and then
        dataset = plan.config["datasets"][cell.dataset]
        if "nrf_reliance" in ev.measures and dataset.get("kind") == "generated":
            # the three outcomes of one conflict set come from one draw per image; any other row: right or wrong
            names = [m for m in MEASUREMENTS["nrf_reliance"] if not m.endswith("_family")]
            conflict = dict(zip(CONFLICT, _conflict(rng, n)))
            for name in names:
                row(name, conflict[name] if name in conflict else _bits(rng, n, rng.uniform(0.05, 0.95)))
            amps = nrf_amplitudes(dataset)
            for amp in amps if len(amps) > 1 else []:  # one family: no per-family rows
                conflict = dict(zip(CONFLICT, _conflict(rng, n)))
                for name in [m for m in MEASUREMENTS["nrf_reliance"] if m.endswith("_family")]:
                    base = name.removesuffix("_family")
                    row(name, conflict[base] if base in conflict else _bits(rng, n, rng.uniform(0.05, 0.95)), eps=amp)
    return rows, images


def _history_rows(plan, rng) -> list[dict]:
    rows = []
    for model in plan.trained:
        tr = plan.train_settings(model).training
        for seed in plan.seeds:
            for epoch in range(0, tr.epochs + 1):  # epoch 0: the initialised model, before any training
                r = {**model.cell(seed).as_dict(), "epoch": epoch, "lr": tr.lr, "train_loss": rng.uniform(0.1, 2.3),
                     "clean_acc": rng.uniform(0.1, 1), "n_test": tr.history.n_test, "seconds": 1.0}
                if epoch == 0:
                    r.update(lr=np.nan, train_loss=np.nan, clean_acc=rng.uniform(0.05, 0.15))
                if tr.history.attack is not None:
                    r["robust_acc"] = rng.uniform(0, r["clean_acc"])
                for name, _ in tr.history.extra:
                    r[f"robust_acc_{name}"] = round(float(rng.uniform(0, r["clean_acc"])), 4)
                if tr.history.ligs:
                    r["ligs"], r["ligs_se"] = rng.uniform(0.3, 1), 0.01
                rows.append(r)
    return rows


def _successes(rng, n_total: int, n_right: int, p: float) -> np.ndarray:
    """Per image: NaN where the model is wrong clean (n_total − n_right images, at random), else 1 fooled with
    probability p, else 0."""
    out = _bits(rng, n_total, p)
    out[rng.permutation(n_total)[n_right:]] = np.nan
    return out


def _transfer_rows(plan, rng) -> list[dict]:
    from normrobust.perimage import encode

    rows = []
    for job in plan.transfer_jobs:
        s = job.source
        attack = json.dumps(plan.transfer_settings(job.study).attack.spec, sort_keys=True, separators=(",", ":"))
        epochs = plan.train_settings(s.model).training.epochs
        n_total = plan.config["transfer"]["n_test"]
        white = _successes(rng, n_total, int(n_total * 0.85), rng.uniform(0.7, 1.0))  # the source on its own
        parts = "rf_nrf" in plan.transfer_settings(job.study).measures
        for t in job.targets:
            n = int(n_total * 0.9)
            each = _successes(rng, n_total, n, rng.uniform(0.05, 0.95))
            rf, nrf = (_successes(rng, n_total, n, rng.uniform(0.05, 0.95)) if parts else None for _ in range(2))
            extra = {f"{k}_success_rate": float(np.nanmean(v)) for k, v in (("rf", rf), ("nrf", nrf)) if v is not None}
            extra.update({f"{k}_images": encode(v) for k, v in (("rf", rf), ("nrf", nrf)) if v is not None})
            rows.append(dict(study=job.study, dataset=s.dataset, seed=s.seed, source_arch=s.arch, source_norm=s.norm,
                             source_regime=s.regime, source_epoch=job.epoch or epochs, source_final=job.epoch is None,
                             target_arch=t.arch, target_norm=t.norm, target_regime=t.regime,
                             success_rate=float(np.nanmean(each)),
                             error_rate=float((np.nansum(each) + n_total - n) / n_total), n=n, n_total=n_total,
                             attack=attack, images=encode(each), white_box_rate=float(np.nanmean(white)),
                             white_box_n=int((~np.isnan(white)).sum()), white_box_images=encode(white), **extra))
    return rows


def make_tables(dest: Path, config: dict, seed: int = 7) -> Path:
    """The tables of ``config`` (validated) with random values, written into ``dest`` as the aggregate step would."""
    from normrobust.aggregate import DERIVED_COLUMNS, IMAGES_COLUMNS, TRANSFER_COLUMNS
    from normrobust.layout import CELL_KEYS, benchmark_key
    from normrobust.plan import Plan, derived_source

    plan = Plan(config)
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    metric_rows, images = _metric_rows(plan, rng)
    metrics = pd.DataFrame(metric_rows, columns=[*CELL_KEYS, "metric", "attack", "eps", "value", "n", "se"])
    metrics.to_csv(dest / "metrics.csv", index=False, float_format="%.6g")
    pd.DataFrame(images, columns=IMAGES_COLUMNS).to_csv(dest / "images.csv", index=False, float_format="%.6g")
    history = pd.DataFrame(_history_rows(plan, rng))
    cols = [*CELL_KEYS, "epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "ligs_se", "n_test", "seconds"]
    history = history.reindex(columns=cols + sorted(set(history.columns) - set(cols)))
    history.to_csv(dest / "history.csv", index=False, float_format="%.6g")
    pd.DataFrame(_transfer_rows(plan, rng), columns=TRANSFER_COLUMNS).to_csv(dest / "transfer.csv", index=False,
                                                                             float_format="%.6g")
    costs = [dict(zip(("rule", "target"), benchmark_key(f)), wall_s=round(float(rng.uniform(1, 60)), 2),
                  cpu_s=1.0, max_rss_mib=500.0, peak_gpu_mem_mib=np.nan) for f in plan.benchmark_files()]
    pd.DataFrame(costs).to_csv(dest / "costs.csv", index=False)
    derived = [{"name": d, "method": config["datasets"][d]["method"], "base": config["datasets"][d]["base"],
                "source": derived_source(config, d).path, "n": 100, "target_rate": 0.95, **_derived_rates(config, d)}
               for d in plan.derived]
    pd.DataFrame(derived, columns=DERIVED_COLUMNS).to_csv(dest / "derived.csv", index=False)
    info = {"config": plan.recorded_config(), "config_sha256": plan.config_hash(), "git_commit": "fixture",
            "versions": {"python": "3", "normrobust": "fixture"}, "device": "cpu", "machine": "fixture",
            "cpu": "fixture", "created": "2026-01-01T00:00:00+00:00"}
    (dest / "run_info.json").write_text(json.dumps(info, indent=2))
    return dest


def _derived_rates(config: dict, name: str) -> dict:
    """A derived set's intended rate as derive-data records it: by the ground truth on generated data, else by the
    held-out reader of the intended feature's kind, and the readers' rates. A set on real images without readers keeps
    the rate these tables always gave it, unattributed (as an older table has it), so the claims reading it stay
    testable here."""
    ds, base = config["datasets"], config["datasets"][name]["base"]
    while ds[base].get("kind") == "derived":
        base = ds[base]["base"]
    readers = {"reader_robust_rate": 0.92, "reader_standard_rate": 0.9} if "readers" in ds[name] else {}
    if ds[base].get("kind") == "generated":
        return {"intended_rate": 0.9, "intended_by": "ground truth", **readers}
    if not readers:
        return {"intended_rate": 0.9}
    kind = "robust" if ds[name]["method"] == "robust" else "standard"
    return {"intended_rate": readers[f"reader_{kind}_rate"], "intended_by": f"held-out {kind} reader", **readers}


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
