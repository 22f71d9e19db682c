"""Files the package ships as package data, found with :mod:`importlib.resources`: the config schema, the report's
template (``paper/report.tex.j2`` and its per-study ``paper/sections/``) and the presets.

In a checkout these are links to the repository's own files (``workflow/schemas/``, ``paper/``,
``workflow/presets/``, where the workflow reads them); a wheel carries copies, so an installed package validates
configs and renders the report without a checkout.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource(*parts: str) -> Path:
    """The path of a shipped file (the package is installed as plain files: a wheel or a checkout)."""
    return Path(str(files(__name__).joinpath(*parts)))


SCHEMA = resource("config.schema.yaml")
TEMPLATE = resource("paper", "report.tex.j2")


def preset(name: str) -> Path:
    """A preset config shipped with the package, by name (``paper-cifar10``) or file name."""
    stem = name.removesuffix(".yaml")
    path = resource("presets", f"{stem}.yaml")
    if not path.is_file():
        names = sorted(p.stem for p in resource("presets").glob("*.yaml"))
        raise ValueError(f"preset: unknown '{name}' (allowed: {', '.join(names)})")
    return path
