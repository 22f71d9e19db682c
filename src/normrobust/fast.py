"""The GPU fast path: bf16 autocast, channels_last, cudnn.benchmark, optional torch.compile.

One optional settings block, read with defaults (so configs without it are unchanged)::

    fast: {amp: auto, channels_last: auto, compile: false, eval_batch_size: auto}

- ``amp``: bf16 autocast for the model's forward (and so its backward). ``auto`` = on CUDA only. Norm
  statistics stay fp32 (autocast runs GroupNorm/LayerNorm in fp32; BatchNorm/InstanceNorm keep fp32
  statistics and running buffers), and the wrapped model returns fp32 logits, so every loss, input
  gradient and LIGS cosine is computed in fp32.
- ``channels_last``: NHWC weights and inputs. ``auto`` = :data:`CHANNELS_LAST` on CUDA, :data:`CHANNELS_LAST_CPU`
  on the CPU (fp32 either way: the same arithmetic in another memory order, equal up to float rounding).
- ``compile``: ``torch.compile`` the network (off by default; never for double backward, i.e. the
  ``ligs_reg`` objective).
- ``eval_batch_size``: the smallest batch of evaluation / transfer passes (the config's ``batch_size`` when
  larger); ``auto`` = 2048 on CUDA, none on the CPU (the config's batch size as is).

On the CPU only channels_last is on by default, for the norms it speeds up, and everything stays fp32;
``fast: {channels_last: false}`` gives the plain path, where :func:`wrap` returns the model itself. ``bench.py``
measures the effect of each choice. On the CPU, :func:`wrap` keeps a network with a strided 1x1 convolution of fewer
than 8 input channels contiguous whatever the setting (:func:`cpu_channels_last_hazard`: a oneDNN kernel corrupts the
heap there) and records why in the settings (``channels_last_off``), which the outputs save.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import nn

# channels_last on CUDA, per norm: cuDNN convolutions and BatchNorm are fastest in NHWC with bf16; the
# GroupNorm / LayerNorm / InstanceNorm kernels are written for NCHW and can be slower in NHWC (each of
# them may copy to contiguous and back), so they stay contiguous unless measured otherwise (bench.py).
CHANNELS_LAST = {"none": True, "bn": True, "fixup": True, "ln": False, "in": False, "gn": False}
# channels_last on the CPU (fp32, one thread), per norm: the default CNN's training step at batch 64, 3x16x16,
# measured side by side (NCHW → NHWC): none 12.2 → 8.7 ms, bn 12.8 → 8.7, ln 13.2 → 9.8, gn 13.9 → 10.6,
# in 16.7 → 20.4 (slower: InstanceNorm copies to NCHW and back)
CHANNELS_LAST_CPU = {"none": True, "bn": True, "fixup": True, "ln": True, "in": False, "gn": True}
# The smallest input-channel count of a strided 1x1 convolution that channels_last allows on the CPU. Below it, the
# weight gradient in NHWC (oneDNN 3.12's jit_1x1:avx2 backward_weights, torch 2.14.1, chosen on CPUs without AVX-512)
# writes past the end of the scratchpad torch gives it, and the process dies in the allocator ("corrupted
# double-linked list"): the stride-2 shortcut of a ResNet with widths [4, 4, 4], [6, 6, 6] or [4, 8, 16]. Measured
# (valgrind, glibc's malloc checks): 2-7 input channels corrupt, 1 and 8+ are clean, so are 3x3 convs, stride 1 and
# NCHW. Decided from the network alone (not the CPU), so every machine runs such a net the same way: contiguous.
MIN_STRIDED_1X1_CHANNELS_CPU = 8
EVAL_BATCH_CUDA = 2048
KEYS = ("amp", "channels_last", "compile", "eval_batch_size")


def resolve(block: dict | None, device, norm: str, double_backward: bool = False) -> dict:
    """The effective fast settings on ``device`` for a model with ``norm`` (plain values, recorded in outputs)."""
    block = dict(block or {})
    unknown = sorted(set(block) - set(KEYS))
    if unknown:
        raise ValueError(f"fast: unknown key(s) {unknown} (allowed: {', '.join(KEYS)})")
    cuda = torch.device(device).type == "cuda"
    amp = block.get("amp", "auto")
    cl = block.get("channels_last", "auto")
    ebs = block.get("eval_batch_size", "auto")
    return {
        "amp": "bfloat16" if (cuda if amp == "auto" else bool(amp)) else None,
        "channels_last": bool((CHANNELS_LAST if cuda else CHANNELS_LAST_CPU).get(norm, False)) if cl == "auto"
        else bool(cl),
        "compile": bool(block.get("compile", False)) and not double_backward,
        "cudnn_benchmark": cuda,
        "eval_batch_size": (EVAL_BATCH_CUDA if cuda else None) if ebs == "auto" else ebs,
    }


def setup(device) -> None:
    """Process-wide switches, CUDA only: cudnn autotuning (batch shapes are fixed) and a fresh peak-memory count."""
    if torch.device(device).type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats()


def eval_batch(cfg: dict, configured: int) -> int:
    """Batch size of evaluation passes: the config's, raised to ``eval_batch_size`` where that is larger."""
    return max(int(configured), int(cfg["eval_batch_size"] or 0))


def peak_mem_mib(device) -> float | None:
    """Peak GPU memory allocated by this process in MiB (None off CUDA)."""
    if torch.device(device).type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


class Fast(nn.Module):
    """``net`` run under bf16 autocast and/or channels_last (and/or compiled); returns fp32 logits.

    It holds the very same parameters and buffers (save ``unwrap(model).state_dict()``)."""

    def __init__(self, net: nn.Module, cfg: dict, device_type: str):
        super().__init__()
        self.net, self.cfg, self.device_type = net, cfg, device_type
        if cfg["channels_last"]:
            net.to(memory_format=torch.channels_last)
        # the compiled callable is kept out of the module tree (no duplicate state_dict keys)
        object.__setattr__(self, "_call", torch.compile(net) if cfg["compile"] else net)

    def forward(self, x):
        if self.cfg["channels_last"] and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        amp = torch.autocast(self.device_type, dtype=torch.bfloat16) if self.cfg["amp"] else nullcontext()
        with amp:
            out = self._call(x)
        return out.float()


def cpu_channels_last_hazard(net: nn.Module) -> str | None:
    """Why ``net`` must stay contiguous on the CPU (its first strided 1x1 convolution with fewer than
    :data:`MIN_STRIDED_1X1_CHANNELS_CPU` input channels), or None."""
    for name, m in net.named_modules():
        if (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and max(m.stride) > 1
                and m.in_channels < MIN_STRIDED_1X1_CHANNELS_CPU):
            return (f"conv {name or 'net'} (1x1, stride {m.stride[0]}, {m.in_channels} input channels): oneDNN's "
                    f"NHWC weight gradient corrupts the heap below {MIN_STRIDED_1X1_CHANNELS_CPU} input channels")
    return None


def wrap(net: nn.Module, cfg: dict, device) -> nn.Module:
    """The model to train / attack / evaluate with: ``net`` itself when nothing is switched on.

    On the CPU, channels_last is switched off for a network :func:`cpu_channels_last_hazard` names, in ``cfg`` itself
    (the settings the caller records), with the reason under ``channels_last_off``."""
    if cfg["channels_last"] and torch.device(device).type == "cpu":
        why = cpu_channels_last_hazard(net)
        if why:
            cfg["channels_last"], cfg["channels_last_off"] = False, why
    if not (cfg["amp"] or cfg["channels_last"] or cfg["compile"]):
        return net
    return Fast(net, cfg, torch.device(device).type)


def unwrap(model: nn.Module) -> nn.Module:
    return model.net if isinstance(model, Fast) else model
