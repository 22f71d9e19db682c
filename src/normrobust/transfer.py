"""``python -m normrobust transfer``: attacks made on one source cell, tried on target cells.

Adversarial examples (the study's transfer attack) are generated on the source model (eval
mode) from the first ``n_test`` test images; the source is the finished model or, with
``--source-epoch``, its weights saved at an early epoch (E9's early-stopped sources). For each
target, success = the target misclassifies an adversarial image whose clean version it
classified right; error rate = the fraction of all adversarial images the target gets wrong
([G]'s transfer numbers). Writes one JSON with a row per target and the attack it used.

Per image (normrobust.perimage, in the test set's order): each row's ``images`` holds 1 where the target got the
image right clean and wrong adversarial, 0 where right both times, NaN where wrong clean (its nanmean is the row's
``success_rate``, its count that is not NaN the row's ``n``, its length ``n_total``). ``white_box`` is the same
measured on the source itself (the weights the examples were made with): ``{"success_rate", "n", "images"}``, the
white-box success of the transfer attack on the same images.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from . import fast, metrics, perimage
from .attacks import attack, attack_mode
from .data.loading import load_prepared, to_float
from .gpu import lease_info
from .models.load import cell_named_by, load_model
from .settings import Execution, TransferSettings
from .utils import error_line, load_torch, log, pick_device, save_json, seeded_generator, set_threads


def _success(model, x, x_adv, y, batch_size: int) -> tuple[float, int, float, np.ndarray]:
    """(success rate, images right clean, error rate, per image: 1 fooled / 0 not / NaN wrong clean) of the
    adversarial examples ``x_adv`` on ``model``."""
    right = metrics.predict(model, x, batch_size=batch_size) == y
    fooled = metrics.predict(model, x_adv, batch_size=batch_size) != y
    n_right = int(right.sum())
    rate = float((fooled & right).sum()) / n_right if n_right else float("nan")
    each = torch.where(right, fooled.double(), float("nan")).cpu().numpy()
    return rate, n_right, float(fooled.double().mean()), each


def _project(delta: torch.Tensor, templates: torch.Tensor) -> torch.Tensor:
    """``delta`` [N, ...] projected onto the span of exactly orthogonal ``templates`` [T, ...], each image's
    projection rescaled to the L2 norm of its ``delta`` (zero stays zero)."""
    t = templates.reshape(templates.shape[0], -1).to(delta)
    d = delta.reshape(delta.shape[0], -1)
    p = (d @ t.T / t.pow(2).sum(1)) @ t
    scale = d.norm(dim=1, keepdim=True) / p.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (p * scale).reshape(delta.shape)


def feature_parts(x: torch.Tensor, x_adv: torch.Tensor, templates: dict) -> dict[str, torch.Tensor]:
    """TRANSFER_MEASUREMENTS["rf_nrf"]: the examples' perturbation projected onto the robust features' span and onto
    the non-robust features' span (every family), each at the full perturbation's L2 norm, as images in [0,1]."""
    delta = x_adv - x
    nrf = templates["nrf_families"].reshape(-1, *templates["nrf_families"].shape[2:])
    return {part: (x + _project(delta, t)).clamp(0, 1) for part, t in (("rf", templates["rf"]), ("nrf", nrf))}


def transfer_one(source: str, targets: list[str], data: dict, ts: TransferSettings, device,
                 source_epoch: str | None = None, execution: Execution | None = None,
                 expect: dict[str, str] | None = None) -> dict:
    """Attacks made on ``source`` (its final weights, or ``source_epoch``'s) tried on every target, on ``data``, a
    prepared dataset already on ``device``."""
    execution = execution or Execution.from_env()
    expect = expect or {}
    src, settings, cell, _ = load_model(source, device, data_meta=data["meta"], expect=expect.get(source))
    epoch, final = settings.training.epochs, True
    if source_epoch:  # an early-stopped source: the same network with the weights of a saved epoch
        if cell_named_by(source_epoch) != cell_named_by(source):
            raise SystemExit(f"--source-epoch {source_epoch} is not an epoch of the source {source}")
        try:
            state = load_torch(source_epoch, map_location=device)
            src.load_state_dict(state["state_dict"])
        except Exception as e:  # damaged, or weights of another network
            raise SystemExit(f"{source_epoch} is damaged or not an epoch of {source} ({type(e).__name__}: "
                             f"{error_line(e, 120)}); delete it and rerun snakemake to retrain that cell") from None
        epoch, final = int(state["epoch"]), False
    fcfg = fast.resolve(execution.transfer_fast, device, cell.norm)
    fast.setup(device)
    src = fast.wrap(src, fcfg, device)  # on the CPU by default: the model itself (plain fp32)
    x, y = to_float(data["test"]["x"][:ts.n_test]), data["test"]["y"][:ts.n_test]
    g = seeded_generator(cell.seed, 400, device=device)
    bs = fast.eval_batch(fcfg, execution.transfer_batch_size)
    with attack_mode(src, "eval"):
        x_adv = torch.cat([attack(src, x[i:i + bs], y[i:i + bs], ts.attack, generator=g).detach()
                           for i in range(0, len(y), bs)])
    rows = []
    pbs = fast.eval_batch(fcfg, 512)
    parts = feature_parts(x, x_adv, data["templates"]) if "rf_nrf" in ts.measures and "templates" in data else {}
    for t in targets:
        model, _, tcell, _ = load_model(t, device, data_meta=data["meta"], expect=expect.get(t))
        model = fast.wrap(model, fast.resolve(execution.transfer_fast, device, tcell.norm), device)
        rate, n_right, error, each = _success(model, x, x_adv, y, pbs)
        rows.append({"target": tcell.as_dict(), "success_rate": rate, "n": n_right, "error_rate": error,
                     "n_total": len(y), "images": perimage.encode(each)})
        for part, xp in parts.items():
            prate, _, _, peach = _success(model, x, xp, y, pbs)
            rows[-1].update({f"{part}_success_rate": prate, f"{part}_images": perimage.encode(peach)})
        log(f"{cell.norm}/{cell.regime} (epoch {epoch}) → {tcell.norm}/{tcell.regime}: {rate:.3f} of {n_right} "
            f"(error {rows[-1]['error_rate']:.3f})")
    rate, n_right, _, each = _success(src, x, x_adv, y, pbs)  # white box: the source on its own examples
    log(f"{cell.norm}/{cell.regime} (epoch {epoch}) white box: {rate:.3f} of {n_right}")
    return {"source": cell.as_dict(), "source_epoch": epoch, "source_final": final, "study": ts.study,
            "attack": ts.attack.spec, "attack_mode": "eval", "rows": rows,
            "white_box": {"success_rate": rate, "n": n_right, "images": perimage.encode(each)},
            "lease": lease_info(), "fast": fcfg, "batch_size": bs, "peak_gpu_mem_mib": fast.peak_mem_mib(device)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust transfer", description=__doc__)
    p.add_argument("--plan", required=True,
                   help="the sources, as JSON: a list of {source (model.pt), source_epoch (a saved epoch's weights or "
                        "null), targets (model.pt files), out (JSON)}; the seeds of one source model, say")
    p.add_argument("--data", required=True)
    p.add_argument("--settings", required=True, help="the study's transfer settings (study, n_test, attack), as JSON")
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: $NORMROBUST_DEVICE, else auto)")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    try:
        ts = TransferSettings.from_json(a.settings)
    except (KeyError, TypeError) as e:
        raise SystemExit(f"--settings: not the transfer settings the workflow writes ({type(e).__name__}: {e})") \
            from None
    set_threads(a.threads)
    device = pick_device(a.device)
    data = load_prepared(a.data, device)  # once for every source
    for job in json.loads(a.plan):
        save_json(transfer_one(job["source"], job["targets"], data, ts, device, job.get("source_epoch"),
                               expect=job.get("trained_with")), job["out"])
    return 0
