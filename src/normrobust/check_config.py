"""``python -m normrobust check-config [FILE ...]``: the config a run would use, checked before Snakemake reads it.

Snakemake loads ``--configfile`` files (from the command line, a profile or ``$SNAKEMAKE_PROFILE``) before it reads
the workflow, so its messages for a file that does not parse, holds a list or nothing, or does not exist cannot be
replaced by the workflow's, and some name no file. This command does what Snakemake does with them (``config.yaml``,
then each FILE merged in order) and says which file and line is at fault, then validates the result as the workflow
does and prints what the run would plan. Exit status 0: the run would start with this config; 2: it would not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from .config import validate
from .plan import Plan


class ConfigFileError(ValueError):
    """A config file Snakemake could not load; the message names the file (and the line, for a syntax error)."""


def read_config_file(path: str | Path) -> dict:
    """One config file as Snakemake reads it: a YAML (or JSON) mapping at the top level."""
    p = Path(path)
    if not p.is_file():
        raise ConfigFileError(f"config file {p}: {'is a directory' if p.is_dir() else 'does not exist'} "
                              f"(give --configfile an existing YAML file)")
    try:
        doc = yaml.safe_load(p.read_text())
    except UnicodeDecodeError:
        raise ConfigFileError(f"config file {p} is a binary file, not YAML") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigFileError(f"config file {p}{where}: not valid YAML ({e.problem or e.context}); Snakemake says "
                              f"only \"Config file is not valid JSON or YAML\"") from None
    if not isinstance(doc, dict):
        found = "nothing" if doc is None else f"a {type(doc).__name__}"
        raise ConfigFileError(f"config file {p} holds {found}, not a mapping of settings (key: value at the top "
                              f"level)")
    return doc


def merge(base: dict, update: dict) -> dict:
    """``update`` merged into ``base`` as Snakemake merges --configfile files: mappings by key, the rest replaced."""
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merge(base[k], v)
        else:
            base[k] = v
    return base


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust check-config", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", help="the --configfile files, in the order given to snakemake")
    p.add_argument("--base", default="config.yaml", help="the workflow's own config (default: %(default)s)")
    a = p.parse_args(argv)
    config = read_config_file(a.base)
    for f in a.files:
        merge(config, read_config_file(f))
    plan = Plan(validate(config))
    seeds = f"{len(plan.seeds)} seed{'s' if len(plan.seeds) != 1 else ''}"
    print(f"ok: {len(plan.studies)} studies, {len(plan.trained)} trained models x {seeds} ({len(plan.cells)} cells)")
    return 0
