"""One trainer per cell: an exclusive ``flock`` on ``<cell>/.train.lock`` for the life of the training.

After ``kill -9`` of Snakemake its training job can live on as an orphan; a rerun would start a second trainer on
the same cell and both would write its files. So ``normrobust train`` takes, before it reads or writes anything of a
cell, a non-blocking exclusive ``flock`` on the cell's lock file and keeps the file open until the cell is done. The
kernel drops the lock when the process ends, even on ``kill -9`` (works on local disks and Linux NFS). The file is
never deleted (deleting it would let two processes lock two different files of the same name). After locking, the
holder writes ``<pid> <host> <start time>`` into it, for the message a second trainer stops with.

The locks of one process nest: a cell this process already holds is taken again without blocking (counted), so
``train_seeds`` can take every seed first and ``train_cell`` take its own seed again. Stdlib only.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".train.lock"

_HELD: dict[str, list[int]] = {}  # this process's locks: real path of the lock file -> [fd, times taken]


class CellLocked(SystemExit):
    """The cell is being trained by another process (a one-line message, exit status 1)."""


def lock_file(cell_dir: str | os.PathLike) -> Path:
    return Path(cell_dir) / LOCK_NAME


def holder(path: str | os.PathLike) -> tuple[str, str, str] | None:
    """(pid, host, start) written by the process that holds the lock at ``path``; None if unreadable or not yet
    written (the holder writes it just after locking: read again a few times)."""
    for _ in range(10):
        try:
            parts = Path(path).read_text().split()
        except OSError:
            parts = []
        if len(parts) >= 3:
            return parts[0], parts[1], parts[2]
        time.sleep(0.02)
    return None


def _message(cell_dir: str | os.PathLike, path: Path, command: str) -> str:
    who = holder(path)
    if who is None:
        return (f"{command}: {cell_dir} is being trained by another process (lock {path}); wait for it to finish "
                f"or stop it, then rerun")
    pid, host, start = who
    stop = f"kill {pid}" if host == socket.gethostname() else f"on {host}: kill {pid}"
    return (f"{command}: {cell_dir} is being trained by pid {pid} on host {host} since {start} (lock {path}); "
            f"wait for it to finish or stop it ({stop}), then rerun")


def check_free(cell_dirs, command: str = "error") -> None:
    """Stop with :class:`CellLocked` if another process trains one of ``cell_dirs`` (holds its lock); takes and keeps
    nothing, creates nothing. The workflow calls it before any job: Snakemake removes a job's declared outputs when
    it reruns or refuses it, so a run that cannot train a live trainer's cell must not start at all (its files stay
    as they are, and the live trainer finishes)."""
    for d in cell_dirs:
        path = lock_file(d)
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # no lock file: nobody ever trained this cell here
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CellLocked(_message(d, path, command)) from None
        finally:
            os.close(fd)  # drops the lock this probe may have taken


def _take(cell_dir: str | os.PathLike, command: str) -> str:
    path = lock_file(cell_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        return key
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CellLocked(_message(cell_dir, path, command)) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {start}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = [fd, 1]
    return key


def _release(key: str) -> None:
    entry = _HELD[key]
    entry[1] -= 1
    if entry[1] == 0:
        del _HELD[key]
        try:
            os.ftruncate(entry[0], 0)  # still locked here: nobody reads a stale holder
        finally:
            os.close(entry[0])  # drops the lock


@contextmanager
def hold(cell_dirs, command: str = "normrobust train"):
    """Hold the lock of every cell directory in ``cell_dirs`` (created if missing) for the ``with`` block; stop with
    :class:`CellLocked` (one line naming the cell, the holder's pid and host, and what to do) if another process
    holds one. Locks taken before the failure are released."""
    taken = []
    try:
        for d in cell_dirs:
            taken.append(_take(d, command))
        yield
    finally:
        for key in reversed(taken):
            _release(key)


def train_cells(args: list[str]) -> list[Path]:
    """The cell directories a ``normrobust train`` command line trains (``--out`` with ``--seeds``: its ``s<seed>``
    directories; ``--out`` alone: that directory; ``--config --cell``: none, locked by training itself). Read without
    importing torch: the dispatcher locks them before it takes a GPU lease, so a second trainer stops at once instead
    of waiting for the GPU that the first one holds."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out")
    p.add_argument("--seeds", nargs="+")
    p.add_argument("--config")
    known, _ = p.parse_known_args(args)
    if not known.out or known.config:
        return []
    return [Path(known.out) / f"s{s}" for s in known.seeds] if known.seeds else [Path(known.out)]
