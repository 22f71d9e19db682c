"""``python -m normrobust evaluate-autoattack``: robust accuracy of one cell under AutoAttack (normrobust.autoattack).

Run on every adversarially trained cell when the config has an ``evaluation.autoattack`` block: ``{type: apgd_ce |
apgd_t | autoattack, norm, eps: [...], steps?, restarts?, n_test?}`` (``n_test`` defaults to
``evaluation.n_test``). Plain fp32, eval mode (the reference measurement: no fast path). Writes one JSON per seed
in the evaluation's format (cell, rows with ``metric`` robust_acc, ``attack`` = the type, ``eps``, ``value``,
``n``, ``se``), aggregated into metrics.csv beside the PGD rows it is compared with.
"""

from __future__ import annotations

import argparse
import json
import time

from . import metrics
from .data.loading import load_prepared, to_float
from .gpu import lease_info
from .models.load import load_model
from .sampling import rate_se
from .settings import Execution
from .utils import log, pick_device, save_json, seeded_generator, set_threads

_STREAM = 400  # random stream of the AutoAttack seeds (evaluate uses 100+, 200, 300)


def evaluate_cell(model_path: str, data: dict, aa: dict, n_test: int, batch_size: int, device,
                  expect: str | None = None) -> dict:
    """AutoAttack robust accuracy of one trained cell at every ε of ``aa`` on the first ``n_test`` test images."""
    model, _, cell, _ = load_model(model_path, device, data_meta=data["meta"], expect=expect)
    seed = cell.seed
    spec = {k: v for k, v in aa.items() if k != "n_test"}
    x, y = to_float(data["test"]["x"][:n_test]), data["test"]["y"][:n_test]
    t0, rows = time.perf_counter(), []
    for j, eps in enumerate(spec["eps"]):
        acc = metrics.robust_accuracy(model, x, y, {**spec, "eps": eps}, batch_size=batch_size,
                                      generator=seeded_generator(seed, _STREAM, j, device=device))
        rows.append({"metric": "robust_acc", "attack": spec["type"], "eps": eps, "value": acc, "n": len(y),
                     "se": rate_se(acc, len(y))})
        log(f"{cell.path}: {spec['type']} {spec['norm']} eps {eps}: {acc:.3f} on {len(y)} test images "
            f"({time.perf_counter() - t0:.0f}s)")
    return {"cell": cell.as_dict(), "attack_mode": "eval", "device": str(device), "n_test": len(y),
            "seconds": time.perf_counter() - t0, "rows": rows, "lease": lease_info()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust evaluate-autoattack", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, nargs="+", help="the cells' model.pt (the seeds of a cell, say)")
    p.add_argument("--data", required=True, help="prepared dataset file")
    p.add_argument("--settings", required=True, help="the config's evaluation.autoattack block (n_test resolved), "
                                                     "as JSON")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: $NORMROBUST_DEVICE, else auto)")
    p.add_argument("--out", required=True, nargs="+", help="output JSON, one per --model")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--trained-with", default=None, help="the digest of the training settings the models must have")
    a = p.parse_args(argv)
    if len(a.out) != len(a.model):
        raise SystemExit(f"--out: {len(a.out)} files for {len(a.model)} models (one output per --model)")
    aa = json.loads(a.settings)
    if not aa:
        raise SystemExit("--settings: no AutoAttack settings (the config has no evaluation.autoattack block)")
    set_threads(a.threads)
    device = pick_device(a.device)
    data = load_prepared(a.data, device)
    n_test, bs = int(aa["n_test"]), Execution.from_env().eval_batch_size
    for model, out in zip(a.model, a.out):
        save_json(evaluate_cell(model, data, aa, n_test, bs, device, a.trained_with), out)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
