"""Per-image outcomes: the encoding round-trips, and every per-image record gives back the number beside it (an
evaluation's rows, a transfer's success rates and its white-box success, the aggregated tables)."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

import tiny
from normrobust import aggregate, evaluate, transfer
from normrobust.data.loading import build_dataset, load_prepared
from normrobust.perimage import decode, encode
from normrobust.settings import Attack, EvalSettings, TransferSettings
from normrobust.utils import save_torch

# ------------------------------------------------------------------------------------------ the encoding


@pytest.mark.parametrize("values", [
    [1, 0, 1, 1, 0, 0, 0, 1],  # a multiple of 8
    [1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0],  # not one
    [1.0, math.nan, 0.0, math.nan, 1.0],
    [math.nan] * 11,
    [True, False, True],
    [],
])
def test_zero_one_nan_round_trip_exactly_and_compactly(values):
    text = encode(values)
    assert text.startswith("b:")
    got = decode(text, len(values))
    assert got.dtype == np.float64 and got.shape == (len(values),)
    np.testing.assert_array_equal(got, np.asarray(values, dtype=np.float64))  # NaN where NaN
    assert len(text) <= 2 + 2 * (4 * math.ceil(math.ceil(len(values) / 8) / 3)) + 1


@pytest.mark.parametrize("values", [[0.25, 0.5, -1.0], [0.1, math.nan, 0.97, 1.0, 0.0], [2.0], [0.123456789] * 9])
def test_other_values_round_trip_as_float32(values):
    text = encode(values)
    assert text.startswith("f:")
    got = decode(text, len(values))
    np.testing.assert_array_equal(got, np.asarray(values, dtype=np.float32).astype(np.float64))
    np.testing.assert_allclose(got, values, rtol=1e-7, equal_nan=True)


def test_encode_takes_tensors_and_decode_refuses_what_encode_did_not_write():
    v = torch.tensor([True, False, True, True])
    np.testing.assert_array_equal(decode(encode(v.double().numpy()), 4), [1, 0, 1, 1])
    with pytest.raises(ValueError, match="1-d"):
        encode(np.zeros((2, 2)))
    for text, n in [(encode([1, 0, 1]), 12), (encode([0.5, 0.25]), 3), ("x:abc", 1), ("b:!!:AA==", 1), ("b:gA==", 1)]:
        with pytest.raises(ValueError, match="perimage.decode"):
            decode(text, n)


# ------------------------------------------------------------------------------------------ a tiny cell

PGD = {"type": "pgd", "norm": "linf", "eps": 8, "step": 4, "steps": 2, "random_start": True}


def _settings(norm: str, seed: int = 0) -> dict:
    return {"cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": "standard", "seed": seed},
            "arch": {"kind": "cnn", "widths": [8, 16]}, "regime": {"name": "standard", "attack": None},
            "training": {"epochs": 2, "batch_size": 50, "lr": 0.05, "schedule": {"kind": "constant"},
                         "history": {"n_test": 20, "ligs": False}},
            "device": "cpu"}


@pytest.fixture(scope="module")
def cells(tmp_path_factory):
    """Two trained tiny cells (BN, no norm) on generated data with two NRF families, and the data on the CPU."""
    d = tmp_path_factory.mktemp("perimage")
    save_torch(build_dataset("generated", {"kind": "generated", "seed": 3, "n_train": 300, "n_test": 70,
                                           "image_size": 16, "nrf_amplitude": [1.5, 3], "nrf_tile": 8}),
               d / "gen.pt")
    models = {}
    for norm in ("bn", "none"):
        tiny.train(_settings(norm), d / "gen.pt", d / norm)
        models[norm] = str(d / norm / "model.pt")
    return models, load_prepared(str(d / "gen.pt"), torch.device("cpu"))


def test_evaluation_images_give_back_every_row(cells):
    models, data = cells
    ev = EvalSettings.from_dict({"n_test": 61, "ligs_sigma": 0.01, "noise_std": [0.1],
                                 "measures": ["shifted_acc", "adv_confidence", "nrf_reliance"],
                                 "attacks": {"fgsm": {"type": "fgsm", "norm": "linf", "eps": [2, 8]},
                                             "pgd_linf": {**PGD, "eps": [4]}}})
    out = evaluate.evaluate_cell(models["bn"], data, ev, torch.device("cpu"))
    json.dumps(out)  # plain values only
    rows, images = out["rows"], out["images"]
    assert len(images) == len(rows) and {"conflict_nrf_rate_family", "nrf_reliance", "ligs"} <= {r["metric"]
                                                                                                   for r in rows}
    for r, e in zip(rows, images):
        assert set(e) == {"metric", "attack", "eps", "n", "values"}
        assert (e["metric"], e["attack"], e["eps"]) == (r["metric"], r["attack"], r["eps"])
        assert e["n"] == 61, e  # every test image evaluated, in order
        v = decode(e["values"], e["n"])
        assert int((~np.isnan(v)).sum()) == r["n"], r  # the row's n: the images with a value
        assert np.nanmean(v) == pytest.approx(r["value"], abs=1e-6, nan_ok=True), r
        if r["metric"] not in ("ligs", "adv_confidence", "adv_wrong_confidence"):
            assert e["values"].startswith("b:"), r  # a 0/1 outcome per image
    by = {(e["metric"], e["attack"], e["eps"]): decode(e["values"], e["n"]) for e in images}
    clean = by[("clean_acc", "none", 0)]
    assert (by[("robust_acc", "pgd_linf", 4)] <= clean).all(), "robust: right clean and adversarial"
    rf, nrf, rel = (by[(m, "none", 0)] for m in ("conflict_rf_rate", "conflict_nrf_rate", "nrf_reliance"))
    np.testing.assert_array_equal(rel, np.where(nrf == 1, 1.0, np.where(rf == 1, 0.0, np.nan)))


def test_transfer_images_give_back_the_success_rates_and_the_white_box(cells):
    models, data = cells
    ts = TransferSettings("e9_transfer", 53, Attack.of(PGD))
    out = transfer.transfer_one(models["bn"], [models["none"], models["bn"]], data, ts, torch.device("cpu"))
    json.dumps(out)
    for r in out["rows"]:
        v = decode(r["images"], r["n_total"])
        assert r["n_total"] == 53 and int((~np.isnan(v)).sum()) == r["n"]
        assert np.nanmean(v) == r["success_rate"]  # exactly: a count over a count
    wb = out["white_box"]
    assert set(wb) == {"success_rate", "n", "images"}
    v = decode(wb["images"], 53)
    assert np.nanmean(v) == wb["success_rate"] and int((~np.isnan(v)).sum()) == wb["n"]
    # the source among the targets is the white box itself
    own = out["rows"][1]
    assert (own["success_rate"], own["n"], own["images"]) == (wb["success_rate"], wb["n"], wb["images"])


# ------------------------------------------------------------------------------------------ the tables

def _doc(seed: int, with_images: bool) -> dict:
    cell = {"dataset": "generated", "arch": "cnn", "norm": "bn", "regime": "standard", "seed": seed}
    rows = [{"metric": "clean_acc", "attack": "none", "eps": 0, "value": 0.6, "n": 5, "se": 0.2},
            {"metric": "ligs", "attack": "none", "eps": 0, "value": 0.5, "n": 2, "se": 0.1}]
    images = [{"metric": "clean_acc", "attack": "none", "eps": 0, "n": 5, "values": encode([1, 0, 1, 1, 0])},
              {"metric": "ligs", "attack": "none", "eps": 0, "n": 5,
               "values": encode([0.25, math.nan, 0.75, math.nan, math.nan])}]
    return {"cell": cell, "rows": rows, **({"images": images} if with_images else {})}


def test_images_table_pairs_with_the_metrics_table_and_older_files_add_no_rows():
    docs = [_doc(0, True), _doc(1, False)]
    m, im = aggregate.metrics_table(docs), aggregate.images_table(docs)
    assert list(im.columns) == aggregate.IMAGES_COLUMNS == ["dataset", "arch", "norm", "regime", "seed", "metric",
                                                            "attack", "eps", "n", "values"]
    assert len(im) == 2 and set(im.seed) == {0}
    both = m.merge(im, on=["dataset", "arch", "norm", "regime", "seed", "metric", "attack", "eps"])
    for _, r in both.iterrows():
        assert np.nanmean(decode(r["values"], r["n_y"])) == pytest.approx(r["value"])


def test_transfer_table_carries_the_images_and_the_white_box_and_reads_older_files():
    row = {"target": {"arch": "cnn", "norm": "none", "regime": "standard"}, "success_rate": 0.5, "n": 2,
           "error_rate": 0.25, "n_total": 4}
    new = {"source": {"dataset": "generated", "arch": "cnn", "norm": "bn", "regime": "standard", "seed": 0},
           "study": "e9_transfer", "source_epoch": 2, "source_final": True, "attack": PGD,
           "rows": [{**row, "images": encode([1, 0, math.nan, math.nan])}],
           "white_box": {"success_rate": 1.0, "n": 3, "images": encode([1, 1, 1, math.nan])}}
    old = {**new, "rows": [row]}
    del old["white_box"]
    df = aggregate.transfer_table([new, old])
    assert list(df.columns[-8:-4]) == ["images", "white_box_rate", "white_box_n", "white_box_images"]
    assert df.images[0] == new["rows"][0]["images"] and df.white_box_rate[0] == 1.0 and df.white_box_n[0] == 3
    assert df.loc[1, ["images", "white_box_rate", "white_box_n", "white_box_images"]].isna().all()


def test_aggregate_writes_images_csv(tmp_path):
    cell_dir = tmp_path / "results" / "eval" / "generated" / "cnn" / "bn" / "standard"
    files = []
    for seed, with_images in ((0, True), (1, False)):
        f = cell_dir / f"s{seed}" / "metrics.json"
        f.parent.mkdir(parents=True)
        f.write_text(json.dumps(_doc(seed, with_images)))
        files.append(str(f))
    history = tmp_path / "results" / "models" / "generated" / "cnn" / "bn" / "standard" / "s0" / "history.csv"
    history.parent.mkdir(parents=True)
    history.write_text("epoch,lr,train_loss,clean_acc,n_test,seconds\n0,,,0.1,5,1\n1,0.1,2.0,0.5,5,1\n")
    out = tmp_path / "tables"
    assert aggregate.main(["--metrics", *files, "--histories", str(history), "--config", "{}",
                           "--outdir", str(out)]) == 0
    im = pd.read_csv(out / "images.csv")
    assert list(im.columns) == aggregate.IMAGES_COLUMNS and len(im) == 2
    np.testing.assert_array_equal(decode(im["values"][0], im["n"][0]), [1, 0, 1, 1, 0])
    assert "white_box_images" in pd.read_csv(out / "transfer.csv").columns
