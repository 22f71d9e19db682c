"""``python -m normrobust evaluate``: every metric of one trained cell, in eval mode.

For every cell: clean accuracy; robust accuracy under each configured attack over its eps grid (FGSM and PGD, L∞
and L2); Gaussian-noise accuracy; LIGS (cosine of the input gradients at x and at x + N(0, σ²), eval mode). And what
the studies that read the cell declare (their ``MEASURES``, normrobust.settings.MEASUREMENTS): ``shifted_acc``
(accuracy against the labels (y+1) mod K, E4's "t+1"); ``adv_confidence`` (the mean confidence on the adversarial
examples and on the misclassified ones, [G]); ``nrf_reliance`` (on datasets with counterfactual test sets, the
generated one: accuracy on RF-only / NRF-only images and the NRF reliance on images whose RF and NRF disagree; with
several NRF families, also per family: its row's ``eps`` is the family's amplitude). Writes one JSON file per cell.

Every row has ``n`` (the images behind the value) and ``se``, its standard error over test images
(normrobust.sampling: Agresti-Coull for fractions, sd/√n for means): the verdict rule's test-sampling floor.

Beside the rows, ``images``: one entry per row, ``{"metric", "attack", "eps", "n", "values"}`` with the row's keys,
``values`` the row's quantity per test image in the test set's order (normrobust.perimage: 1 / 0 for a right / wrong
image, the cosine of LIGS, the confidence; NaN where the image has none: a dropped LIGS pair, an adversarial image
classified right for ``adv_wrong_confidence``, an image that went to neither class for ``nrf_reliance``) and ``n``
their number (the images evaluated). The row's ``value`` is their nanmean and its ``n`` their count that is not NaN.
Every cell of a dataset is scored on the same images, so two cells' entries pair image by image.
"""

from __future__ import annotations

import argparse
import time

from . import fast, metrics, perimage
from .data.loading import load_prepared, to_float
from .gpu import lease_info
from .layout import CELL_FORMAT
from .models.load import load_model, read_model_file
from .sampling import mean_se, rate_se
from .settings import EvalSettings, Execution
from .utils import log, pick_device, save_json, seeded_generator, set_threads


def _rate(metric: str, value: float, n: int, attack: str = "none", eps: float = 0) -> dict:
    """A metrics row of a fraction measured on ``n`` images."""
    return {"metric": metric, "attack": attack, "eps": eps, "value": value, "n": n, "se": rate_se(value, n)}


def _mean(metric: str, value: float, sd: float, n: int, attack: str = "none", eps: float = 0) -> dict:
    """A metrics row of a mean over ``n`` images with per-image standard deviation ``sd``."""
    return {"metric": metric, "attack": attack, "eps": eps, "value": value, "n": n, "se": mean_se(sd, n)}


class _Rows:
    """The rows of metrics.json and, for each, its per-image entry (``images``)."""

    def __init__(self):
        self.rows: list[dict] = []
        self.images: list[dict] = []

    def add(self, row: dict, values) -> None:
        """A row and its per-image values (in the test set's order; NaN where an image has none)."""
        self.rows.append(row)
        self.images.append({"metric": row["metric"], "attack": row["attack"], "eps": row["eps"], "n": len(values),
                            "values": perimage.encode(values)})


def evaluate_cell(model_path: str, data: dict, ev: EvalSettings, device, execution: Execution | None = None,
                  expect: str | None = None) -> dict:
    """Every metric of one trained cell on ``data`` (a prepared dataset already on ``device``)."""
    execution = execution or Execution.from_env()
    state = read_model_file(model_path, device)
    model, _, cell, meta = load_model(model_path, device, state, data_meta=data["meta"], expect=expect)
    fcfg = fast.resolve(execution.eval_fast, device, cell.norm)
    fast.setup(device)
    model = fast.wrap(model, fcfg, device)  # on the CPU by default: the model itself (plain fp32)
    seed, measures = cell.seed, set(ev.measures)
    bs = fast.eval_batch(fcfg, execution.eval_batch_size)
    x, y = to_float(data["test"]["x"][:ev.n_test]), data["test"]["y"][:ev.n_test]
    t0 = time.perf_counter()
    m = len(y)
    out = _Rows()
    acc, each = metrics.accuracy(model, x, y, batch_size=bs, per_image=True)
    out.add(_rate("clean_acc", acc, m), each)
    log(f"{cell.path}: clean accuracy {acc:.3f} on {m} test images")
    if "shifted_acc" in measures:  # accuracy against the labels t+1 (E4)
        acc, each = metrics.accuracy(model, x, (y + 1) % meta["num_classes"], batch_size=bs, per_image=True)
        out.add(_rate("shifted_acc", acc, m), each)
    if "train_acc" in measures:  # did it learn its own training set (a derived one: E3, E4)
        xt, yt = to_float(data["train"]["x"][:ev.n_test]), data["train"]["y"][:ev.n_test]
        acc, each = metrics.accuracy(model, xt, yt, batch_size=bs, per_image=True)
        out.add(_rate("train_acc", acc, len(yt)), each)
    for k, grid in enumerate(ev.attacks):  # k (attacks by name) and j (the grid) seed the attack's stream
        for j, (eps, spec) in enumerate(grid.points()):
            r = metrics.robust_eval(model, x, y, spec, batch_size=bs, per_image=True,
                                    generator=seeded_generator(seed, 100 + k, j, device=device))
            out.add(_rate("robust_acc", r["acc"], m, grid.name, eps), r["acc_images"])
            if "adv_confidence" in measures:
                out.add(_mean("adv_confidence", r["confidence"], r["confidence_sd"], r["n"], grid.name, eps),
                        r["confidence_images"])
                out.add(_mean("adv_wrong_confidence", r["wrong_confidence"], r["wrong_confidence_sd"], r["n_wrong"],
                              grid.name, eps), r["wrong_confidence_images"])
            log(f"  {grid.name} eps {eps}: {r['acc']:.3f} (confidence {r['confidence']:.3f}, "
                f"on errors {r['wrong_confidence']:.3f})")
    for j, std in enumerate(ev.noise_std):
        acc, each = metrics.noise_accuracy(model, x, y, std, batch_size=bs, per_image=True,
                                           generator=seeded_generator(seed, 200, j, device=device))
        out.add(_rate("noise_acc", acc, m, "gaussian", std), each)
    lg = metrics.ligs(model, x, y, sigma=ev.ligs_sigma, batch_size=bs, per_image=True,
                      generator=seeded_generator(seed, 300, device=device))
    out.add(_mean("ligs", lg["ligs"], lg["sd"], lg["n"]), lg["images"])
    log(f"  LIGS {lg['ligs']:.3f} ({lg['n']} pairs, {lg['dropped']} dropped)")
    cf = data.get("counterfactual")
    if cf and "nrf_reliance" in measures:
        _counterfactual_rows(out, model, cf, ev.n_test, bs, data["meta"])
    return {"cell": cell.as_dict(), "attack_mode": "eval", "device": str(device), "n_test": len(y),
            "ligs_pairs": lg["n"], "ligs_dropped": lg["dropped"], "seconds": time.perf_counter() - t0,
            "rows": out.rows, "images": out.images, "lease": lease_info(), "fast": fcfg, "batch_size": bs,
            "peak_gpu_mem_mib": fast.peak_mem_mib(device), "device_name": _device_name(device),
            "train_peak_gpu_mem_mib": state.get("peak_gpu_mem_mib")}  # training's, for the costs table


def _counterfactual_rows(out: _Rows, model, cf: dict, n: int, bs: int, meta: dict) -> None:
    """RF-only / NRF-only accuracy and NRF reliance on the generated dataset's counterfactual test sets, added to
    ``out``; with several NRF families also per family j (``nrf_only_f{j}``, ``conflict_f{j}``), the row's eps = its
    amplitude."""
    from .data.generated import nrf_amplitudes

    def add_reliance(c: dict, eps: float, suffix: str) -> float:
        rel = metrics.nrf_reliance(model, to_float(c["x"][:n]), c["y"][:n], c["y_nrf"][:n], batch_size=bs,
                                   per_image=True)
        m = rel["n"]
        decided = round((rel["rf_rate"] + rel["nrf_rate"]) * m)  # images that went to the RF's or the NRF's class
        out.add(_rate(f"conflict_rf_rate{suffix}", rel["rf_rate"], m, eps=eps), rel["rf_images"])
        out.add(_rate(f"conflict_nrf_rate{suffix}", rel["nrf_rate"], m, eps=eps), rel["nrf_images"])
        out.add(_rate(f"nrf_reliance{suffix}", rel["reliance"], decided, eps=eps), rel["reliance_images"])
        return rel["reliance"]

    for name in ("rf_only", "nrf_only"):
        acc, each = metrics.accuracy(model, to_float(cf[name]["x"][:n]), cf[name]["y"][:n], batch_size=bs,
                                     per_image=True)
        out.add(_rate(f"{name}_acc", acc, len(cf[name]["y"][:n])), each)
    log(f"  NRF reliance {add_reliance(cf['conflict'], 0, ''):.3f}")
    amps = nrf_amplitudes(meta.get("params") or {})
    for j, amp in enumerate(amps if f"conflict_f{len(amps) - 1}" in cf else []):
        acc, each = metrics.accuracy(model, to_float(cf[f"nrf_only_f{j}"]["x"][:n]), cf[f"nrf_only_f{j}"]["y"][:n],
                                     batch_size=bs, per_image=True)
        out.add(_rate("nrf_only_acc_family", acc, len(cf[f"nrf_only_f{j}"]["y"][:n]), eps=amp), each)
        reliance = add_reliance(cf[f"conflict_f{j}"], amp, "_family")
        log(f"  NRF family {j} (amplitude {amp:g}): reliance {reliance:.3f}, read alone {acc:.3f}")


def _device_name(device) -> str:
    """'cpu', or e.g. 'cuda (NVIDIA H200)': the report's hardware line."""
    import torch

    return f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust evaluate", description=__doc__)
    p.add_argument("--config", help="a config file: evaluate the --cell of it as the workflow would")
    p.add_argument("--cell", help="with --config: dataset/arch/norm/regime/s<seed>")
    p.add_argument("--model", nargs="+", help="the cells' model.pt (the seeds of a model, say)")
    p.add_argument("--data", help="prepared dataset file")
    p.add_argument("--settings", help="the model's evaluation settings, as JSON (written by the workflow)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: the config's, else auto)")
    p.add_argument("--out", nargs="+", help="output JSON, one per --model")
    p.add_argument("--trained-with", default=None, help="the digest of the training settings the models must have "
                                                         "(the workflow passes it: a model made by another config "
                                                         "stops the job)")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    if a.config or a.cell:
        from . import one_cell  # reads and validates a config: only for a cell run by hand

        one = one_cell.resolve(a.config, a.cell)
        a.model = a.model or [str(one_cell.need(one.model_file, "model"))]
        a.data = a.data or str(one_cell.need(one.data_file, "data"))
        a.settings = a.settings or one.plan.eval_settings(one.cell.model).to_json()
        a.device = a.device or one.config.get("device", "auto")
        a.out = a.out or [str(one.metrics_file)]
        a.threads = one_cell.THREADS if a.threads is None else a.threads  # as the workflow's jobs
    missing = [f"--{k}" for k in ("model", "data", "settings", "out") if getattr(a, k) is None]
    if missing:
        p.error(f"{', '.join(missing)} required (or --config FILE --cell {CELL_FORMAT})")
    if len(a.out) != len(a.model):
        raise SystemExit(f"--out: {len(a.out)} files for {len(a.model)} models (one output per --model)")
    try:
        ev = EvalSettings.from_json(a.settings)
    except (KeyError, TypeError, AttributeError) as e:
        raise SystemExit(f"--settings: not the evaluation settings the workflow writes ({type(e).__name__}: {e})") \
            from None
    except ValueError as e:
        raise SystemExit(f"--settings: {e}") from None
    set_threads(a.threads)
    device = pick_device(a.device)
    data = load_prepared(a.data, device)  # once for every model
    for model, out in zip(a.model, a.out):
        save_json(evaluate_cell(model, data, ev, device, expect=a.trained_with), out)
    return 0
