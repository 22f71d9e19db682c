"""Compile the rendered report: ``latexmk -pdf -interaction=nonstopmode -halt-on-error`` in the rendered directory,
fail when the log reports an undefined reference or citation, and copy the PDF atomically to its destination.

Errors are one paragraph on stderr and an exit code (``python -m normrobust report build``): 3 when TeX is missing,
1 otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from ..utils import atomic_write, log

TEX_INSTALL = ("apt-get install latexmk texlive-latex-base texlive-latex-recommended "
               "texlive-fonts-recommended texlive-latex-extra")
UNDEFINED_RE = re.compile(r"(There were undefined references|Reference `[^']*' on page \d+ undefined|"
                          r"Citation `[^']*' on page \d+ undefined|There were undefined citations)")


def _error(message: str) -> None:
    print(f"normrobust report build: error: {message}", file=sys.stderr)


def _latexmk(latexmk: str, texdir: Path, tex: str, timeout: int) -> subprocess.CompletedProcess | None:
    """latexmk's run on TEXDIR/TEX (None when it timed out, said on stderr)."""
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", tex]
    try:
        return subprocess.run(cmd, cwd=texdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        _error(f"latexmk timed out after {timeout}s")
        return None


def _log_problem(proc: subprocess.CompletedProcess, texdir: Path, logfile: Path) -> str | None:
    """Why the build failed, from latexmk's exit code and its log (its first errors, or undefined references);
    None when it did not."""
    log_text = logfile.read_text(errors="replace") if logfile.is_file() else ""
    if proc.returncode != 0:
        errs = [ln for ln in log_text.splitlines() if ln.startswith("!")][:5]
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        return (f"latexmk failed (exit {proc.returncode}) in {texdir}; see {logfile}\n"
                + ("\n".join(errs) if errs else tail))
    undefined = sorted(set(m.group(0) for m in UNDEFINED_RE.finditer(log_text)))
    if undefined:
        return f"undefined references in {logfile}: " + "; ".join(undefined)
    return None


def build(texdir: str | Path, out: str | Path, tex: str = "report.tex", timeout: int = 600) -> int:
    """Compile TEXDIR/TEX with latexmk and copy the PDF to OUT. Returns an exit code."""
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        _error(f"TeX is missing (no latexmk on PATH); install it with: {TEX_INSTALL}")
        return 3
    texdir = Path(texdir)
    if not (texdir / tex).is_file():
        _error(f"missing {texdir / tex} (run `python -m normrobust report render` first)")
        return 1
    proc = _latexmk(latexmk, texdir, tex, timeout)
    if proc is None:
        return 1
    problem = _log_problem(proc, texdir, texdir / (Path(tex).stem + ".log"))
    if problem:
        _error(problem)
        return 1
    data = (texdir / (Path(tex).stem + ".pdf")).read_bytes()
    atomic_write(out, lambda f: f.write(data))
    log(f"report: built {out} ({len(data) // 1024} KiB)")
    return 0


__all__ = ["TEX_INSTALL", "UNDEFINED_RE", "build"]
