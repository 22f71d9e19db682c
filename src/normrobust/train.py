"""``python -m normrobust train``: train one cell, resumably.

One cell = one (dataset, arch, norm, regime, seed). The whole dataset sits on the device
as a uint8 tensor; batches are index slices of a seeded permutation. Every random stream
(init, shuffling, augmentation, attack starts) is derived from (seed, epoch), and the full
state (model, optimizer, scheduler, epoch, history) is saved atomically after each epoch,
so a run killed at any moment resumes from its last epoch and ends exactly where an
uninterrupted run would (bit for bit on the CPU).

Outputs in ``--out`` (the cell's directory):
  model.pt      final weights, the model's settings and the cell (written last: its presence means done)
  history.csv   epoch, lr, train_loss, clean_acc, robust_acc, ligs, ligs_se (its standard error over the
                images), n_test (images measured), seconds, and robust_acc_<name> for each attack of
                training.history.extra_attacks (E2: PGD-L2 beside PGD-L∞); from epoch 0, the initialised model
                measured before any training (its lr and train_loss empty, its streams keyed by epoch 0, the
                training's own streams untouched: the weights are those of a run without it)
  checkpoint.pt resume state (kept after the run; deleting it forces a fresh start)
  epochs/       weights at the epochs listed in training.save_epochs
  .train.lock   flock'ed by the trainer for its whole life (normrobust.cell_lock): a second trainer of the cell
                stops at once, naming the holder's pid
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from . import cell_lock, fast, metrics
from .attacks import attack, attack_mode
from .data.loading import augment, load_prepared, to_float
from .gpu import lease_info
from .layout import CELL_FORMAT, WILDCARDS, Cell, Layout
from .models.auxnorm import use_aux
from .models.build import build_model
from .regimes import OBJECTIVES, OPTIMIZERS, SCHEDULES
from .sampling import mean_se
from .settings import Execution, Regime, Training, TrainSettings
from .utils import atomic_write, load_torch, log, pick_device, save_torch, seeded_generator, set_threads

HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "clean_acc", "robust_acc", "ligs", "ligs_se", "n_test", "seconds")


class Diverged(RuntimeError):
    pass


#: seconds between two progress lines inside one epoch (a paper-scale epoch runs for minutes)
HEARTBEAT_S = 60.0


def make_optimizer(model, tr: Training):
    opt, lr, wd = tr.optimizer, tr.lr, tr.weight_decay
    if opt == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=tr.momentum, weight_decay=wd)
    if opt == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if opt == "adagrad":
        return torch.optim.Adagrad(model.parameters(), lr=lr, weight_decay=wd)
    raise ValueError(f"training.optimizer: unknown '{opt}' (allowed: {', '.join(OPTIMIZERS)})")


def make_scheduler(optimizer, tr: Training):
    """Stepped once per epoch."""
    sched = tr.schedule
    if sched["kind"] == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=sched.get("milestones", []),
                                                    gamma=sched.get("gamma", 0.1))
    if sched["kind"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=tr.epochs)
    if sched["kind"] == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1.0)
    raise ValueError(f"training.schedule.kind: unknown '{sched['kind']}' (allowed: {', '.join(SCHEDULES)})")


def make_adversarial(model, x, y, regime: Regime, generator, aux: bool, num_classes: int):
    """The regime's training attack, in the regime's model mode (eval, or train with frozen stats).

    A targeted attack goes toward a uniformly random wrong label; under AdvProp the attack is
    generated through the auxiliary norm."""
    spec = regime.attack
    target = y
    if spec.targeted:
        shift = torch.randint(1, num_classes, y.shape, generator=generator, device=y.device)
        target = (y + shift) % num_classes
    route = use_aux(model) if aux else nullcontext()
    with route, attack_mode(model, regime.attack_mode):
        x_adv = attack(model, x, target, spec, generator=generator)
    return x_adv.detach()


def ligs_penalty(model, x, y, sigma: float, generator) -> torch.Tensor:
    """Mean (1 − cos(g(x), g(x+v))) over the batch, g = ∇ₓ CE, differentiable in the weights
    (double backward). Computed in the model's current (train) mode."""
    v = torch.randn(x.shape, generator=generator, device=x.device) * sigma
    xs = torch.cat([x, x + v]).requires_grad_(True)
    loss = F.cross_entropy(model(xs).float(), torch.cat([y, y]), reduction="sum")
    (g,) = torch.autograd.grad(loss, xs, create_graph=True)
    g = g.flatten(1).float()
    cos = F.cosine_similarity(g[: len(x)], g[len(x):], dim=1, eps=1e-12)
    return (1 - cos).mean()


def batch_loss(model, x, y, regime: Regime, generator, aux: bool, num_classes: int) -> torch.Tensor:
    """The training loss of one batch under the regime's objective (model in train mode)."""
    obj = regime.objective
    if obj == "clean":
        return F.cross_entropy(model(x), y)
    if obj == "ligs_reg":
        return F.cross_entropy(model(x), y) + regime.ligs_weight * ligs_penalty(
            model, x, y, regime.ligs_sigma, generator)
    x_adv = make_adversarial(model, x, y, regime, generator, aux, num_classes)
    model.train()
    if obj == "adversarial":  # Madry: adversarial images only
        return F.cross_entropy(model(x_adv), y)
    if obj == "weighted":  # Goodfellow: α J(x) + (1 − α) J(x + η)
        a = regime.clean_weight
        return a * F.cross_entropy(model(x), y) + (1 - a) * F.cross_entropy(model(x_adv), y)
    if obj == "mixed":  # clean and adversarial in one batch through one shared norm; summed like AdvProp's
        # Lc + La (mean over the 2B batch × 2), so mixed and AdvProp differ only in the auxiliary norm
        return 2 * F.cross_entropy(model(torch.cat([x, x_adv])), torch.cat([y, y]))
    if obj == "advprop":  # clean through the main norm, adversarial through the auxiliary one
        clean = F.cross_entropy(model(x), y)
        if not aux:
            return clean + F.cross_entropy(model(x_adv), y)
        with use_aux(model):
            return clean + F.cross_entropy(model(x_adv), y)
    raise ValueError(f"regime objective: unknown '{obj}' (allowed: {', '.join(OBJECTIVES)})")


def _duration(seconds: float) -> str:
    """12s, 3m05s, 2h07m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    return f"{s // 60}m{s % 60:02d}s" if s < 3600 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def train_epoch(model, opt, data: dict, settings: TrainSettings, seed: int, epoch: int, device) -> float:
    """One pass over the training set; returns the mean training loss."""
    regime, aux = settings.regime, settings.aux_norm
    x_all, y_all = data["train"]["x"], data["train"]["y"]
    n, bs = x_all.shape[0], settings.training.batch_size
    perm = torch.randperm(n, generator=seeded_generator(seed, epoch, 1)).to(device)
    g_aug = seeded_generator(seed, epoch, 2, device=device)
    g_att = seeded_generator(seed, epoch, 3, device=device)
    aug = data["meta"].get("augment") or {}
    lazy = torch.device(device).type == "cuda"  # on CUDA: no host sync per step, losses checked once per epoch
    total, count, losses = 0.0, 0, []
    t0 = last_beat = time.monotonic()
    model.train()
    for i in range(0, n, bs):
        if i and time.monotonic() - last_beat >= HEARTBEAT_S:  # a long epoch (paper scale) says where it is
            last_beat, done = time.monotonic(), i / n
            log(f"  epoch {epoch}: {i}/{n} images ({done:.0%}), {_duration(last_beat - t0)} so far, about "
                f"{_duration((last_beat - t0) * (1 - done) / done)} to go")
        idx = perm[i:i + bs]
        x, y = to_float(x_all[idx]), y_all[idx]
        if aug:
            x = augment(x, g_aug, crop_pad=aug.get("crop_pad", 0), flip=aug.get("flip", False))
        loss = batch_loss(model, x, y, regime, g_att, aux, data["meta"]["num_classes"])
        if not lazy and not torch.isfinite(loss):
            _diverged(loss.item(), epoch, i // bs, opt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if lazy:
            losses.append(loss.detach().double() * y.shape[0])
        else:
            total += loss.item() * y.shape[0]
        count += y.shape[0]
    if lazy:
        t = torch.stack(losses).cpu()
        bad = (~torch.isfinite(t)).nonzero()
        if len(bad):
            _diverged(t[bad[0, 0]].item(), epoch, int(bad[0, 0]), opt)
        total = t.sum().item()
    return total / count


def _diverged(loss: float, epoch: int, step: int, opt):
    raise Diverged(f"loss is {loss} at epoch {epoch}, step {step}, lr {opt.param_groups[0]['lr']:g}")


def fast_settings(settings: TrainSettings, device, execution: Execution | None = None) -> dict:
    """The effective fast-path settings of a cell (see fast.py), from the execution details (``training.fast``)."""
    block = (execution or Execution.from_env()).train_fast
    return fast.resolve(block, device, settings.model.norm, double_backward=settings.regime.objective == "ligs_reg")


def measure(model, data: dict, settings: TrainSettings, seed: int, epoch: int) -> dict:
    """Per-epoch metrics on a fixed subset of the test set (eval mode): clean accuracy always; robust accuracy under
    the history attack and the extra attacks, and LIGS, only where the model's history asks for them (a study reads
    them: the plan's history_needs)."""
    h = settings.training.history
    x = to_float(data["test"]["x"][: h.n_test])
    y = data["test"]["y"][: h.n_test]
    dev = x.device
    out = {"clean_acc": metrics.accuracy(model, x, y), "n_test": len(y)}
    if h.attack is not None:
        out["robust_acc"] = metrics.robust_accuracy(model, x, y, h.attack,
                                                    generator=seeded_generator(seed, epoch, 4, device=dev))
    if h.ligs:
        lg = metrics.ligs(model, x, y, sigma=settings.ligs_sigma,
                          generator=seeded_generator(seed, epoch, 5, device=dev))
        out["ligs"], out["ligs_se"] = lg["ligs"], mean_se(lg["sd"], lg["n"])
    for k, (name, spec) in enumerate(h.extra):
        out[f"robust_acc_{name}"] = metrics.robust_accuracy(
            model, x, y, spec, generator=seeded_generator(seed, epoch, 6 + k, device=dev))
    return out


def _initial_row(model, data: dict, settings: TrainSettings, seed: int, device) -> dict:
    """The history's epoch-0 row: :func:`measure` on the initialised model, before any training (no lr, no loss).
    Every random state it could touch is restored after (torch's global stream, the device's), and it measures in
    eval mode, so training goes on exactly as it would without it."""
    t0 = time.perf_counter()
    cuda = list(range(torch.cuda.device_count())) if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        row = {"epoch": 0, **measure(model, data, settings, seed, 0)}
    row["seconds"] = time.perf_counter() - t0
    measured = " ".join(f"{k.replace('_acc', '')} {row[k]:.3f}" for k in ("clean_acc", "robust_acc", "ligs")
                        if k in row)
    log(f"epoch 0 (initialised): {measured} ({row['seconds']:.1f}s)")
    return row


def history_csv(rows: list[dict]) -> str:
    """The history rows as CSV: the fixed columns (empty where not measured), then robust_acc_<name> columns."""
    buf = io.StringIO()
    extra = sorted({k for r in rows for k in r} - set(HISTORY_COLUMNS))
    cols = [*HISTORY_COLUMNS, *extra]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in cols})
    return buf.getvalue()


def _try_resume(path: Path, resume_key: str, model, opt, sched):
    """Load the resume state if it exists, is readable and belongs to these settings and seed (``resume_key``)."""
    if not path.exists():
        return 0, [], {}
    try:
        state = load_torch(path)
        if state["settings"] != resume_key:
            log(f"{path} belongs to other settings: starting afresh")
            return 0, [], {}
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])  # the global stream (dropout) continues where it was
    except Exception as e:  # a damaged or tampered file is never trusted
        log(f"ignoring unreadable resume state {path} ({type(e).__name__}: {e}); starting afresh")
        return 0, [], {}
    log(f"resuming after epoch {state['epoch']}")
    return state["epoch"], state["history"], state.get("kept", {})


def parse_settings(text: str) -> TrainSettings:
    """``--settings`` JSON as the workflow writes it (one line naming what is wrong)."""
    try:
        return TrainSettings.from_json(text)
    except ValueError as e:
        raise SystemExit(f"--settings: not valid JSON ({e})") from None
    except (KeyError, TypeError, AttributeError) as e:
        raise SystemExit(f"--settings: not the training settings the workflow writes ({type(e).__name__}: {e}); "
                         f"or use --config FILE --cell {CELL_FORMAT}") from None


def train(settings: TrainSettings, data_path: str, out_dir: str | Path, seed: int = 0, threads: int | None = None,
          device_name: str | None = None) -> list[dict]:
    """Train one cell (the model of ``settings``, seed ``seed``) into ``out_dir`` (the cell's own directory); returns
    its history. ``device_name``: auto | cpu | cuda (default $NORMROBUST_DEVICE, else auto)."""
    with cell_lock.hold([out_dir]):  # before anything of the cell is read or written
        set_threads(threads)
        device = pick_device(device_name)
        return train_cell(settings, seed, load_prepared(data_path, device), out_dir, device)


def train_seeds(settings: TrainSettings, seeds: list[int], data_path: str, out_dir: str, threads: int | None = None,
                device_name: str | None = None) -> None:
    """Train the model ``settings.model`` for every seed, into ``out_dir/s<seed>``: one process, the dataset loaded
    once (the workflow's training job: the cost of starting Python and torch is paid once per model, not per seed).
    Every seed's directory is locked first, for the whole job: a second trainer of the cell stops at once."""
    with cell_lock.hold([Path(out_dir) / f"s{seed}" for seed in seeds]):
        set_threads(threads)
        device = pick_device(device_name)
        data = load_prepared(data_path, device)
        for k, seed in enumerate(seeds):
            log(f"seed {seed} ({k + 1} of {len(seeds)})")
            train_cell(settings, int(seed), data, Path(out_dir) / f"s{seed}", device)


def train_cell(settings: TrainSettings, seed: int, data: dict, out_dir: str | Path, device) -> list[dict]:
    """Train one cell (the model of ``settings``, seed ``seed``) on ``data`` (a prepared dataset on ``device``),
    resumably; returns its history. Holds the cell's lock (normrobust.cell_lock; taken again at no cost if this
    process holds it already)."""
    with cell_lock.hold([out_dir]):
        return _train_cell(settings, settings.model.cell(seed), data, Path(out_dir), device)


def _train_cell(settings: TrainSettings, cell: Cell, data: dict, out: Path, device) -> list[dict]:
    tr = settings.training
    n_train = data["train"]["x"].shape[0]
    if tr.batch_size > n_train:
        raise SystemExit(f"training.batch_size: {tr.batch_size} is larger than the training set "
                         f"({n_train} images of '{cell.dataset}'); allowed 1..{n_train}")
    torch.manual_seed(cell.seed)
    net = build_model(settings.arch, cell.norm, data["meta"], aux_norm=settings.aux_norm).to(device)
    fcfg = fast_settings(settings, device)
    fast.setup(device)
    model = fast.wrap(net, fcfg, device)  # on the CPU by default: net itself (plain fp32)
    opt = make_optimizer(net, tr)
    sched = make_scheduler(opt, tr)
    ckpt = out / "checkpoint.pt"
    resume_key = json.dumps({"settings": settings.to_dict(), "seed": cell.seed}, sort_keys=True)
    start, history, kept = _try_resume(ckpt, resume_key, net, opt, sched)
    for e, weights in kept.items():  # saved epochs a rerun deleted (Snakemake removes an incomplete job's outputs)
        if not (out / "epochs" / f"epoch{e}.pt").exists():
            save_torch({"state_dict": weights, "epoch": e}, out / "epochs" / f"epoch{e}.pt")
    log(f"training {cell.path} on {device} for {tr.epochs} epochs ({n_train} images, batch {tr.batch_size}; "
        f"fast {fcfg})")
    if start == 0:  # a fresh start (a resumed run's history holds its epoch-0 row)
        history.append(_initial_row(model, data, settings, cell.seed, device))
    for epoch in range(start + 1, tr.epochs + 1):
        t0 = time.perf_counter()
        lr = opt.param_groups[0]["lr"]
        try:
            loss = train_epoch(model, opt, data, settings, cell.seed, epoch, device)
        except Diverged as e:
            kept_ = f"last good checkpoint kept: {ckpt} (epoch {start})" if ckpt.exists() else "no checkpoint yet"
            raise SystemExit(f"training diverged: {e}; lower training.lr. {kept_}") from None
        sched.step()
        row = {"epoch": epoch, "lr": lr, "train_loss": loss, **measure(model, data, settings, cell.seed, epoch)}
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        measured = " ".join(f"{k.replace('_acc', '')} {row[k]:.3f}" for k in ("clean_acc", "robust_acc", "ligs")
                            if k in row)
        left, recent = tr.epochs - epoch, [r["seconds"] for r in history if r["epoch"] > 0][-3:]
        eta = f"; ETA {_duration(left * sum(recent) / len(recent))}" if left else ""
        log(f"epoch {epoch}/{tr.epochs}: loss {loss:.4f} {measured} ({row['seconds']:.1f}s{eta})")
        if epoch in tr.save_epochs:
            kept[epoch] = {k: v.detach().clone() for k, v in net.state_dict().items()}
            save_torch({"state_dict": kept[epoch], "epoch": epoch}, out / "epochs" / f"epoch{epoch}.pt")
        save_torch({"settings": resume_key, "epoch": epoch, "history": history, "model": net.state_dict(),
                    "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": torch.get_rng_state(),
                    "kept": kept},
                   ckpt)
        start = epoch
    for e, weights in kept.items():  # a saved epoch another job's cleanup removed while this one trained
        if not (out / "epochs" / f"epoch{e}.pt").exists():
            save_torch({"state_dict": weights, "epoch": e}, out / "epochs" / f"epoch{e}.pt")
    atomic_write(out / "history.csv", lambda f: f.write(history_csv(history)), mode="w")
    save_torch({"state_dict": net.state_dict(), "settings": settings.to_json(), "cell": cell.as_dict(),
                "meta": _plain_meta(data["meta"]), "epochs": tr.epochs, "device": str(device),
                "attack_mode": settings.regime.attack_mode, "lease": lease_info(), "fast": fcfg,
                "peak_gpu_mem_mib": fast.peak_mem_mib(device)},
               out / "model.pt")
    log(f"done: {out / 'model.pt'}")
    return history


def _plain_meta(meta: dict) -> dict:
    return {k: v for k, v in meta.items() if not isinstance(v, torch.Tensor)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="a config file: train the --cell of it as the workflow would, outside Snakemake")
    p.add_argument("--cell", help="with --config: dataset/arch/norm/regime/s<seed>")
    p.add_argument("--settings", help="the model's training settings as JSON (written by the workflow)")
    p.add_argument("--data", help=f"prepared dataset file (with --config: {Layout().data('<dataset>')})")
    p.add_argument("--out", help="the model's output directory, holding s<seed>/ for each of --seeds (with "
                                 f"--config: {Layout().model_dir(WILDCARDS)})")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="train these seeds, one after the other")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda (default: $NORMROBUST_DEVICE, else auto)")
    a = p.parse_args(argv)
    if a.config or a.cell:
        from . import one_cell  # reads and validates a config: only for a cell run by hand

        one = one_cell.resolve(a.config, a.cell)
        data = a.data or one_cell.need(one.data_file, "data")
        # one thread unless told otherwise, as the workflow's jobs (threads change float rounding, so the weights)
        train_seeds(one.plan.train_settings(one.cell.model), [one.cell.seed], str(data), a.out or one.models_dir,
                    one_cell.THREADS if a.threads is None else a.threads, a.device or one.config.get("device"))
        return 0
    missing = [f"--{k}" for k in ("settings", "data", "out", "seeds") if getattr(a, k) is None]
    if missing:
        p.error(f"{', '.join(missing)} required (or --config FILE --cell {CELL_FORMAT})")
    train_seeds(parse_settings(a.settings), a.seeds, a.data, a.out, a.threads, a.device)
    return 0
