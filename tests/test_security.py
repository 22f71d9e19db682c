"""Checkpoints hold plain values only; config names cannot reach outside results/."""

import copy
import re
from pathlib import Path

import pytest
import torch
import yaml

from normrobust import config

SRC = Path(__file__).resolve().parents[1] / "src" / "normrobust"


def test_every_torch_load_is_weights_only():
    for py in SRC.rglob("*.py"):
        for call in re.findall(r"torch\.load\([^)]*\)", py.read_text()):
            assert "weights_only=True" in call, f"{py}: {call}"


def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "model.pt"
    torch.save({"state_dict": {}, "payload": Evil()}, path)
    from normrobust.utils import load_torch

    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_torch(path)


@pytest.mark.parametrize("section, name", [("datasets", "../../etc"), ("archs", "a/b"), ("regimes", "x y"),
                                           ("datasets", "..")])
def test_names_that_would_leave_results_are_rejected(root, section, name):
    with open(root / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    first = next(iter(cfg[section]))
    cfg[section][name] = copy.deepcopy(cfg[section][first])
    with pytest.raises(config.ConfigError, match=re.escape(section)):
        config.validate(cfg)


def test_config_strings_are_data_not_code(root):
    with open(root / "config.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg["studies"]["e1_norms"]["norms"] = ["__import__('os').system('touch /tmp/x')"]
    with pytest.raises(config.ConfigError, match="is not allowed"):
        config.validate(cfg)
