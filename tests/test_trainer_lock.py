"""One trainer per cell: a second ``normrobust train`` on a cell that a live process holds stops at once, with one line
naming the holder, and touches nothing; once the holder is gone (even by SIGKILL) the cell trains again."""

import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import tiny
from conftest import cli_env
from normrobust import cell_lock, train
from normrobust.data.loading import build_dataset
from normrobust.utils import save_torch

ROOT = Path(__file__).resolve().parents[1]
GEN = {"kind": "generated", "seed": 3, "n_train": 300, "n_test": 100, "image_size": 8}
HOLD = """
import sys, time
from normrobust import cell_lock
with cell_lock.hold([sys.argv[1]]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "gen.pt"
    save_torch(build_dataset("generated", dict(GEN)), path)
    return str(path)


def settings(epochs=1, seed=0):
    return {
        "cell": {"dataset": "generated", "arch": "cnn", "norm": "bn", "regime": "standard", "seed": seed},
        "arch": {"kind": "cnn", "widths": [8, 16]},
        "regime": {"name": "standard", "attack": None, "attack_mode": "eval"},
        "training": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                     "schedule": {"kind": "constant"}, "save_epochs": [1], "history": {"n_test": 40}},
        "ligs_sigma": 0.01,
        "device": "cpu",
    }


def env():
    return cli_env(CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")


def cli_args(s, data_file, out, seeds=("0",)):
    seed_args = ["--seeds", *seeds] if seeds else []
    return [sys.executable, "-m", "normrobust", "train", "--settings", tiny.settings_of(s)[0].to_json(), *seed_args,
            "--data", data_file, "--out", str(out), "--threads", "1"]


def cli(*args, **kw):
    return subprocess.run(cli_args(*args, **kw), capture_output=True, text=True, env=env(), timeout=300)


def holder(cell: Path) -> subprocess.Popen:
    """Another live process holding ``cell``'s lock through the helper (until it is killed)."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(cell)], stdout=subprocess.PIPE, text=True, env=env())
    assert p.stdout.readline().strip() == "locked"
    return p


def snapshot(d: Path) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*")) if p.is_file()}


def is_locked(cell: Path) -> bool:
    """Whether someone (this process included: flock is per open file) holds ``cell``'s lock."""
    fd = os.open(cell / cell_lock.LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def assert_refused(r, cell: Path, pid: int):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr, r.stderr
    # one line, the refusal: the cell is locked before the GPU lease (no "[hh:mm:ss] gpu: ..." line), so a second
    # trainer stops at once even when the first one holds the only GPU
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and not re.match(r"\[[\d:]+\] gpu: ", lines[0]), r.stderr
    err = lines[0]
    assert err.startswith(f"normrobust train: {cell} is being trained by pid {pid} on host {socket.gethostname()} "
                          f"since "), err
    assert f"(lock {cell / cell_lock.LOCK_NAME})" in err and f"(kill {pid}), then rerun" in err, err


@pytest.mark.parametrize("form", ["seeds", "one cell"])
def test_a_second_trainer_on_a_held_cell_stops_at_once_and_touches_nothing(data_file, tmp_path, form):
    out = tmp_path / "models"
    cell = out / "s0"
    tiny.train(settings(epochs=1), data_file, cell)  # a finished cell: model.pt, history.csv, checkpoint.pt, ...
    p = holder(cell)
    try:
        before = snapshot(cell)
        assert {f.name for f in before} >= {"model.pt", "history.csv", "checkpoint.pt", "epoch1.pt", ".train.lock"}
        s = settings(epochs=2)  # other settings: a trainer that got in would start afresh and rewrite everything
        r = cli(s, data_file, out) if form == "seeds" else cli(s, data_file, cell, seeds=())
        assert_refused(r, cell, p.pid)
        assert snapshot(cell) == before
    finally:
        p.kill()
        p.wait()
    # the holder died by SIGKILL: the kernel dropped its lock, the cell trains again
    train.train_seeds(tiny.settings_of(settings(epochs=2))[0], [0], data_file, str(out))
    assert torch.load(cell / "model.pt", weights_only=True)["epochs"] == 2
    assert not is_locked(cell)


def test_all_seeds_are_locked_before_any_is_trained(data_file, tmp_path):
    """A held second seed stops the job before the first seed is trained; the first seed's lock is let go."""
    out = tmp_path / "models"
    p = holder(out / "s1")
    try:
        r = cli(settings(), data_file, out, seeds=("0", "1"))
        assert_refused(r, out / "s1", p.pid)
    finally:
        p.kill()
        p.wait()
    assert {f.name for f in (out / "s0").iterdir()} == {cell_lock.LOCK_NAME}  # no data read, nothing written
    assert not is_locked(out / "s0")


def test_a_real_trainer_holds_its_cell_until_it_is_killed(data_file, tmp_path):
    out = tmp_path / "models"
    cell = out / "s0"
    first = subprocess.Popen(cli_args(settings(epochs=10_000), data_file, out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env())
    try:
        deadline = time.time() + 120
        while not (cell / "checkpoint.pt").exists():
            assert first.poll() is None and time.time() < deadline, "the first trainer did not get going"
            time.sleep(0.1)
        assert (cell / cell_lock.LOCK_NAME).read_text().split()[:2] == [str(first.pid), socket.gethostname()]
        assert_refused(cli(settings(epochs=10_000), data_file, out), cell, first.pid)
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert not is_locked(cell)


def test_one_process_takes_its_own_locks_again_and_trains_as_before(data_file, tmp_path, monkeypatch):
    """train_seeds holds every seed for the whole job; train_cell inside takes its seed again without deadlock; the
    weights are those of the cells trained one by one."""
    out = tmp_path / "models"
    seen = []
    real = train._train_cell

    def checked(s, cell, data, cell_dir, device):
        seen.append((cell_dir.name, is_locked(out / "s0"), is_locked(out / "s1")))
        return real(s, cell, data, cell_dir, device)

    monkeypatch.setattr(train, "_train_cell", checked)
    train.train_seeds(tiny.settings_of(settings())[0], [0, 1], data_file, str(out))
    assert seen == [("s0", True, True), ("s1", True, True)]
    assert not is_locked(out / "s0") and not is_locked(out / "s1")
    assert (out / "s0" / cell_lock.LOCK_NAME).read_text() == ""  # released: no stale holder left behind
    for seed in (0, 1):
        tiny.train(settings(seed=seed), data_file, tmp_path / f"alone{seed}")
        a, b = weights(out / f"s{seed}" / "model.pt"), weights(tmp_path / f"alone{seed}" / "model.pt")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_lock_left_by_a_killed_holder_is_free(tmp_path):
    p = holder(tmp_path / "cell")
    with pytest.raises(cell_lock.CellLocked, match=f"by pid {p.pid} on host"):
        with cell_lock.hold([tmp_path / "cell"]):
            pass
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    with cell_lock.hold([tmp_path / "cell"]):
        assert (tmp_path / "cell" / cell_lock.LOCK_NAME).read_text().split()[0] == str(os.getpid())
