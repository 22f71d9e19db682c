"""Artefacts read downstream are checked against what the reader expects, and the machine's faults (a full disk,
permissions, a damaged file) stop a command with one line; nothing already computed changes."""

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

import tiny
from conftest import cli_env, normrobust_cli
from normrobust import __main__ as cli_main
from normrobust import train
from normrobust.data import DatasetFileError
from normrobust.data.loading import build_dataset, check_prepared, load_prepared
from normrobust.layout import Cell
from normrobust.models.load import cell_named_by, check_data, read_model_file
from normrobust.utils import save_torch

ROOT = Path(__file__).resolve().parents[1]
GEN = {"kind": "generated", "seed": 3, "n_train": 300, "n_test": 100, "image_size": 8}
EVAL = {"n_test": 50, "batch_size": 50, "attacks": {"fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [4]}},
        "headline": {"attack": "fgsm_linf", "eps": 4}, "noise_std": [], "ligs_sigma": 0.01}


def settings(norm: str) -> dict:
    return {
        "cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": "standard"},
        "arch": {"kind": "cnn", "widths": [8, 16]},
        "regime": {"name": "standard", "attack": None, "attack_mode": "eval"},
        "training": {"epochs": 1, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                     "schedule": {"kind": "constant"}, "save_epochs": [], "history": {"n_test": 40}},
        "ligs_sigma": 0.01,
    }


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """results/ with a prepared dataset and two finished cells (cnn/bn and cnn/none, seed 0)."""
    res = tmp_path_factory.mktemp("run") / "results"
    save_torch(build_dataset("generated", dict(GEN)), res / "data" / "generated.pt")
    for norm in ("bn", "none"):
        train.train_seeds(tiny.settings_of(settings(norm))[0], [0], str(res / "data" / "generated.pt"),
                          str(res / "models" / "generated" / "cnn" / norm / "standard"), device_name="cpu")
    return res


def model(res: Path, norm: str) -> Path:
    return res / "models" / "generated" / "cnn" / norm / "standard" / "s0" / "model.pt"


def run_cli(*args: str, cwd: Path, stderr=None) -> subprocess.CompletedProcess:
    return normrobust_cli(*args, cwd=cwd, env=cli_env(CUDA_VISIBLE_DEVICES=""), stderr=stderr, timeout=300)


def message(r: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed (its progress log lines, "[hh:mm:ss] ...", aside)."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not re.match(r"\[[\d:]+\] ", ln)]
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    return lines[0]


def evaluate(res: Path, model_file: Path, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("evaluate", "--model", str(model_file.relative_to(res.parent)), "--data",
                   str(data.relative_to(res.parent)), "--settings", json.dumps(EVAL), "--out",
                   str(out.relative_to(res.parent)), "--threads", "1", *extra, cwd=res.parent)


def test_a_model_of_the_right_cell_with_other_settings_stops_its_evaluation(results, tmp_path):
    """A model.pt of the same cell trained with other architecture widths (another config's) is never evaluated as
    this config's: the job gets the digest of the settings this config trains the cell with, and stops."""
    res = shutil.copytree(results, tmp_path / "results")
    mine = tiny.settings_of(settings("bn"))[0]
    other = settings("bn")
    other["arch"] = {"kind": "cnn", "widths": [4, 4]}
    train.train(tiny.settings_of(other)[0], str(res / "data" / "generated.pt"), tmp_path / "other", 0,
                device_name="cpu")
    out = res / "eval" / "generated" / "cnn" / "bn" / "standard" / "s0" / "metrics.json"
    assert evaluate(res, model(res, "bn"), res / "data" / "generated.pt", out, "--trained-with",
                    mine.digest()).returncode == 0
    done = out.read_bytes()
    shutil.copy(tmp_path / "other" / "model.pt", model(res, "bn"))
    line = message(evaluate(res, model(res, "bn"), res / "data" / "generated.pt", out, "--trained-with",
                            mine.digest()))
    assert "holds a model of generated/cnn/bn/standard/s0 trained with other settings than this config asks for" \
        in line and "'widths': [4, 4]" in line and mine.digest() in line and "delete it and rerun snakemake" in line
    assert out.read_bytes() == done, "the finished evaluation is left as it was"


def test_a_foreign_model_stops_its_evaluation_naming_expected_and_found(results, tmp_path):
    res = shutil.copytree(results, tmp_path / "results")
    out = res / "eval" / "generated" / "cnn" / "bn" / "standard" / "s0" / "metrics.json"
    assert evaluate(res, model(res, "bn"), res / "data" / "generated.pt", out).returncode == 0
    done = out.read_bytes()
    shutil.copy(model(res, "none"), model(res, "bn"))  # another cell's model copied over this one's
    line = message(evaluate(res, model(res, "bn"), res / "data" / "generated.pt", out))
    assert ("holds a model of generated/cnn/none/standard/s0, not of the cell its place names "
            "(generated/cnn/bn/standard/s0)") in line
    assert out.read_bytes() == done, "the finished evaluation is left as it was"


def test_the_cell_a_path_names():
    assert cell_named_by("results/models/mnist/cnn/bn/pgd_linf/s2/model.pt") == Cell("mnist", "cnn", "bn", "pgd_linf",
                                                                                      2)
    assert cell_named_by("results/models/mnist/cnn/bn/pgd_linf/s2/epochs/epoch3.pt").seed == 2
    assert cell_named_by("elsewhere/model.pt") is None


def test_a_model_of_another_dataset_is_not_evaluated_on_this_one(results):
    state = read_model_file(model(results, "bn"))
    meta = state["meta"]
    check_data("m.pt", state["cell"], meta, meta)  # its own dataset: fine
    with pytest.raises(SystemExit, match=r"trained on dataset 'generated', but the dataset given is 'mnist' \(name "
                                         r"generated vs mnist, shape \[3, 8, 8\] vs \[1, 28, 28\]\)"):
        check_data("m.pt", state["cell"], meta, {**meta, "name": "mnist", "shape": [1, 28, 28]})


@pytest.mark.parametrize("fault", ["another dataset's file", "truncated", "not ours"])
def test_a_wrong_or_damaged_dataset_file_stops_with_one_line(results, tmp_path, fault):
    res = shutil.copytree(results, tmp_path / "results")
    data = res / "data" / "generated.pt"
    if fault == "another dataset's file":
        other = build_dataset("d_robust", dict(GEN))
        save_torch(other, data)
        expected = f"{data.relative_to(res.parent)}: holds dataset 'd_robust'"
    elif fault == "truncated":
        data.write_bytes(data.read_bytes()[:1000])
        expected = "is damaged or not a normrobust dataset file"
    else:
        save_torch({"weights": torch.zeros(3)}, data)
        expected = "not a normrobust dataset file (no train / test / meta)"
    out = res / "eval" / "x.json"
    line = message(evaluate(res, model(res, "bn"), data, out))
    assert "DatasetFileError" in line and expected in line and "rerun snakemake to rebuild it" in line, line
    assert not out.exists()


def test_a_dataset_file_whose_splits_contradict_its_meta_is_refused(tmp_path):
    data = build_dataset("generated", dict(GEN))
    check_prepared("results/data/generated.pt", data)
    bad = {**data, "test": {"x": data["test"]["x"], "y": data["test"]["y"] + 10}}
    with pytest.raises(DatasetFileError, match=r"test labels span 10\.\.19, the meta declares 10 classes"):
        check_prepared("results/data/generated.pt", bad)
    short = {**data, "train": {"x": data["train"]["x"][:5], "y": data["train"]["y"]}}
    with pytest.raises(DatasetFileError, match="train split is not"):
        check_prepared("results/data/generated.pt", short)
    with pytest.raises(DatasetFileError, match="not found; make it first"):
        load_prepared(tmp_path / "results" / "data" / "absent.pt")


FAULTS = {
    "disk full": (OSError(errno.ENOSPC, "No space left on device", "results/tables/metrics.csv"),
                  "OSError: no space left on the device: free some and rerun (files are written atomically: "
                  "nothing finished was changed) (results/tables/metrics.csv)"),
    "permission": (PermissionError(errno.EACCES, "Permission denied", "results/models"),
                   "PermissionError: permission denied: fix the permissions or run from a directory you can write "
                   "(results/models)"),
    "read-only": (OSError(errno.EROFS, "Read-only file system", "results"),
                  "OSError: read-only file system: run from a writable working directory"),
    "damaged gzip": (EOFError("Compressed file ended before the end-of-stream marker was reached"),
                     "EOFError: Compressed file ended before the end-of-stream marker was reached"),
    "bad value": (ValueError("datasets.mnist.n_train must be an integer in 1..60000, got 70000\nmore"),
                  "ValueError: datasets.mnist.n_train must be an integer in 1..60000, got 70000 ("),
    "missing key": (KeyError("cell"), "KeyError: missing key 'cell'"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_the_command_line_turns_expected_failures_into_one_line(monkeypatch, capsys, fault):
    error, expected = FAULTS[fault]

    def fails(argv):
        raise error

    monkeypatch.delenv(cli_main.DEBUG_ENV, raising=False)
    monkeypatch.setattr(cli_main.importlib, "import_module", lambda name: types.SimpleNamespace(main=fails))
    assert cli_main.main(["aggregate", "--outdir", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("normrobust aggregate: ") and expected in err[0], err


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB file system (a tmpfs) to fill for real; the test is skipped where it cannot be mounted (not root)."""
    d = tmp_path / "small"
    d.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount a 1 MiB tmpfs to fill: {e}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a 1 MiB tmpfs to fill (needs root): {r.stderr.strip()}")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=30)


# A command saving a model too big for the small disk (a 700x700 layer: 2 MB), run by the real dispatcher.
SAVE_MODEL = """
import sys, types, torch
from normrobust import __main__ as cli
from normrobust.utils import save_torch

def main(argv):
    net = torch.nn.Sequential(torch.nn.Linear(700, 700), torch.nn.BatchNorm1d(700))
    save_torch({"state_dict": net.state_dict(), "settings": '{"epochs": 1}', "meta": {"shape": [3, 8, 8]}}, argv[0])

module = types.ModuleType("save_model")
module.main = main
sys.modules["save_model"] = module
cli.COMMANDS["save-model"] = ("save_model", "save a model")
sys.exit(cli.main(["save-model", *sys.argv[1:]]))
"""


@pytest.mark.parametrize("what", ["model", "dataset"])
def test_a_full_disk_while_saving_a_torch_file_stops_with_one_line_and_changes_nothing(small_disk, tmp_path, what):
    """torch.save's zip writer turns a full disk into a RuntimeError ("unexpected pos ...", a traceback); saved
    through save_torch it is the OSError of any full disk: one line naming the file, the temp file removed, the
    older file left as it was."""
    out = small_disk / "models" / "s0" / "model.pt" if what == "model" else small_disk / "data" / "generated.pt"
    save_torch({"state_dict": {"w": torch.ones(3)}, "epoch": 1}, out)  # the older file, finished
    old = out.read_bytes()
    rel = str(out.relative_to(tmp_path))
    if what == "model":
        r = subprocess.run([sys.executable, "-c", SAVE_MODEL, rel], capture_output=True, text=True, cwd=tmp_path,
                           env=cli_env(CUDA_VISIBLE_DEVICES=""), timeout=120)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        line = r.stderr.strip()
    else:  # prepare-data: a 2 MB dataset file
        r = run_cli("prepare-data", "--name", "generated", "--settings",
                    json.dumps({**GEN, "n_train": 2000, "image_size": 16}), "--out", rel, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        line = message(r)  # its progress lines aside
    command = "save-model" if what == "model" else "prepare-data"
    assert "Traceback" not in r.stderr and line.startswith(
        f"normrobust {command}: OSError: no space left on the device: free some and rerun (files are written "
        f"atomically: nothing finished was changed) ({rel})"), line
    assert os.listdir(out.parent) == [out.name], "the temp file is removed"
    assert out.read_bytes() == old, "the older file is left as it was"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EIO])
def test_a_failed_write_of_a_torch_file_is_the_oserror_naming_the_file(monkeypatch, tmp_path, code):
    """Whatever the file system refuses (a full disk, a quota, an I/O error): its OSError, errno kept, the file
    named; no temp file left, the older file unchanged."""
    from normrobust import utils

    out = tmp_path / "model.pt"
    save_torch({"w": torch.ones(3)}, out)
    old = out.read_bytes()
    real_fdopen = os.fdopen

    class Refusing:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(code, os.strerror(code))

    monkeypatch.setattr(utils.os, "fdopen", lambda fd, mode: Refusing(real_fdopen(fd, mode)))
    with pytest.raises(OSError) as caught:
        save_torch({"w": torch.zeros(1000)}, out)
    assert caught.value.errno == code and caught.value.filename == str(out), caught.value
    assert str(out) in cli_main.describe(caught.value)
    assert os.listdir(tmp_path) == ["model.pt"] and out.read_bytes() == old


def test_a_bug_keeps_its_traceback(monkeypatch):
    def fails(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli_main.importlib, "import_module", lambda name: types.SimpleNamespace(main=fails))
    with pytest.raises(ZeroDivisionError):
        cli_main.main(["aggregate"])


def test_a_rules_log_gets_the_line_and_the_traceback_beside_it(tmp_path):
    """Run as a rule runs it (stderr into the rule's log): the log holds the one line, the traceback is kept in
    <log>.traceback for whoever needs it."""
    log = tmp_path / "evaluate.log"
    with open(log, "w") as f:
        r = run_cli("evaluate", "--model", "m.pt", "--data", "d.pt", "--settings", '{"n_test": 5, "attacks": {}}',
                    "--out", "o.json", cwd=tmp_path, stderr=f)
    assert r.returncode == 2
    text = log.read_text()
    assert "Traceback" not in text and f"the traceback is in {log}.traceback" in text, text
    assert "Traceback (most recent call last)" in Path(f"{log}.traceback").read_text()


@pytest.mark.parametrize("damage", ["truncated", "not gzip", "not the format"])
def test_a_damaged_real_dataset_read_without_md5_check_stops_with_one_line(tmp_path, damage):
    """verify: false lets a damaged file through the md5 check; reading it then stops with one line saying to turn
    the check back on (not EOFError / BadGzipFile / a bare AssertionError from torchvision's reader)."""
    import gzip

    from normrobust.data import torchvision_sets

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in torchvision_sets.required_files("mnist", tmp_path):
        body = gzip.compress(b"\0\0\x08\x03" + bytes(100))  # an idx header that promises more than there is
        if damage == "truncated":
            body = body[:len(body) // 2]
        elif damage == "not gzip":
            body = b"garbage"
        else:
            body = gzip.compress(b"hello")
        f.path.write_bytes(body)
    out = tmp_path / "results" / "data" / "mnist.pt"
    r = run_cli("prepare-data", "--name", "mnist", "--settings", json.dumps({"kind": "mnist", "verify": False}),
                "--data-dir", str(tmp_path), "--out", str(out), cwd=tmp_path)
    line = message(r)
    assert line.startswith("normrobust prepare-data: DatasetFileError: dataset 'mnist': reading the files under ")
    assert "set datasets.mnist.verify: true to check every md5" in line, line
    assert not out.exists()


@pytest.fixture(scope="module")
def aggregated(results, tmp_path_factory):
    """``results`` with both cells evaluated and aggregated once: the tables a damaged input must leave alone."""
    res = shutil.copytree(results, tmp_path_factory.mktemp("agg") / "results")
    for norm in ("bn", "none"):
        out = res / "eval" / "generated" / "cnn" / norm / "standard" / "s0" / "metrics.json"
        assert evaluate(res, model(res, norm), res / "data" / "generated.pt", out).returncode == 0
    assert aggregate(res).returncode == 0
    return res


def aggregate(res: Path) -> subprocess.CompletedProcess:
    metrics = sorted(str(p.relative_to(res.parent)) for p in res.glob("eval/**/metrics.json"))
    histories = sorted(str(p.relative_to(res.parent)) for p in res.glob("models/**/history.csv"))
    return run_cli("aggregate", "--metrics", *metrics, "--histories", *histories, "--config", "{}",
                   "--outdir", "results/tables", cwd=res.parent)


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _edit_json(edit):
    def apply(p: Path) -> None:
        doc = json.loads(p.read_text())
        edit(doc)
        p.write_text(json.dumps(doc))
    return apply


def _splice_history(p: Path) -> None:
    lines = p.read_text().splitlines(keepends=True)
    p.write_text("".join(lines + lines[1:]))  # the epochs written twice: 0, 1, 0, 1


DAMAGE = {  # what is done to a finished per-cell file → what the one line says
    "truncated metrics": ("eval/generated/cnn/bn/standard/s0/metrics.json", _truncate, "is not valid JSON"),
    "empty metrics": ("eval/generated/cnn/bn/standard/s0/metrics.json", lambda p: p.write_text(""), "is empty"),
    "another cell's metrics": ("eval/generated/cnn/bn/standard/s0/metrics.json",
                               _edit_json(lambda d: d["cell"].update(norm="none")),
                               "not of the cell its place names (generated/cnn/bn/standard/s0)"),
    "a rate above one": ("eval/generated/cnn/bn/standard/s0/metrics.json",
                         _edit_json(lambda d: d["rows"][0].update(value=1.7)), "not a fraction in [0, 1]"),
    "per-image values cut short": ("eval/generated/cnn/bn/standard/s0/metrics.json",
                                   _edit_json(lambda d: d["images"][0].update(values=d["images"][0]["values"][:4])),
                                   "per-image values do not decode"),
    "spliced history": ("models/generated/cnn/none/standard/s0/history.csv", _splice_history, "not consecutive"),
}


@pytest.mark.parametrize("fault", DAMAGE)
def test_a_damaged_result_file_stops_the_aggregate_with_one_line_and_changes_no_table(aggregated, tmp_path, fault):
    res = shutil.copytree(aggregated, tmp_path / "results")
    before = {p.name: p.read_bytes() for p in (res / "tables").iterdir()}
    rel, damage, says = DAMAGE[fault]
    damage(res / rel)
    line = message(aggregate(res))
    assert rel in line and says in line and "delete it and rerun snakemake" in line, line
    assert {p.name: p.read_bytes() for p in (res / "tables").iterdir()} == before, "no table was changed"


def test_the_aggregate_of_undamaged_files_reads_what_the_jobs_wrote(aggregated):
    import pandas as pd

    m = pd.read_csv(aggregated / "tables" / "metrics.csv")
    assert set(m["norm"]) == {"bn", "none"} and m["value"].between(0, 1).all()
    h = pd.read_csv(aggregated / "tables" / "history.csv")
    assert len(h) == 4 and sorted(h["epoch"].unique().tolist()) == [0, 1]
