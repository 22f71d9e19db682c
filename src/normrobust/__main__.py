"""``python -m normrobust <command> ...``: one small command per workflow step."""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
import sys
import traceback
from pathlib import Path

from .utils import error_line  # stdlib only at import: torch is imported after the GPU lease

COMMANDS = {
    "prepare-data": ("normrobust.data.prepare", "build a dataset file"),
    "derive-data": ("normrobust.data.derived", "build a dataset from a trained model (E3/E4: D_R, D_NR, D_rand, ...)"),
    "train": ("normrobust.train", "train one cell (resumable)"),
    "evaluate": ("normrobust.evaluate", "clean / robust / noise accuracy, LIGS, NRF reliance of one cell"),
    "evaluate-autoattack": ("normrobust.evaluate_autoattack", "robust accuracy under AutoAttack (torchattacks)"),
    "transfer": ("normrobust.transfer", "attacks from one source cell tried on target cells"),
    "aggregate": ("normrobust.aggregate", "per-cell results → the aggregated tables"),
    "claims": ("normrobust.claims", "check the papers' claims against the tables"),
    "figure": ("normrobust.figures", "one figure from the tables"),
    "report": ("normrobust.report", "render and build the LaTeX report"),
    "check-config": ("normrobust.check_config", "the config a run would use (config.yaml + --configfile files), "
                     "checked"),
    "evidence": ("normrobust.evidence", "the evidence page (docs/evidence.md) from finished runs' tables"),
}
DEBUG_ENV = "NORMROBUST_DEBUG"
# Commands of the rules that declare `resources: gpu=1`: each takes a device lease first.
GPU_COMMANDS = frozenset({"derive-data", "train", "evaluate", "evaluate-autoattack", "transfer"})


def _asks_help(args) -> bool:
    return any(a in ("-h", "--help") for a in args)


def take_gpu_lease(command: str, args: list[str] = ()) -> dict | None:
    """Lease a GPU for a GPU command (see normrobust.gpu), before anything can initialise CUDA."""
    if command not in GPU_COMMANDS or _asks_help(args):
        return None
    from . import gpu  # stdlib only: importing it does not touch CUDA

    return gpu.acquire()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        from . import __version__

        print(f"normrobust {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<13} {help_}" for name, (_, help_) in COMMANDS.items()]
        msg = "usage: python -m normrobust [--version] <command> [options]\n\ncommands:\n" + "\n".join(lines)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown command '{argv[0]}' (allowed: {', '.join(COMMANDS)})\n\n{msg}", file=sys.stderr)
            return 2
        print(msg)
        return 0
    return run(argv)


def hold_cells(command: str, args: list[str]):
    """For ``train``: the lock of every cell it trains (normrobust.cell_lock), taken before the GPU lease."""
    if command != "train" or _asks_help(args):
        return contextlib.nullcontext()
    from . import cell_lock  # stdlib only

    return cell_lock.hold(cell_lock.train_cells(args))


def run(argv: list[str]) -> int:
    """The command ``argv[0]`` with its arguments; expected failures as one line (exit status 2)."""
    try:
        with hold_cells(argv[0], argv[1:]):
            take_gpu_lease(argv[0], argv[1:])  # sets CUDA_VISIBLE_DEVICES before the command imports torch
            module = importlib.import_module(COMMANDS[argv[0]][0])
            return module.main(argv[1:]) or 0
    except EXPECTED as e:  # bad input or a fault of the machine: one line (a bug: the traceback, as usual)
        if os.environ.get(DEBUG_ENV):
            raise
        saved = _save_traceback()
        where = f"the traceback is in {saved}" if saved else f"set {DEBUG_ENV}=1 for the traceback"
        print(f"normrobust {argv[0]}: {describe(e)} ({where})", file=sys.stderr)
        return 2


#: failures a user can meet and fix (bad settings or files, a full disk, permissions, a damaged file, memory)
EXPECTED = (ValueError, KeyError, OSError, EOFError, MemoryError)
_OS_ADVICE = {
    errno.ENOSPC: "no space left on the device: free some and rerun (files are written atomically: nothing "
                  "finished was changed)",
    errno.EDQUOT: "disk quota exceeded: free some space and rerun (files are written atomically: nothing finished "
                  "was changed)",
    errno.EACCES: "permission denied: fix the permissions or run from a directory you can write",
    errno.EPERM: "operation not permitted: fix the permissions or run from a directory you can write",
    errno.EROFS: "read-only file system: run from a writable working directory (snakemake -d DIR)",
}


def describe(e: BaseException) -> str:
    """One line saying what failed and what to do: the error's type and the first line of its message; for the
    machine's faults (disk full, permissions) the file and the advice."""
    if isinstance(e, KeyError):
        return f"KeyError: missing key {e}"
    if isinstance(e, OSError) and e.errno in _OS_ADVICE:
        path = f" ({e.filename})" if e.filename else ""
        return f"{type(e).__name__}: {_OS_ADVICE[e.errno]}{path}"
    return f"{type(e).__name__}: {error_line(e)}"


def _save_traceback() -> Path | None:
    """Write the traceback next to the rule's log (stderr redirected to a file: ``<log>.traceback``); None when
    stderr is a terminal or a pipe, or the file cannot be written (a full disk)."""
    try:
        log = Path(os.readlink("/proc/self/fd/2"))
        if not log.is_file():
            return None
        out = log.with_name(log.name + ".traceback")
        out.write_text(traceback.format_exc())
        return out
    except OSError:
        return None

if __name__ == "__main__":
    sys.exit(main())
