"""The work a config asks for: the cells, datasets and transfer jobs of its enabled studies.

A *cell* is one trained model, ``{dataset}/{arch}/{norm}/{regime}/s{seed}``. The DAG trains the union of the
enabled studies' cells, once each, plus the cells derived datasets are made with. Everything here reads the
config only (no data, no torch): the workflow plans with it, and the analysis selects a study's rows with it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

CELL_KEYS = ("dataset", "arch", "norm", "regime", "seed")
MODEL_KEYS = CELL_KEYS[:4]  # a cell without its seed: what one training job trains, for every seed
DESIGNS = ("factorial", "one_at_a_time")
#: per-epoch measurements a study may read from history.csv (its module's HISTORY); clean accuracy and the
#: training loss are always recorded (cheap: one forward pass over training.history.n_test images)
HISTORY_MEASUREMENTS = ("robust", "ligs")


def enabled_studies(config: dict) -> dict:
    """Study name → config entry of every study not switched off (``enabled: false``), in config order."""
    return {n: s for n, s in (config.get("studies") or {}).items() if isinstance(s, dict) and s.get("enabled", True)}


def study_datasets(study: dict) -> list[str]:
    """A study's datasets: ``dataset`` is one name or a list of names (E3 trains on several)."""
    d = study.get("dataset")
    if d is None:
        return []
    return [str(d)] if isinstance(d, str) else [str(x) for x in d]


def study_pairs(study: dict) -> list[tuple[str, str]]:
    """(arch, regime) pairs of a study.

    ``design: factorial`` (default): every arch × regime. ``design: one_at_a_time`` (E6): the base pair
    (archs[0], regimes[0]), each other arch with regimes[0], and each other regime with archs[0]."""
    archs = [str(a) for a in study.get("archs", [])]
    regimes = [str(r) for r in study.get("regimes", [])]
    if not archs or not regimes:
        return []
    if study.get("design", "factorial") == "one_at_a_time":
        return [(archs[0], regimes[0])] + [(a, regimes[0]) for a in archs[1:]] + [(archs[0], r) for r in regimes[1:]]
    return [(a, r) for a in archs for r in regimes]


def study_cells(config: dict, study: dict) -> list[dict]:
    """The cells of one study, for every seed of the config."""
    return [dict(dataset=d, arch=a, norm=str(n), regime=r, seed=seed)
            for d in study_datasets(study) for a, r in study_pairs(study) for n in study.get("norms", [])
            for seed in config.get("seeds", [0])]


def study_models(study: dict) -> list[tuple[str, str, str, str]]:
    """The (dataset, arch, norm, regime) of a study, seeds left out, each once, in design order."""
    return list(dict.fromkeys((d, a, str(n), r) for d in study_datasets(study) for a, r in study_pairs(study)
                              for n in study.get("norms", [])))


def transfer_jobs(config: dict) -> list[dict]:
    """Every transfer job of the enabled studies with a ``transfer`` block: one per (study, source cell,
    source epoch). Targets: the study's cells whose regime is a target regime, same dataset and seed.
    Early-stopped sources (``source_epochs``) are the saved epochs of those target-regime cells.

    Each job: {study, source (cell), epoch (None: the final model), targets (cells), attack}."""
    jobs = []
    for name, s in enabled_studies(config).items():
        t = s.get("transfer")
        if not t:
            continue
        cells_ = study_cells(config, s)
        attack = t.get("attack") or config["transfer"]["attack"]
        for src in cells_:
            targets = [c for c in cells_ if c["regime"] in t["targets"]
                       and c["dataset"] == src["dataset"] and c["seed"] == src["seed"]]
            epochs = [None] + (list(t.get("source_epochs") or []) if src["regime"] in t["targets"] else [])
            for e in epochs:
                jobs.append(dict(study=name, source=src, epoch=e, targets=targets, attack=attack))
    return jobs


def saved_epochs(config: dict) -> list[int]:
    """The epochs whose weights training keeps: training.save_epochs and every enabled study's early-stopped
    transfer sources (``transfer.source_epochs``)."""
    out = set(config["training"].get("save_epochs") or [])
    for s in enabled_studies(config).values():
        out |= set((s.get("transfer") or {}).get("source_epochs") or [])
    return sorted(out)


def derived_source(config: dict, name: str) -> dict:
    """The cell (seed included) whose model a derived dataset is made with; its dataset defaults to the
    first non-derived ancestor of the derived dataset's base."""
    d = config["datasets"][name]
    src = dict(d["source"])
    if "dataset" not in src:
        base = d["base"]
        while config["datasets"][base].get("kind") == "derived":
            base = config["datasets"][base]["base"]
        src["dataset"] = base
    return {k: src[k] for k in CELL_KEYS}


def cells(config: dict) -> list[dict]:
    """Every cell that an enabled study needs, once, in a stable order."""
    seen, out = set(), []
    for s in enabled_studies(config).values():
        for c in study_cells(config, s):
            key = tuple(c[k] for k in CELL_KEYS)
            if key not in seen:
                seen.add(key)
                out.append(c)
    return out


def autoattack_cells(config: dict) -> list[dict]:
    """The cells evaluated under AutoAttack: with an ``evaluation.autoattack`` block, every cell of the enabled
    studies whose regime trains on adversarial examples (its ``attack`` is set)."""
    if not (config.get("evaluation") or {}).get("autoattack"):
        return []
    return [c for c in cells(config) if (config["regimes"][c["regime"]] or {}).get("attack")]


def needed_datasets(config: dict) -> list[str]:
    """The datasets the enabled studies train on, with every dataset a derived one is built from."""
    out: list[str] = []

    def add(name):
        if name in out:
            return
        d = config["datasets"][name]
        if d.get("kind") == "derived":
            add(d["base"])
            add(derived_source(config, name)["dataset"])
        out.append(name)

    for s in enabled_studies(config).values():
        for name in study_datasets(s):
            add(name)
    return out


def source_cells(config: dict) -> list[dict]:
    """The cells that derived datasets are made with (trained even when no study lists them)."""
    out = []
    for name in needed_datasets(config):
        if config["datasets"][name].get("kind") == "derived":
            c = derived_source(config, name)
            if c not in out:
                out.append(c)
    return out


def trained_cells(config: dict) -> list[dict]:
    """Every model the workflow trains: the studies' cells, then the derived datasets' source cells no study lists."""
    own = cells(config)
    return own + [c for c in source_cells(config) if c not in own]


def history_needs(config: dict, reads: dict[str, tuple[str, ...]]) -> dict[tuple[str, ...], set[str]]:
    """(dataset, arch, norm, regime) → the per-epoch measurements the enabled studies that train it read from
    history.csv. ``reads``: study key → its HISTORY (normrobust.studies); a cell no study reads the trajectory of
    maps to the empty set."""
    out: dict[tuple[str, ...], set[str]] = {}
    for name, s in enabled_studies(config).items():
        for model in study_models(s):
            out.setdefault(model, set()).update(reads.get(name, ()))
    return out


def training_history(config: dict, needs: set[str]) -> dict[str, Any]:
    """The ``training.history`` block one cell trains with: the config's, less what no study reads of this cell
    (``robust``: the history attack and the extra attacks; ``ligs``)."""
    hist = dict(config["training"].get("history") or {})
    if "robust" not in needs:
        hist.pop("attack", None)
        hist.pop("extra_attacks", None)
    hist["ligs"] = "ligs" in needs
    return hist


def history_passes(history: dict[str, Any]) -> int:
    """Images through the network per epoch for a history block (a forward or a backward pass of one image counts
    one): clean accuracy 1; a k-step attack 2k + 1 (FGSM: k = 1); LIGS 4 (gradients at x and x + v)."""
    attacks = [history.get("attack")] + list((history.get("extra_attacks") or {}).values())
    per_image = 1 + sum(2 * (a.get("steps", 1) if a.get("type") == "pgd" else 1) + 1 for a in attacks if a)
    return int(history.get("n_test", 0)) * (per_image + (4 if history.get("ligs") else 0))


def cell_path(c: dict[str, Any]) -> str:
    """The cell's path fragment: ``{dataset}/{arch}/{norm}/{regime}/s{seed}``."""
    return f"{model_path(c)}/s{c['seed']}"


def cell_from_path(path: str | Path) -> dict:
    """``.../{dataset}/{arch}/{norm}/{regime}/s{seed}/file`` → the cell's keys."""
    dataset, arch, norm, regime, seed = Path(path).parent.parts[-5:]
    return dict(dataset=dataset, arch=arch, norm=norm, regime=regime, seed=int(seed.lstrip("s")))


def model_path(c: dict[str, Any]) -> str:
    """The path fragment of a cell without its seed (one training job): ``{dataset}/{arch}/{norm}/{regime}``."""
    return "/".join(str(c[k]) for k in MODEL_KEYS)


def training_settings(config: dict, model: dict[str, Any], needs: set[str]) -> dict[str, Any]:
    """The settings one training job runs with (``train --settings``; the workflow and ``train --config --cell``
    alike): ``model`` is a cell without its seed, ``needs`` what the studies read of its history
    (:func:`history_needs`)."""
    regime = config["regimes"][model["regime"]]
    return {
        "cell": {k: model[k] for k in ("dataset", "arch", "norm", "regime")},
        "arch": config["archs"][model["arch"]],
        "regime": {"name": model["regime"], **regime},
        # a dataset, then a regime, may override training settings ([B]: lr 0.01 on D_NR and D_rand; E6: weight
        # decay, lr, optimizer)
        "training": {
            **config["training"],
            **(config["datasets"][model["dataset"]].get("training") or {}),
            **regime.get("training", {}),
            "save_epochs": saved_epochs(config),
            "history": training_history(config, needs),
        },
        "ligs_sigma": config["evaluation"].get("ligs_sigma", 0.01),
        # no device: an execution detail ($NORMROBUST_DEVICE), so moving a finished run to a GPU replans nothing
    }


def evaluation_settings(config: dict) -> dict[str, Any]:
    """The evaluation block as the evaluate jobs read it: without the AutoAttack entry (its own rule), so changing
    AutoAttack settings never reruns the other evaluations."""
    return {k: v for k, v in config["evaluation"].items() if k != "autoattack"}


#: config keys that say how to run, not what: a change to them never makes finished work stale
EXECUTION_KEYS = ("device", "gpu_slots", "data_dir")


def recorded_config(config: dict) -> dict:
    """The config as the tables record it (run_info.json, the aggregate rule's param): without
    :data:`EXECUTION_KEYS`, so moving a finished run to another machine reruns nothing."""
    return {k: v for k, v in config.items() if k not in EXECUTION_KEYS}


def config_hash(config: dict) -> str:
    """SHA-256 of a config as canonical JSON (after a JSON round trip, as the aggregate step receives it): equal
    hashes, equal settings. Of :func:`recorded_config`, it says which config made a set of tables (run_info.json)."""
    canonical = json.loads(json.dumps(config))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
