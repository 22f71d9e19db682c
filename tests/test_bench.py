"""The benchmark harness (normrobust.bench) in its tiny mode: schema, ratios, agreement of the compared
implementations, FLOP counting. No timing is asserted."""

import json
import math

import pytest
import torch

from normrobust import bench

pytest.importorskip("torchattacks")

KEYS = {"name", "ours", "reference", "ratio", "unit", "device", "versions", "mode", "arch", "norm", "batch"}
NAMES = {"train_throughput", "train_flops", "pgd10_throughput", "ligs_throughput"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    out = d / "results" / "cpu-tiny-20000101-000000.json"
    assert bench.main(["--tiny", "--device", "cpu", "--out", str(out)]) == 0
    return out, json.loads(out.read_text())


def test_schema(tiny):
    out, records = tiny
    assert {r["name"] for r in records} == NAMES  # no channels_last record off CUDA
    for r in records:
        assert KEYS <= set(r), KEYS - set(r)
        assert r["device"] == "cpu" and r["mode"] == "tiny"
        assert {"torch", "torchvision", "python"} <= set(r["versions"])
        assert r["ours"] > 0 and r["reference"] > 0
        assert math.isclose(r["ratio"], r["ours"] / r["reference"], rel_tol=1e-12)
    assert out.with_suffix(".cmd").read_text().startswith("python -m normrobust.bench --tiny")


def test_compared_implementations_agree(tiny):
    _, records = tiny
    by = {r["name"]: r for r in records}
    p = by["pgd10_throughput"]
    assert p["ours_robust_acc"] == p["reference_robust_acc"] and p["robust_acc_diff"] == 0  # fp32 on the CPU
    assert 0 <= p["ours_robust_acc"] <= p["clean_acc"]
    lg = by["ligs_throughput"]
    assert abs(lg["ours_ligs"] - lg["reference_ligs"]) < 1e-4
    trains = [r for r in records if r["name"] == "train_throughput"]
    assert sorted(r["ref_num_workers"] for r in trains) == [0, 2]  # CPU: both usual DataLoader settings
    t = max(trains, key=lambda r: r["reference"])
    f = by["train_flops"]
    assert t["fast"]["amp"] is None and t["peak_gpu_mem_mib"] is None and f["ref_num_workers"] == t["ref_num_workers"]
    assert math.isclose(f["ours"], f["flops_per_image"] * t["ours"] / 1e12, rel_tol=1e-9)
    assert f["mfu_ours"] is None and f["note"]  # no known peak for a CPU


def test_flop_count_of_a_linear_layer():
    lin = torch.nn.Linear(7, 5)
    x, y = torch.rand(3, 7), torch.tensor([0, 1, 2])
    assert bench.flops_per_sample(lin, x, train=False) == 2 * 7 * 5
    # backward: the weight gradient only (the input does not require grad)
    assert bench.flops_per_sample(lin, x, y, train=True) == 2 * (2 * 7 * 5)


def test_tables_and_summary(tiny):
    out, records = tiny
    text = bench.table(records)
    assert "train_throughput" in text and "x " in text
    md = bench.summarize(out.parent)
    assert "| name | arch |" in md and "cpu-tiny" in md and "ligs_throughput" in md
    assert "python -m normrobust.bench --tiny" in md


@pytest.mark.slow
def test_pipeline_with_one_and_three_slots_on_the_cpu(tmp_path):
    """scripts/gpu-check.sh's third step, in its CPU mode: two short runs of the pipeline, one record. The speed-up
    is not asserted (no lease on the CPU: only the number of concurrent jobs differs)."""
    from normrobust import bench_pipeline

    out = tmp_path / "cpu-pipeline-20000101-000000.json"
    assert bench_pipeline.main(["--cpu", "--out", str(out)]) == 0
    (rec,) = json.loads(out.read_text())
    assert KEYS <= set(rec) and rec["name"] == "pipeline_throughput" and rec["unit"] == "cells/min"
    assert [r["slots"] for r in rec["runs"]] == [1, 3] and all(r["cells"] == 4 for r in rec["runs"])
    assert math.isclose(rec["ratio"], rec["ours"] / rec["reference"], rel_tol=1e-12)
    assert "pipeline" in bench.table([rec])
