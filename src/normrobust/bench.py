"""``python -m normrobust.bench [--quick] [--out PATH]``: our code paths against the usual way, side by side.

Every comparison runs in one process on the same device, model (same init) and batch size:

train_throughput  images/s of standard SGD training. ours: ``train.train_epoch`` (dataset on the device as
                  uint8, batched crop+flip, the fast path of fast.py on CUDA). reference: the usual loop, a
                  torchvision-style Dataset (PIL image per sample; RandomCrop(pad) + RandomHorizontalFlip +
                  ToTensor per sample) and a DataLoader (shuffle; ``num_workers`` 2, and on the CPU also 0, see
                  :func:`default_workers`; --ref-workers), fp32,
                  ``.to(device)`` per batch, ``loss.item()`` per step. One warm-up epoch each, then timed epochs.
train_flops       achieved TFLOP/s of the same two runs: FLOPs per training image (forward + backward, counted by
                  torch.utils.flop_counter.FlopCounterMode) × images/s; with the model FLOPs utilisation (MFU)
                  against the device's dense bf16 peak where it is known (None on CPUs).
train_channels_last  (CUDA only) ours with channels_last (ours) vs contiguous (reference), both bf16: the
                  measurement behind fast.CHANNELS_LAST.
pgd10_throughput  images/s of PGD-L∞ (10 steps, no random start) in eval mode. ours: ``attacks.pgd`` (fast path on
                  CUDA); reference: ``torchattacks.PGD`` on the plain fp32 model. Both robust accuracies are recorded.
ligs_throughput   images/s of LIGS. ours: ``metrics.ligs`` (x and x+v in one pass, input gradients only);
                  reference: per batch two separate forward/backward passes with ``loss.backward()`` and
                  ``x.grad``, then F.cosine_similarity. Both values are recorded (same noise).

The JSON is a list of records ``{name, ours, reference, ratio = ours/reference, unit, device, versions, mode,
arch, norm, batch, ...}``; a sibling ``.cmd`` file holds the command line. Without ``--out`` the file goes to
``benchmarks/results/<device-kind>-<mode>-<YYYYMMDD-HHMMSS>.json`` and ``benchmarks/PERFORMANCE.md`` is rewritten
from the latest result file of each (device kind, mode).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import re
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from . import fast, metrics
from .attacks import attack_mode, pgd, randn_like
from .data.generated import generate
from .layout import Model
from .models.build import build_model
from .settings import History, Regime, Training, TrainSettings
from .train import train_epoch
from .utils import atomic_write, seeded_generator

RESULTS_DIR = Path("benchmarks/results")
PERFORMANCE_MD = Path("benchmarks/PERFORMANCE.md")
RESNET18 = {"kind": "resnet", "blocks": [2, 2, 2, 2], "widths": [64, 128, 256, 512]}
# dense bf16 peak in FLOP/s, by a substring of the device name (lowercase)
PEAK_BF16 = {"h200": 989e12, "h100": 989e12, "a100": 312e12, "l40s": 362e12, "l4": 121e12, "a10g": 125e12,
             "4090": 165e12, "3090": 71e12, "v100": 125e12}
MODES = {
    # CPU-sized: generated 16x16 images, the default config's small CNN
    "quick": dict(archs={"cnn": {"kind": "cnn", "widths": [16, 32, 64]}}, norms=["none", "bn", "ln", "in", "gn"],
                  image=16, n_train=4096, n_eval=512, batch=128, epochs=1, pad=2, rounds=3),
    # GPU: ResNet-18 on CIFAR-shaped generated data (3x32x32, 10 classes)
    "full": dict(archs={"resnet18": RESNET18}, norms=["none", "bn", "gn", "ln", "in"],
                 image=32, n_train=20480, n_eval=4096, batch=512, epochs=1, pad=4, rounds=3),
    # tests: seconds
    "tiny": dict(archs={"cnn": {"kind": "cnn", "widths": [4, 8]}}, norms=["bn"],
                 image=8, n_train=128, n_eval=64, batch=32, epochs=1, pad=1, rounds=1),
}
PGD = dict(eps=8 / 255, step=2 / 255, steps=10)  # the usual L∞ budget; at 4/255 a briefly trained model is not dented
LR = dict(lr=0.05, momentum=0.9, weight_decay=5e-4)


# ------------------------------------------------------------------------------------------------- helpers

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(seconds, result) of fn() between two device syncs."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def device_kind(device) -> str:
    if device.type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(device).lower()).strip("-")


def versions(device) -> dict:
    import torchvision

    v = {"torch": torch.__version__, "torchvision": torchvision.__version__, "python": platform.python_version(),
         "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine()}
    try:
        import torchattacks

        v["torchattacks"] = torchattacks.__version__
    except ImportError:
        v["torchattacks"] = None
    if device.type == "cuda":
        v.update(cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                 gpu=torch.cuda.get_device_name(device))
    return v


def peak_flops(device) -> float | None:
    """Dense bf16 peak FLOP/s of a known GPU; None on CPUs (no reliable single number)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def flops_per_sample(model, x, y=None, train: bool = True) -> float:
    """FLOPs per sample of one pass, counted by FlopCounterMode: forward (+ backward of CE when ``train``)."""
    model = copy.deepcopy(model)  # BN running statistics of the measured model stay as they are
    model.train(train)
    with FlopCounterMode(display=False) as fc:
        out = model(x)
        if train:
            F.cross_entropy(out.float(), y).backward()
    return fc.get_total_flops() / x.shape[0]


def side_by_side(ours, reference, rounds: int, device):
    """Best (shortest) seconds of ``ours()`` and ``reference()`` over ``rounds`` alternating timed calls, and the
    results of their last calls. Alternating and taking the best of each keeps a busy machine's noise out."""
    t_o, t_r = [], []
    for _ in range(rounds):
        s, out_o = timed(ours, device)
        t_o.append(s)
        s, out_r = timed(reference, device)
        t_r.append(s)
    return min(t_o), min(t_r), out_o, out_r


def record(name, ours, reference, unit, ctx, **extra) -> dict:
    ratio = ours / reference if reference else None
    return {"name": name, "ours": ours, "reference": reference, "ratio": ratio, "unit": unit, **ctx, **extra}


# ------------------------------------------------------------------------------------------------- training

class RefDataset(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR10 style: HWC uint8 array, one PIL image and one transform call per sample."""

    def __init__(self, x_uint8, y, transform):
        self.data = x_uint8.permute(0, 2, 3, 1).cpu().numpy()
        self.targets = y.cpu().tolist()
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def reference_loader(x_uint8, y, batch, pad, workers, device):
    import torchvision.transforms as T

    tf = T.Compose([T.RandomCrop(x_uint8.shape[-1], padding=pad), T.RandomHorizontalFlip(), T.ToTensor()])
    return torch.utils.data.DataLoader(RefDataset(x_uint8, y, tf), batch_size=batch, shuffle=True,
                                       num_workers=workers, pin_memory=device.type == "cuda")


def reference_epoch(model, opt, loader, device) -> float:
    """The usual training loop: batches from the DataLoader, .to(device), fp32, loss.item() each step."""
    model.train()
    total = 0.0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        total += loss.item()
    return total


def ours_trainer(model, data, norm, batch, epochs, device):
    """A call of ``epochs`` epochs of train.train_epoch, after one warm-up epoch."""
    settings = TrainSettings(Model("bench", "bench", norm, "standard"), {}, Regime("standard", None, "clean"),
                             Training(1, batch, LR["lr"], History(0)))
    opt = torch.optim.SGD(model.parameters(), **LR)
    epoch = iter(range(10**9))
    run = lambda: [train_epoch(model, opt, data, settings, 0, next(epoch), device) for _ in range(epochs)]  # noqa: E731
    train_epoch(model, opt, data, settings, 0, next(epoch), device)
    return run


def reference_trainer(model, data, batch, epochs, pad, workers, device):
    """A call of ``epochs`` epochs of the usual loop (a new DataLoader iterator each epoch), after one warm-up."""
    loader = reference_loader(data["train"]["x"], data["train"]["y"], batch, pad, workers, device)
    opt = torch.optim.SGD(model.parameters(), **LR)
    run = lambda: [reference_epoch(model, opt, loader, device) for _ in range(epochs)]  # noqa: E731
    reference_epoch(model, opt, loader, device)
    return run


# ------------------------------------------------------------------------------------------------- attacks, LIGS

def robust_acc(model, x, x_adv, y) -> float:
    with torch.no_grad(), attack_mode(model, "eval"):
        return ((model(x).argmax(1) == y) & (model(x_adv).argmax(1) == y)).double().mean().item()


def ours_pgd(model, x, y, batch):
    with attack_mode(model, "eval"):
        return torch.cat([pgd(model, x[i:i + batch], y[i:i + batch], PGD["eps"], PGD["step"], PGD["steps"])
                          for i in range(0, len(x), batch)])


def reference_pgd(model, x, y, batch):
    import torchattacks

    atk = torchattacks.PGD(model, eps=PGD["eps"], alpha=PGD["step"], steps=PGD["steps"], random_start=False)
    return torch.cat([atk(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)])


def reference_ligs(model, x, y, v, batch) -> float:
    """LIGS the straightforward way: per batch, two forward/backward passes, x.grad, F.cosine_similarity."""
    model.eval()
    cos = []
    for i in range(0, len(x), batch):
        grads = []
        for inp in (x[i:i + batch], x[i:i + batch] + v[i:i + batch]):
            inp = inp.clone().requires_grad_(True)
            model.zero_grad()
            F.cross_entropy(model(inp), y[i:i + batch]).backward()
            grads.append(inp.grad.flatten(1))
        cos.append(F.cosine_similarity(grads[0], grads[1], dim=1))
    model.zero_grad(set_to_none=True)
    c = torch.cat(cos)
    return c[torch.isfinite(c)].double().mean().item()


# ------------------------------------------------------------------------------------------------- the run

def default_workers(device) -> list[int]:
    """The reference DataLoader's num_workers: 2, the usual value of CIFAR-10 training scripts (the PyTorch tutorial,
    kuangliu/pytorch-cifar); on the CPU also 0, since there worker processes take cores from the training itself
    (on a 2-core machine 0 is the faster reference). One train_throughput record per value."""
    return [2] if torch.device(device).type == "cuda" else [0, 2]


def run(mode: str = "quick", device: str | None = None, ref_workers: list[int] | None = None,
        compile_: bool = False, norms: list[str] | None = None, log=print) -> list[dict]:
    m = MODES[mode]
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ref_workers = default_workers(dev) if ref_workers is None else ref_workers
    fast.setup(dev)
    vers = versions(dev)
    gen = generate(seed=0, n_train=m["n_train"], n_test=m["n_eval"], image_size=m["image"])
    meta = {**gen["meta"], "augment": {"crop_pad": m["pad"], "flip": True}}
    data = {"train": {k: gen["train"][k].to(dev) for k in ("x", "y")}, "meta": meta}
    x_test, y_test = gen["test"]["x"].to(dev).float().div(255), gen["test"]["y"].to(dev)
    b, records = m["batch"], []
    for arch_name, arch in m["archs"].items():
        for norm in norms or m["norms"]:
            log(f"[bench] {arch_name}/{norm} on {dev} ...")
            fast.setup(dev)  # peak GPU memory per (arch, norm)
            ctx = {"device": str(dev) + (f" ({vers['gpu']})" if dev.type == "cuda" else ""), "versions": vers,
                   "mode": mode, "arch": arch_name, "norm": norm, "batch": b}
            torch.manual_seed(0)
            net = build_model(arch, norm, meta).to(dev)
            ref_net = copy.deepcopy(net)  # same init, plain fp32 contiguous
            fcfg = fast.resolve({"compile": compile_}, dev, norm)
            model = fast.wrap(net, fcfg, dev)
            ours_run, best = ours_trainer(model, data, norm, b, m["epochs"], dev), None
            for w in ref_workers:
                t_o, t_r, _, _ = side_by_side(ours_run, reference_trainer(copy.deepcopy(ref_net), data, b, m["epochs"],
                                                                          m["pad"], w, dev), m["rounds"], dev)
                ours, ref = m["epochs"] * m["n_train"] / t_o, m["epochs"] * m["n_train"] / t_r
                records.append(record("train_throughput", ours, ref, "images/s", ctx, fast=fcfg,
                                      n_images=m["n_train"], epochs=m["epochs"], rounds=m["rounds"],
                                      ref_num_workers=w, peak_gpu_mem_mib=fast.peak_mem_mib(dev)))
                best = max(best or records[-1], records[-1], key=lambda r: r["reference"])
            ours, ref = best["ours"], best["reference"]  # MFU against the fastest reference
            fl = flops_per_sample(ref_net, data["train"]["x"][:b].float().div(255), data["train"]["y"][:b])
            peak = peak_flops(dev)
            records.append(record("train_flops", fl * ours / 1e12, fl * ref / 1e12, "TFLOP/s", ctx,
                                  flops_per_image=fl, peak_tflops=peak and peak / 1e12,
                                  mfu_ours=peak and fl * ours / peak, mfu_reference=peak and fl * ref / peak,
                                  ref_num_workers=best["ref_num_workers"],
                                  note=None if peak else "no known peak for this device: MFU not computed"))
            if dev.type == "cuda":  # channels_last vs contiguous, both on the bf16 fast path
                runs = []
                for cl in (True, False):
                    torch.manual_seed(0)
                    n2 = build_model(arch, norm, meta).to(dev)
                    c2 = fast.resolve({"channels_last": cl, "compile": compile_}, dev, norm)
                    runs.append(ours_trainer(fast.wrap(n2, c2, dev), data, norm, b, m["epochs"], dev))
                t_cl, t_co, _, _ = side_by_side(*runs, m["rounds"], dev)
                n_img = m["epochs"] * m["n_train"]
                records.append(record("train_channels_last", n_img / t_cl, n_img / t_co, "images/s", ctx,
                                      note="ours: channels_last, reference: contiguous (both bf16 autocast)"))
            # PGD-10 on the model trained above (a few epochs: 'trained-ish'); each attack judged by its own model
            ref_net.load_state_dict(fast.unwrap(model).state_dict())
            ref_net.eval()
            x, y = x_test, y_test
            ours_pgd(model, x[:b], y[:b], b), reference_pgd(ref_net, x[:b], y[:b], b)  # warm-up
            t_o, t_r, xa_o, xa_r = side_by_side(lambda: ours_pgd(model, x, y, b),
                                                lambda: reference_pgd(ref_net, x, y, b), m["rounds"], dev)
            ra_o, ra_r = robust_acc(model, x, xa_o, y), robust_acc(ref_net, x, xa_r, y)
            records.append(record("pgd10_throughput", len(x) / t_o, len(x) / t_r, "images/s", ctx,
                                  n_images=len(x), eps=PGD["eps"], step=PGD["step"], steps=PGD["steps"],
                                  ours_robust_acc=ra_o, reference_robust_acc=ra_r, robust_acc_diff=ra_o - ra_r,
                                  clean_acc=metrics.accuracy(ref_net, x, y)))
            # LIGS: the same noise for both
            v = 0.01 * randn_like(x, seeded_generator(0, 5, device=dev))
            t_o, t_r, lg, lg_r = side_by_side(
                lambda: metrics.ligs(model, x, y, sigma=0.01, batch_size=b,
                                     generator=seeded_generator(0, 5, device=dev)),
                lambda: reference_ligs(ref_net, x, y, v, b), m["rounds"], dev)
            records.append(record("ligs_throughput", len(x) / t_o, len(x) / t_r, "images/s", ctx, n_images=len(x),
                                  ours_ligs=lg["ligs"], reference_ligs=lg_r, ligs_diff=lg["ligs"] - lg_r))
    return records


# ------------------------------------------------------------------------------------------------- output

def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"


def table(records: list[dict], markdown: bool = False) -> str:
    cols = ("name", "arch", "norm", "batch", "ours", "reference", "ratio", "unit", "notes")
    rows = []
    for r in records:
        notes = ""
        if r["name"] == "pgd10_throughput":
            notes = f"robust acc {r['ours_robust_acc']:.3f} vs {r['reference_robust_acc']:.3f}"
        elif r["name"] == "ligs_throughput":
            notes = f"LIGS {r['ours_ligs']:.4f} vs {r['reference_ligs']:.4f}"
        elif r["name"] == "train_flops":
            notes = f"{r['flops_per_image'] / 1e6:.1f} MFLOP/img" + (
                f", MFU {r['mfu_ours']:.1%} vs {r['mfu_reference']:.1%}" if r.get("mfu_ours") is not None else "")
        elif r["name"] == "train_throughput":
            notes = f"reference DataLoader num_workers={r['ref_num_workers']}"
        rows.append([r["name"], r["arch"], r["norm"], str(r["batch"]), _fmt(r["ours"]), _fmt(r["reference"]),
                     (f"{r['ratio']:.2f}x" if r["ratio"] else "-"), r["unit"], notes])
    if markdown:
        head = "| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|\n"
        return head + "".join("| " + " | ".join(row) + " |\n" for row in rows)
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    line = lambda row: "  ".join(s.ljust(w) for s, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *map(line, rows)]) + "\n"


def summarize(results_dir: Path = RESULTS_DIR) -> str:
    """PERFORMANCE.md: a table of the latest result file of each (device kind, mode)."""
    latest: dict[str, Path] = {}
    for p in sorted(results_dir.glob("*.json")):  # names end in a timestamp: sorted = oldest first
        latest[p.stem.rsplit("-", 2)[0]] = p
    out = ["# Performance\n\n", "Generated by `python -m normrobust.bench` from the latest file of each device and "
           "mode under `benchmarks/results/`; do not edit by hand. Ratio = ours / reference "
           "(see benchmarks/README.md).\n"]
    for key, p in sorted(latest.items()):
        recs = json.loads(p.read_text())
        cmd = p.with_suffix(".cmd")
        v = recs[0]["versions"] if recs else {}
        out.append(f"\n## {key}: `{p.name}`\n")
        out.append(f"\nDevice {recs[0]['device'] if recs else '?'}; torch {v.get('torch')}, torchvision "
                   f"{v.get('torchvision')}, python {v.get('python')}, {v.get('threads')} threads"
                   + (f", CUDA {v['cuda']}, cuDNN {v['cudnn']}" if v.get("cuda") else "")
                   + (f". Command: `{cmd.read_text().strip()}`" if cmd.exists() else "") + ".\n\n")
        out.append(table(recs, markdown=True))
    return "".join(out)


README_MD = Path("README.md")
README_MARKERS = ("<!-- performance:begin (written by python -m normrobust.bench) -->", "<!-- performance:end -->")


def write_summary(md: Path, results_dir: Path) -> None:
    """Rewrite ``md`` from the result files; the default summary also goes into README.md between its markers."""
    text = summarize(results_dir)
    atomic_write(md, lambda f: f.write(text), mode="w")
    print(f"wrote {md}")
    begin, end = README_MARKERS
    readme = README_MD.read_text() if md == PERFORMANCE_MD and README_MD.is_file() else ""
    if begin in readme and end in readme:
        body = text.split("\n", 1)[1].replace("\n## ", "\n### ")  # README's section has its own title
        new = readme[: readme.index(begin) + len(begin)] + "\n" + body.strip() + "\n" + readme[readme.index(end):]
        atomic_write(README_MD, lambda f: f.write(new), mode="w")
        print(f"updated the performance table in {README_MD}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="CPU-sized: small CNN on 16x16 generated images")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # tests only: seconds
    p.add_argument("--out", type=Path, help="output JSON (default: benchmarks/results/<device>-<mode>-<time>.json)")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    p.add_argument("--norms", nargs="+", default=None, help="subset of the mode's norms")
    p.add_argument("--ref-workers", type=int, nargs="+", default=None,
                   help="DataLoader num_workers of the reference loop, one record each (default: 2 on CUDA; 0 and 2 "
                        "on the CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (fast.py setting 'compile')")
    p.add_argument("--summary-only", action="store_true", help="only rewrite the markdown summary (no measurement)")
    p.add_argument("--markdown", type=Path, default=None,
                   help=f"rewrite this summary from {RESULTS_DIR}/ (default: {PERFORMANCE_MD} when --out is not given)")
    a = p.parse_args(argv)
    mode = "tiny" if a.tiny else "quick" if a.quick else "full"
    cmd = " ".join(shlex.quote(s) for s in ["python", "-m", "normrobust.bench", *(sys.argv[1:] if argv is None
                                                                                  else argv)])
    if a.summary_only:
        write_summary(a.markdown or PERFORMANCE_MD, a.out.parent if a.out else RESULTS_DIR)
        return 0
    if a.device != "cpu":  # like the pipeline's GPU jobs: an exclusive lease on one device, before CUDA starts
        from .gpu import acquire

        acquire()
    t0 = time.perf_counter()
    records = run(mode, a.device, a.ref_workers, a.compile, a.norms, log=lambda s: print(s, file=sys.stderr))
    dev = torch.device(a.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = a.out or RESULTS_DIR / f"{device_kind(dev)}-{mode}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(records, indent=1, sort_keys=True, default=str) + "\n"
    atomic_write(out, lambda f: f.write(text), mode="w")
    atomic_write(out.with_suffix(".cmd"), lambda f: f.write(cmd + "\n"), mode="w")
    print(table(records), end="")
    print(f"wrote {out} ({time.perf_counter() - t0:.0f}s)")
    md = a.markdown or (PERFORMANCE_MD if a.out is None else None)
    if md:
        write_summary(md, out.parent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
