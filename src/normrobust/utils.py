"""Small helpers shared by every step: atomic writes, JSON, logging, devices, seeds, checkpoints.

torch is imported by the helpers that need it, not at import time: the analysis half of the package
(tables, figures, report) and config validation use this module without torch.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write_fn, mode: str = "wb") -> None:
    """Write ``path`` through ``write_fn(fileobj)`` into a temp file, then rename.

    A reader never sees a half-written file: either the old one or the new one. When the write fails (a full disk, a
    quota, an I/O error) the temp file is removed, an older ``path`` is left as it was, and the OSError names
    ``path`` (a failed write or flush names no file), so the command line reports it in one line with the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):  # a failed clean-up must not hide why the write failed
            os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None and e.filename is None:
            e.filename = str(path)
        raise


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` into ``path``, atomically.

    Serialised in memory first, then written with a plain file write: torch's zip writer hides the file system's
    error (a full disk) behind a RuntimeError ("[enforce fail at inline_container.cc:...] unexpected pos ..."),
    while a plain write raises the OSError itself (ENOSPC, EDQUOT, EIO, ...). The bytes are the same as torch.save
    into the file; the cost is one copy of them in memory (a 50 MB model: +48 MiB peak, ~+30 ms).
    """
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with buf.getbuffer() as data:
        atomic_write(path, lambda f: f.write(data))


def load_torch(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint safely (tensors and plain values only)."""
    import torch

    return torch.load(path, map_location=map_location, weights_only=True)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    atomic_write(path, lambda f: f.write(text), mode="w")


def load_json(path: str | os.PathLike) -> Any:
    with open(path) as f:
        return json.load(f)


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # a tensor or a numpy value
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


DEVICE_ENV = "NORMROBUST_DEVICE"


def requested_device(value: str | None = None) -> str:
    """The device a job asks for: its ``--device``, else ``$NORMROBUST_DEVICE`` (the workflow sets it from the
    config's ``device``: an execution detail, so not a rule param that would make finished work stale), else auto."""
    return value or os.environ.get(DEVICE_ENV) or "auto"


def pick_device(requested: str | None = None):
    """'auto' → CUDA when available, else CPU; 'cpu' / 'cuda' force it (None: :func:`requested_device`). A
    torch.device.

    A job that holds a GPU (a local lease or a SLURM binding, :mod:`normrobust.gpu`) never falls back to the CPU
    silently: with 'auto' and CUDA unusable it stops with one line saying what it found."""
    import torch

    from .gpu import lease_info

    requested = requested_device(requested)
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        held = lease_info() or {}
        if held.get("source") in ("lease", "slurm") and held.get("device") not in (None, ""):
            raise SystemExit(unusable_cuda(held))
        return torch.device("cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"device: '{requested}' asked for, but CUDA is unusable: {cuda_found()} (allowed: auto, cpu, "
                         f"cuda)")
    return torch.device(requested)


def cuda_found() -> str:
    """What torch and the driver report, in one line: device count, CUDA build, driver."""
    import torch

    driver = Path("/proc/driver/nvidia/version")
    found = (driver.read_text().splitlines()[0].strip() if driver.is_file() else
             "no NVIDIA driver loaded (/proc/driver/nvidia/version is missing)")
    return (f"torch.cuda.device_count()={torch.cuda.device_count()}, torch {torch.__version__} built for CUDA "
            f"{torch.version.cuda or 'none (a CPU-only build)'}, driver: {found}")


def unusable_cuda(held: dict) -> str:
    """The one-line error of a job that holds a GPU but cannot use CUDA."""
    how = f"SLURM job {held.get('slurm_job_id')}" if held.get("source") == "slurm" else "a local lease"
    return (f"device: this job holds GPU {held.get('device')} ({how}) but CUDA is unusable: {cuda_found()}; fix the "
            f"driver or the torch build, or set device: cpu and run without --resources gpu=N")


def set_threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(int(n))


def seeded_generator(*keys: int, device="cpu"):
    """A generator whose state is a pure function of ``keys`` (e.g. seed, epoch).

    Deriving every random stream from (seed, epoch, purpose) makes a resumed run
    draw exactly what an uninterrupted one would. A torch.Generator on ``device``.
    """
    import torch

    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k)) % (2**63 - 1)
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def error_line(e: BaseException, limit: int | None = None) -> str:
    """The first line of ``e``'s message (at most ``limit`` characters), for one-line error messages."""
    lines = str(e).strip().splitlines()
    return lines[0][:limit] if lines else "no message"


def log(msg: str) -> None:
    """Progress to stderr (Snakemake rules redirect it to the rule's log file)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def timed(label: str):
    t0 = time.perf_counter()
    yield
    log(f"{label}: {time.perf_counter() - t0:.1f}s")
