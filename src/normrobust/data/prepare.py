"""``python -m normrobust prepare-data``: build one dataset file from its config entry."""

from __future__ import annotations

import argparse
import json

from ..utils import log, save_torch
from .loading import build_dataset


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="normrobust prepare-data", description=__doc__)
    p.add_argument("--name", required=True, help="dataset name (a key of the config's datasets)")
    p.add_argument("--settings", required=True, help="the dataset's config entry, as JSON")
    p.add_argument("--out", required=True, help="output .pt file")
    p.add_argument("--data-dir", default=None,
                   help="real datasets' folder (torchvision layout); default $NORMROBUST_DATA, else ./data")
    a = p.parse_args(argv)
    cfg = json.loads(a.settings)
    log(f"preparing dataset '{a.name}' ({cfg.get('kind')})")
    data = build_dataset(a.name, cfg, data_dir=a.data_dir)
    meta = data["meta"]
    log(f"train {tuple(data['train']['x'].shape)}, test {tuple(data['test']['x'].shape)}, "
        f"{meta['num_classes']} classes, mean {[round(m, 3) for m in meta['mean']]}")
    save_torch(data, a.out)
    return 0
