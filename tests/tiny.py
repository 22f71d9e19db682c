"""Shared test helpers: a tiny MLP fitted to small image-shaped data; training settings written as a config writes
them, turned into the typed settings training runs with."""

import os
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def fit_mlp(x: torch.Tensor, y: torch.Tensor, classes: int, steps: int = 200, seed: int = 0) -> nn.Module:
    """Flatten → 32 ReLU units → classes, fitted with full-batch Adam; returned with no grads."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 32), nn.ReLU(), nn.Linear(32, classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model


def settings_of(d: dict):
    """(TrainSettings, seed) of a test's settings written as the config writes them: ``cell`` (with its seed),
    ``arch``, ``regime`` (a regime entry with its ``name``), ``training`` (its ``history`` measures LIGS unless it says
    ``ligs: false``) and optionally ``ligs_sigma``."""
    from normrobust.layout import Model
    from normrobust.settings import LIGS_SIGMA, Regime, Training, TrainSettings

    cell, regime = d["cell"], dict(d["regime"])
    training = {**d["training"], "history": {"ligs": True, **d["training"]["history"]}}
    settings = TrainSettings(Model.of(cell), dict(d["arch"]), Regime.from_config(regime.pop("name", cell["regime"]),
                                                                                 regime),
                             Training.from_dict(training), float(d.get("ligs_sigma", LIGS_SIGMA)))
    return settings, int(cell.get("seed", 0))


@contextmanager
def execution(**fields):
    """The execution details a job reads from the environment (normrobust.settings.Execution), for a ``with``."""
    from normrobust.settings import EXECUTION_ENV, Execution

    old = os.environ.get(EXECUTION_ENV)
    os.environ[EXECUTION_ENV] = Execution(**fields).to_json()
    try:
        yield
    finally:
        os.environ.pop(EXECUTION_ENV) if old is None else os.environ.__setitem__(EXECUTION_ENV, old)


def train(d: dict, data_path, out_dir, threads=None):
    """Train the cell of a test's settings dict (:func:`settings_of`; its ``device``, default cpu, and ``fast`` block
    as the execution details) into ``out_dir``; returns its history."""
    from normrobust import train as train_module

    settings, seed = settings_of(d)
    with execution(train_fast=d.get("fast")):
        return train_module.train(settings, str(data_path), Path(out_dir), seed, threads, d.get("device", "cpu"))
