"""Shared test helper: a tiny MLP fitted to small image-shaped data."""

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
