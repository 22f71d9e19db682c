"""The training loop: repeatable, resumable to the bit, with a real per-epoch history."""

import json

import pandas as pd
import pytest
import torch

import tiny
from normrobust import train
from normrobust.data.loading import build_dataset, load_prepared
from normrobust.models.build import build_model
from normrobust.models.load import load_model
from normrobust.utils import save_torch

GEN = {"kind": "generated", "seed": 3, "n_train": 300, "n_test": 100, "image_size": 8}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "gen.pt"
    save_torch(build_dataset("generated", dict(GEN)), path)
    return str(path)


def settings(norm="bn", regime="standard", epochs=3, seed=0):
    attack = {"type": "pgd", "norm": "linf", "eps": 8, "step": 4, "steps": 2, "random_start": True}
    return {
        "cell": {"dataset": "generated", "arch": "cnn", "norm": norm, "regime": regime, "seed": seed},
        "arch": {"kind": "cnn", "widths": [8, 16]},
        "regime": {"name": regime, "attack": attack if regime == "pgd_linf" else None, "attack_mode": "eval"},
        "training": {"epochs": epochs, "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4,
                     "schedule": {"kind": "multistep", "milestones": [2], "gamma": 0.1}, "save_epochs": [1],
                     "history": {"n_test": 40, "attack": {"type": "pgd", "norm": "linf", "eps": 4,
                                                          "rel_step": 0.25, "steps": 3}}},
        "ligs_sigma": 0.01,
        "device": "cpu",
    }


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def killed_in_epoch(n, s, data_file, out, monkeypatch):
    """Train until the process 'dies' (KeyboardInterrupt) inside epoch n; the patch is undone after."""
    real_epoch = train.train_epoch
    calls = {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("killed")
        return real_epoch(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(train, "train_epoch", dies)
        with pytest.raises(KeyboardInterrupt):
            tiny.train(s, data_file, out)


@pytest.mark.parametrize("regime", ["standard", "pgd_linf"])
def test_outputs_history_and_repeatability(data_file, tmp_path, regime):
    h1 = tiny.train(settings(regime=regime), data_file, tmp_path / "a")
    tiny.train(settings(regime=regime), data_file, tmp_path / "b")
    a, b = weights(tmp_path / "a" / "model.pt"), weights(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), "same seed must give the same weights on the CPU"
    hist = pd.read_csv(tmp_path / "a" / "history.csv")
    assert list(hist.columns) == list(train.HISTORY_COLUMNS)
    assert list(hist.epoch) == [0, 1, 2, 3]  # from the initialised model on
    assert hist.lr.iloc[0] != hist.lr.iloc[0] and hist.train_loss.iloc[0] != hist.train_loss.iloc[0]  # NaN: none yet
    assert list(hist.lr[1:]) == pytest.approx([0.05, 0.05, 0.005])  # the multistep schedule at work
    assert hist.train_loss.iloc[-1] < hist.train_loss.iloc[1]
    assert hist.clean_acc.between(0, 1).all() and hist.robust_acc.between(0, 1).all()
    assert (hist.robust_acc <= hist.clean_acc + 1e-9).all()
    assert hist.ligs.between(-1, 1).all() and hist.n_test.eq(40).all()
    assert (tmp_path / "a" / "epochs" / "epoch1.pt").exists()
    model, s, cell, meta = load_model(tmp_path / "a" / "model.pt")
    assert s.model.regime == cell.regime == regime and meta["num_classes"] == 10 and not model.training
    assert len(h1) == 4 and h1[0]["epoch"] == 0 and "lr" not in h1[0] and "train_loss" not in h1[0]


def test_the_epoch_0_row_changes_no_weight_and_measures_the_initialised_model(data_file, tmp_path, monkeypatch):
    """The history's epoch-0 row measures the model before any training and leaves the training as it was: the
    weights of a cell trained without it are the same, bit for bit (the maxout net's dropout draws from torch's
    global stream, which the measurement must not move)."""
    for arch in ({"kind": "cnn", "widths": [8, 16]}, {"kind": "maxout", "hidden": [32], "pieces": 3, "dropout": 0.5}):
        s = settings(norm="bn" if arch["kind"] == "cnn" else "none", regime="pgd_linf", epochs=2)
        s["arch"] = arch
        h = tiny.train(s, data_file, tmp_path / arch["kind"] / "with")
        with monkeypatch.context() as m:
            m.setattr(train, "_initial_row", lambda *a, **k: {"epoch": 0})  # the training as it was before the row
            tiny.train(s, data_file, tmp_path / arch["kind"] / "without")
        a, b = (weights(tmp_path / arch["kind"] / d / "model.pt") for d in ("with", "without"))
        assert all(torch.equal(a[k], b[k]) for k in a), arch
        ha, hb = (pd.read_csv(tmp_path / arch["kind"] / d / "history.csv").drop(columns="seconds")
                  for d in ("with", "without"))
        pd.testing.assert_frame_equal(ha.iloc[1:], hb.iloc[1:], check_dtype=False)  # the "without" row 0 is empty
        # the initialised model, measured with the streams of epoch 0
        torch.manual_seed(0)
        st, _ = tiny.settings_of(s)
        data = load_prepared(data_file)
        net = build_model(st.arch, st.model.norm, data["meta"])
        want = {**train.measure(net, data, st, 0, 0), "epoch": 0, "seconds": h[0]["seconds"]}
        assert h[0] == pytest.approx(want, rel=1e-6)  # the trainer's network is channels_last: the last bits differ


def test_different_seeds_differ(data_file, tmp_path):
    tiny.train(settings(epochs=1, seed=0), data_file, tmp_path / "a")
    tiny.train(settings(epochs=1, seed=1), data_file, tmp_path / "b")
    a, b = weights(tmp_path / "a" / "model.pt"), weights(tmp_path / "b" / "model.pt")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_resume_after_a_kill_matches_an_uninterrupted_run(data_file, tmp_path, monkeypatch):
    s = settings(regime="pgd_linf", epochs=3)
    tiny.train(s, data_file, tmp_path / "full")

    killed_in_epoch(3, s, data_file, tmp_path / "killed", monkeypatch)
    assert not (tmp_path / "killed" / "model.pt").exists()
    assert torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)["epoch"] == 2
    tiny.train(s, data_file, tmp_path / "killed")  # resumes at epoch 3

    a, b = weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "killed" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = pd.read_csv(tmp_path / "full" / "history.csv").drop(columns="seconds")
    hb = pd.read_csv(tmp_path / "killed" / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(ha, hb)


def test_damaged_or_foreign_resume_state_is_not_trusted(data_file, tmp_path):
    out = tmp_path / "cell"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    tiny.train(settings(epochs=1), data_file, out)
    ref = tmp_path / "ref"
    tiny.train(settings(epochs=1), data_file, ref)
    a, b = weights(out / "model.pt"), weights(ref / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a checkpoint from other settings (another lr) is ignored too
    other = settings(epochs=1)
    other["training"]["lr"] = 0.01
    tiny.train(other, data_file, out)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert json.loads(state["settings"])["settings"]["training"]["lr"] == 0.01


def test_batch_larger_than_dataset_is_a_clear_error(data_file, tmp_path):
    s = settings(epochs=1)
    s["training"]["batch_size"] = 10_000
    with pytest.raises(SystemExit, match=r"training\.batch_size: 10000 is larger than the training set \(300"):
        tiny.train(s, data_file, tmp_path / "x")


def test_diverging_run_stops_with_epoch_and_lr_and_keeps_the_last_good_checkpoint(data_file, tmp_path):
    out = tmp_path / "cell"
    tiny.train(settings(epochs=1), data_file, out)
    s = settings(epochs=2)
    s["training"]["lr"] = 1e30
    s["training"]["schedule"] = {"kind": "constant"}
    with pytest.raises(SystemExit, match=r"training diverged: loss is (nan|inf).* at epoch 1.*lr 1e\+30"):
        tiny.train(s, data_file, out)


def test_resume_continues_the_global_random_stream(data_file, tmp_path, monkeypatch):
    """Dropout (the maxout net) draws from torch's global generator: resuming restores it."""
    s = settings(norm="none", epochs=3)
    s["arch"] = {"kind": "maxout", "hidden": [32], "pieces": 3, "dropout": 0.5}
    tiny.train(s, data_file, tmp_path / "full")
    killed_in_epoch(3, s, data_file, tmp_path / "killed", monkeypatch)
    torch.manual_seed(12345)  # whatever the new process's global state is
    tiny.train(s, data_file, tmp_path / "killed")
    a, b = weights(tmp_path / "full" / "model.pt"), weights(tmp_path / "killed" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_progress_an_eta_per_epoch_and_a_heartbeat_inside_a_long_epoch(data_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "HEARTBEAT_S", 0.0)  # every step counts as "a minute later"
    tiny.train(settings(epochs=2), data_file, tmp_path / "p")
    err = capsys.readouterr().err
    assert "epoch 1: 64/300 images (21%)" in err and "to go" in err  # inside the epoch
    assert "epoch 1/2: loss" in err and "; ETA " in err  # after epoch 1, the rest of the cell
    assert "epoch 2/2: loss" in err.split("epoch 1/2: loss")[1] and "ETA" not in err.split("epoch 2/2: loss")[1]
