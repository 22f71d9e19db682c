"""A GPU slot per job: an exclusive lease on one of a device's slots, taken before CUDA starts.

Snakemake's ``--resources gpu=N`` only counts GPU jobs; it never says *which* device a job
should use. So each GPU command (train, evaluate, transfer, derive-data) calls :func:`acquire` first
(``python -m normrobust`` does it before importing the command's module):

- under SLURM (``SLURM_JOB_ID`` set) the scheduler's binding is used as is: no lease, and
  ``CUDA_VISIBLE_DEVICES`` is left as SLURM set it;
- otherwise the candidates are the entries of an inherited ``CUDA_VISIBLE_DEVICES`` (ids or
  UUIDs; empty means no GPU), else every GPU present (counted with ``nvidia-smi -L`` or
  ``/proc/driver/nvidia/gpus``, without initialising CUDA); with none, nothing changes;
- every device has ``$NORMROBUST_GPU_SLOTS`` slots (default 1; the workflow sets it from the config key
  ``gpu_slots``): up to that many jobs share a device. Slot by slot (slot 0 of every device first, so
  jobs spread over the devices), it tries a non-blocking exclusive ``flock`` on
  ``<lock dir>/gpu-<id>-slot<k>.lock`` (lock dir: ``$NORMROBUST_LOCK_DIR``, else
  ``/tmp/normrobust-gpu-locks-<uid>``). The file stays open for the life of the process,
  so the kernel drops the lock when the process ends, even on ``kill -9``. If every
  slot is held it polls every second (a line to stderr every 30 s) for up to
  ``$NORMROBUST_GPU_WAIT`` seconds (default 3600), then stops with the holders' pids;
- it sets ``CUDA_VISIBLE_DEVICES`` to the leased device, so inside the job that device is
  ``cuda:0``, and records the lease (:func:`lease_info`, also ``$NORMROBUST_GPU_LEASE`` as
  JSON) so that the command can write it into its outputs.

Several users may share one lock directory (``$NORMROBUST_LOCK_DIR``): when this module has to create
the directory named there, it makes it ``1777`` like ``/tmp`` (anyone may add lock files, only a file's
owner may remove it); the default per-uid directory is left as the umask makes it. Lock files are made
mode ``0666`` whatever the umask, so another user can lock them too. A lock file is always opened
read-write, because its holder writes its pid into it (quoted when jobs wait or time out): one that this
user cannot write (another user's ``0644`` file, from an older version) is refused with the advice
``chmod a+rw``, not locked through a read-only descriptor, which would leave the previous holder's pid in
it (and fails on NFS, where an exclusive lock needs a writable descriptor). Every failure to use the lock
directory stops with one line naming the directory (and the file), what is wrong and what to do.

This module imports nothing heavy (no torch): it must run before CUDA is initialised.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import re
import socket
import subprocess
import sys
import time
from typing import NoReturn

LEASE_ENV = "NORMROBUST_GPU_LEASE"
LOCK_DIR_ENV = "NORMROBUST_LOCK_DIR"
WAIT_ENV = "NORMROBUST_GPU_WAIT"
SLOTS_ENV = "NORMROBUST_GPU_SLOTS"
DEFAULT_WAIT_S = 3600.0
POLL_S = 1.0
LOG_EVERY_S = 30.0

_LEASE: dict | None = None  # what this process acquired
_LOCK_FD: int | None = None  # the open lock file: keeps the flock for the life of the process


class LeaseTimeout(SystemExit):
    """Every candidate device stayed held for the whole wait."""


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def lock_dir() -> str:
    return os.environ.get(LOCK_DIR_ENV) or f"/tmp/normrobust-gpu-locks-{os.getuid()}"


def lock_path(device: str, directory: str | None = None, slot: int = 0) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", device)
    return os.path.join(directory or lock_dir(), f"gpu-{safe}-slot{slot}.lock")


def slots_per_device() -> int:
    """How many jobs may share one device (``$NORMROBUST_GPU_SLOTS``, default 1)."""
    raw = os.environ.get(SLOTS_ENV)
    if raw in (None, ""):
        return 1
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise SystemExit(f"{SLOTS_ENV}={raw!r}: the GPU slots per device must be an integer >= 1 (config key "
                         f"gpu_slots)")
    return n


def present_devices() -> list[str]:
    """Indices of the GPUs on this machine, found without initialising CUDA ([] when none)."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        if out.returncode == 0:
            n = sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
            if n:
                return [str(i) for i in range(n)]
    except (OSError, subprocess.SubprocessError):
        pass
    n = len(glob.glob("/proc/driver/nvidia/gpus/*"))
    return [str(i) for i in range(n)]


def candidates(env: dict | None = None) -> list[str]:
    """The devices a job may lease: an inherited CUDA_VISIBLE_DEVICES, else all present."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        entries = [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        return list(dict.fromkeys(entries))
    return present_devices()


def _wait_limit() -> float:
    raw = os.environ.get(WAIT_ENV)
    if raw in (None, ""):
        return DEFAULT_WAIT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise SystemExit(f"{WAIT_ENV}={raw!r} is not a number of seconds") from None


def _where(directory: str) -> str:
    """The lock directory as a message names it: with the setting that chose it."""
    if os.environ.get(LOCK_DIR_ENV):
        return f"{LOCK_DIR_ENV}={directory}"
    return f"the GPU lock directory {directory} (the default; {LOCK_DIR_ENV} sets it)"


def _stop(directory: str, e: OSError, path: str | None = None) -> NoReturn:
    """One line for a failure to use the lock directory (or its file ``path``): what is wrong, what to do."""
    where, uid, d = _where(directory), os.geteuid(), directory
    other = f"or point {LOCK_DIR_ENV} at a directory you can write"
    shared = bool(os.environ.get(LOCK_DIR_ENV))  # the one the user set; else the per-uid default
    share = "every user sharing the GPUs must be able to write it" if shared else "it must be writable"
    name = os.path.basename(path) if path else None
    if e.errno in (errno.EACCES, errno.EPERM) and path and os.path.exists(path):
        try:
            st = os.stat(path)
            owner = f"owner uid {st.st_uid}, mode {st.st_mode & 0o7777:04o}"
        except OSError:
            owner = "owner unknown"
        msg = (f"lock file {path} is not writable by uid {uid} ({owner}): every user sharing the GPUs must be able "
               f"to write the lock files in {where} (older versions made them 0644): have their owner or root run "
               f"`chmod a+rw {os.path.join(d, '*.lock')}`")
    elif e.errno in (errno.EACCES, errno.EPERM) and path:
        fix = f"have its owner or root run `chmod 1777 {d}`" if shared else "have its owner or root remove it"
        msg = f"{where} is not writable by uid {uid} (cannot create {name} in it): {share}: {fix}, {other}"
    elif e.errno in (errno.EACCES, errno.EPERM):
        parent = os.path.dirname(os.path.abspath(e.filename or d))
        fix = f"create it once with `mkdir -m 1777 {d}` as a user who can, " if shared else ""
        msg = f"cannot create {where} (uid {uid} may not write in {parent}): {share}: {fix}{other}"
    elif e.errno == errno.EROFS:
        msg = (f"{where} is on a read-only file system" + (f" (cannot create {name} in it)" if name else "")
               + f": point {LOCK_DIR_ENV} at a writable directory (`mkdir -m 1777 DIR` to share it)")
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        bad = os.path.abspath(d)
        while not os.path.lexists(bad) and bad != os.path.dirname(bad):
            bad = os.path.dirname(bad)
        msg = (f"cannot create {where}: {bad} is a file, not a directory: remove it or point {LOCK_DIR_ENV} "
               f"at a directory")
    elif e.errno in (errno.ENOLCK, errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL) and path:
        msg = (f"cannot lock {path} in {where} ({e.strerror}): its file system may not support flock (NFS?): "
               f"point {LOCK_DIR_ENV} at a local directory (`mkdir -m 1777 DIR` to share it)")
    else:
        msg = (f"cannot use {where} ({e.strerror or e}: {path or e.filename or d}): fix that or point "
               f"{LOCK_DIR_ENV} at another directory")
    raise SystemExit(f"gpu: {msg}")


def _make_lock_dir(directory: str) -> None:
    """Create the lock directory if it is missing (``1777`` when it is the shared one the user set)."""
    if os.path.isdir(directory):
        return
    if os.path.lexists(directory):
        what = "a file" if os.path.exists(directory) else "a broken symbolic link"
        raise SystemExit(f"gpu: {_where(directory)} is {what}, not a directory: remove it or point "
                         f"{LOCK_DIR_ENV} at a directory")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(directory)), exist_ok=True)
        try:
            os.mkdir(directory)
        except FileExistsError:  # a job started at the same time made it
            if not os.path.isdir(directory):
                raise
            return
        if os.environ.get(LOCK_DIR_ENV):
            os.chmod(directory, 0o1777)  # whatever the umask: every user sharing the GPUs adds lock files
    except OSError as e:
        _stop(directory, e)


def _try_lock(device: str, directory: str, slot: int) -> int | None:
    path = lock_path(device, directory, slot)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        _stop(directory, e, path)
    try:
        st = os.fstat(fd)
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != 0o666:
            os.fchmod(fd, 0o666)  # whatever the umask: another user sharing the directory can lock it too
    except OSError:
        pass  # a file system without modes: this job can still lock it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException as e:
        os.close(fd)
        if isinstance(e, OSError):
            _stop(directory, e, path)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    except OSError as e:
        os.close(fd)
        _stop(directory, e, path)
    return fd


def _holders(devices: list[str], directory: str, slots: int) -> str:
    parts = []
    for d in devices:
        for k in range(slots):
            try:
                with open(lock_path(d, directory, k)) as f:
                    pid = f.read().split()[0]
            except (OSError, IndexError):
                pid = "?"
            parts.append(f"{d}" + (f" slot {k}" if slots > 1 else "") + f": pid {pid}")
    return ", ".join(parts)


def _base(source: str, device: str | None, **extra) -> dict:
    return {"source": source, "device": device, "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "host": socket.gethostname(), "pid": os.getpid(), **extra}


def _publish(info: dict) -> dict:
    global _LEASE
    _LEASE = info
    os.environ[LEASE_ENV] = json.dumps(info, sort_keys=True)
    return dict(info)


def acquire() -> dict:
    """Take a device for this process (see the module doc); returns the lease record.

    Idempotent: a second call returns the lease already held.
    """
    global _LOCK_FD
    if _LEASE is not None:
        return dict(_LEASE)
    if os.environ.get("SLURM_JOB_ID"):
        info = _base("slurm", os.environ.get("CUDA_VISIBLE_DEVICES"),
                     # the SLURM plugin's job step drops SLURM_JOB_GPUS; the step's own variable remains
                     slurm_job_gpus=os.environ.get("SLURM_JOB_GPUS") or os.environ.get("SLURM_STEP_GPUS"))
        _log(f"gpu: under SLURM job {info['slurm_job_id']}: using the scheduler's binding "
             f"(CUDA_VISIBLE_DEVICES={info['device']}, SLURM_JOB_GPUS={info['slurm_job_gpus']})")
        return _publish(info)
    cands = candidates()
    if not cands:
        why = "CUDA_VISIBLE_DEVICES is empty" if "CUDA_VISIBLE_DEVICES" in os.environ else "no GPU found"
        _log(f"gpu: {why}: no lease, running without a GPU")
        return _publish(_base("none", None))
    directory, slots = lock_dir(), slots_per_device()
    _make_lock_dir(directory)
    limit, t0, last_log = _wait_limit(), time.monotonic(), None
    held = f"{len(cands)} device{'s' if len(cands) != 1 else ''}" + (f" × {slots} slots" if slots > 1 else "")
    while True:
        for k in range(slots):  # slot 0 of every device first: jobs spread over the devices
            for d in cands:
                fd = _try_lock(d, directory, k)
                if fd is None:
                    continue
                _LOCK_FD = fd
                waited = time.monotonic() - t0
                os.environ["CUDA_VISIBLE_DEVICES"] = d
                info = _base("lease", d, slot=k, slots=slots, lock=lock_path(d, directory, k), candidates=cands,
                             acquired_at=time.time(), waited_s=round(waited, 3))
                _log(f"gpu: leased device {d} slot {k} of {slots} ({','.join(cands)}; {info['lock']}, pid "
                     f"{os.getpid()}{f', after waiting {waited:.0f}s' if waited >= 1 else ''}); "
                     f"CUDA_VISIBLE_DEVICES={d}")
                return _publish(info)
        waited = time.monotonic() - t0
        if waited >= limit:
            raise LeaseTimeout(
                f"gpu: no free slot after {waited:.0f}s ({WAIT_ENV}={limit:g}): all {held} of "
                f"CUDA_VISIBLE_DEVICES={','.join(cands)} are leased in {directory} "
                f"({_holders(cands, directory, slots)}). Run with --resources gpu=N, N at most devices × gpu_slots, "
                f"or remove stale holders.")
        if last_log is None or time.monotonic() - last_log >= LOG_EVERY_S:
            _log(f"gpu: all {held} are leased ({_holders(cands, directory, slots)}); "
                 f"waiting (up to {limit:g}s, {WAIT_ENV})")
            last_log = time.monotonic()
        time.sleep(min(POLL_S, max(0.0, limit - waited)))


def lease_info() -> dict | None:
    """The lease of this process (or the one handed down in $NORMROBUST_GPU_LEASE); None if none.

    Plain values only, so it can go into a ``weights_only`` checkpoint and into JSON.
    """
    if _LEASE is not None:
        return dict(_LEASE)
    raw = os.environ.get(LEASE_ENV)
    if raw:
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return None


def release() -> None:
    """Drop the lease (tests; a job simply exits). Leaves CUDA_VISIBLE_DEVICES as it is."""
    global _LEASE, _LOCK_FD
    if _LOCK_FD is not None:
        os.close(_LOCK_FD)  # closing the only descriptor releases the flock
    _LEASE, _LOCK_FD = None, None
