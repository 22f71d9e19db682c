"""GPU leases: concurrent GPU jobs on one machine get different devices.

This machine has no GPU, so two devices are emulated with CUDA_VISIBLE_DEVICES=0,1: the lease
logic (lock files, environment, what is recorded) is what is tested; training runs on the CPU.
"""

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch

from normrobust import __main__ as cli
from normrobust import gpu

ROOT = Path(__file__).resolve().parents[1]

# A stand-in command module: records what it saw when imported (after the CLI took the lease),
# writes its lease (the barrier file), waits for its peers' files, then holds until told to go.
PROBE = '''
import json, os, sys, time
CVD_AT_IMPORT = os.environ.get("CUDA_VISIBLE_DEVICES")
TORCH_LOADED = "torch" in sys.modules

def main(argv):
    name, d, *peers = argv
    from normrobust.gpu import lease_info
    info = {"lease": lease_info(), "cvd_at_import": CVD_AT_IMPORT, "torch_loaded": TORCH_LOADED}
    with open(os.path.join(d, name + ".tmp"), "w") as f:
        json.dump(info, f)
    os.replace(os.path.join(d, name + ".tmp"), os.path.join(d, name + ".json"))
    deadline = time.time() + 60
    while not all(os.path.exists(os.path.join(d, p + ".json")) for p in peers):
        if time.time() > deadline:
            return 3
        time.sleep(0.02)
    while not os.path.exists(os.path.join(d, name + ".go")):
        if time.time() > deadline:
            return 4
        time.sleep(0.02)
    return 0
'''

# Runs the real CLI entry point; only the command's module is swapped for the probe.
CHILD = '''
import sys
from normrobust import __main__ as cli
cli.COMMANDS["train"] = ("probe_cmd", "test probe")
sys.exit(cli.main(["train", *sys.argv[1:]]))
'''

# Takes a lease the way the CLI does and prints it.
ACQUIRE = '''
import json
from normrobust import __main__ as cli
print(json.dumps(cli.take_gpu_lease("train")))
'''


def child_env(tmp_path, devices, wait=60, slots=1):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.pop(gpu.LEASE_ENV, None)
    env.update(CUDA_VISIBLE_DEVICES=devices, NORMROBUST_LOCK_DIR=str(tmp_path / "locks"),
               NORMROBUST_GPU_WAIT=str(wait), NORMROBUST_GPU_SLOTS=str(slots),
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    return env


class Probes:
    def __init__(self, tmp_path):
        self.dir = tmp_path / "barrier"
        self.dir.mkdir()
        (tmp_path / "probe_cmd.py").write_text(PROBE)
        self.tmp = tmp_path
        self.procs = {}

    def start(self, name, devices, peers=(), wait=60, slots=1):
        with open(self.dir / f"{name}.err", "w") as err:  # the job's log
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-c", CHILD, name, str(self.dir), *peers],
                env=child_env(self.tmp, devices, wait, slots), stdout=subprocess.DEVNULL, stderr=err)
        return self.procs[name]

    def log(self, name):
        return (self.dir / f"{name}.err").read_text()

    def wait_for_log(self, name, text, timeout=30):
        t0 = time.monotonic()
        while text not in self.log(name):
            assert self.procs[name].poll() is None, self.log(name)
            assert time.monotonic() - t0 < timeout, self.log(name)
            time.sleep(0.02)

    def wait_for(self, name, timeout=30):
        path, t0 = self.dir / f"{name}.json", time.monotonic()
        while not path.exists():
            p = self.procs[name]
            if p.poll() is not None:
                raise AssertionError(f"{name} exited with {p.returncode}: {self.log(name)}")
            assert time.monotonic() - t0 < timeout, f"{name} never got a lease"
            time.sleep(0.02)
        return json.loads(path.read_text())

    def go(self, name):
        (self.dir / f"{name}.go").touch()
        p = self.procs[name]
        p.wait(timeout=30)
        assert p.returncode == 0, self.log(name)
        return self.log(name)

    def kill_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def probes(tmp_path):
    pr = Probes(tmp_path)
    yield pr
    pr.kill_all()


def acquire_in_child(tmp_path, devices, wait):
    return subprocess.run([sys.executable, "-c", ACQUIRE], env=child_env(tmp_path, devices, wait),
                          capture_output=True, text=True, timeout=60)


def test_concurrent_jobs_get_different_devices_and_a_third_waits_for_a_free_one(probes, tmp_path):
    probes.start("a", "0,1", peers=["b"])
    probes.start("b", "0,1", peers=["a"])
    a, b = probes.wait_for("a"), probes.wait_for("b")
    assert {a["lease"]["device"], b["lease"]["device"]} == {"0", "1"}
    for r in (a, b):
        assert r["lease"]["source"] == "lease" and r["lease"]["candidates"] == ["0", "1"]
        # the lease was taken, and CUDA_VISIBLE_DEVICES narrowed, before the command module was imported
        assert r["cvd_at_import"] == r["lease"]["device"] and not r["torch_loaded"]
        assert Path(r["lease"]["lock"]).parent == tmp_path / "locks"
    pids = {probes.procs["a"].pid, probes.procs["b"].pid}
    assert {a["lease"]["pid"], b["lease"]["pid"]} == pids
    # both devices are held: a third job waits ...
    probes.start("c", "0,1")
    probes.wait_for_log("c", "all 2 devices are leased")
    assert f"pid {probes.procs['a'].pid}" in probes.log("c") and "waiting" in probes.log("c")
    time.sleep(1.5)  # past a retry: still waiting
    assert not (probes.dir / "c.json").exists() and probes.procs["c"].poll() is None
    # ... until one ends, then gets the device it freed
    probes.go("a")
    c = probes.wait_for("c", timeout=15)
    assert c["lease"]["device"] == a["lease"]["device"] and c["lease"]["waited_s"] > 1
    probes.go("b")
    assert f"leased device {c['lease']['device']}" in probes.go("c")


def test_two_devices_with_three_slots_run_six_jobs_the_seventh_waits_and_sigkill_frees_a_slot(probes, tmp_path):
    names = [f"j{i}" for i in range(6)]
    for n in names:
        probes.start(n, "0,1", peers=[p for p in names if p != n], slots=3)
    leases = [probes.wait_for(n)["lease"] for n in names]
    assert sorted((x["device"], x["slot"]) for x in leases) == [(d, k) for d in "01" for k in range(3)]
    assert all(x["slots"] == 3 and x["lock"].endswith(f"gpu-{x['device']}-slot{x['slot']}.lock") for x in leases)
    probes.start("seventh", "0,1", slots=3)
    probes.wait_for_log("seventh", "all 2 devices × 3 slots are leased")
    time.sleep(1.5)  # past a retry: still waiting
    assert not (probes.dir / "seventh.json").exists() and probes.procs["seventh"].poll() is None
    victim = probes.procs["j4"]
    os.kill(victim.pid, signal.SIGKILL)  # the kernel drops its lock: its slot is free again
    victim.wait(timeout=10)
    got = probes.wait_for("seventh", timeout=15)["lease"]
    assert (got["device"], got["slot"]) == (leases[4]["device"], leases[4]["slot"])
    assert f"slot {got['slot']} of 3" in probes.log("seventh")
    for n in names:
        if n != "j4":
            probes.go(n)
    probes.go("seventh")


def test_bad_slot_count_stops_naming_the_setting(tmp_path):
    env = child_env(tmp_path, "0", wait=0, slots=0)
    r = subprocess.run([sys.executable, "-c", ACQUIRE], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "NORMROBUST_GPU_SLOTS='0'" in r.stderr and "gpu_slots" in r.stderr


def test_a_job_killed_with_sigkill_releases_its_device(probes, tmp_path):
    holder = probes.start("k", "0")
    k = probes.wait_for("k")
    assert k["lease"]["device"] == "0"
    # held: a job that may not wait stops at once, naming the lock dir and the holder
    r = acquire_in_child(tmp_path, "0", wait=0)
    assert r.returncode != 0
    assert str(tmp_path / "locks") in r.stderr and f"pid {holder.pid}" in r.stderr, r.stderr
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=10)
    r = acquire_in_child(tmp_path, "0", wait=0)
    assert r.returncode == 0, r.stderr
    lease = json.loads(r.stdout)
    assert lease["device"] == "0" and lease["waited_s"] < 1


# In-process cases: gpu.acquire() changes os.environ and module state; restore both.
@pytest.fixture
def clean(tmp_path, monkeypatch):
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("SLURM_") or k in ("CUDA_VISIBLE_DEVICES", gpu.LEASE_ENV):
            del os.environ[k]
    os.environ["NORMROBUST_LOCK_DIR"] = str(tmp_path / "locks")
    gpu.release()
    yield tmp_path / "locks"
    gpu.release()
    os.environ.clear()
    os.environ.update(saved)


def test_under_slurm_the_schedulers_binding_is_used_as_is(clean):
    os.environ.update(SLURM_JOB_ID="4242", SLURM_JOB_GPUS="3", CUDA_VISIBLE_DEVICES="3")
    lease = cli.take_gpu_lease("evaluate")
    assert lease["source"] == "slurm" and lease["device"] == "3"
    assert lease["slurm_job_id"] == "4242" and lease["slurm_job_gpus"] == "3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert not clean.exists(), "no lock is taken under SLURM"
    assert json.loads(os.environ[gpu.LEASE_ENV]) == gpu.lease_info() == lease


def test_no_gpu_means_no_lease_and_nothing_changes(clean, monkeypatch):
    monkeypatch.setattr(gpu, "present_devices", lambda: [])
    lease = cli.take_gpu_lease("train")
    assert lease["source"] == "none" and lease["device"] is None
    assert "CUDA_VISIBLE_DEVICES" not in os.environ and not clean.exists()


def test_empty_cuda_visible_devices_means_no_gpu(clean):
    os.environ["CUDA_VISIBLE_DEVICES"] = ""
    lease = cli.take_gpu_lease("transfer")
    assert lease["source"] == "none" and os.environ["CUDA_VISIBLE_DEVICES"] == ""


def test_non_gpu_commands_take_no_lease(clean):
    os.environ["CUDA_VISIBLE_DEVICES"] = "0,1"
    assert cli.take_gpu_lease("aggregate") is None and cli.take_gpu_lease("train", ["--help"]) is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1" and gpu.lease_info() is None


def test_uuids_are_leased_and_the_holder_pid_is_written(clean):
    os.environ["CUDA_VISIBLE_DEVICES"] = "GPU-aaaa-1111,GPU-bbbb-2222"
    lease = gpu.acquire()
    assert lease["device"] == "GPU-aaaa-1111" == os.environ["CUDA_VISIBLE_DEVICES"]
    assert (clean / "gpu-GPU-aaaa-1111-slot0.lock").read_text().split()[0] == str(os.getpid())
    assert gpu.acquire() == lease, "a second call keeps the lease it has"


def test_without_cuda_visible_devices_every_gpu_present_is_a_candidate(clean, tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "nvidia-smi").write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H200 (UUID: GPU-a)'\n"
                                     "echo 'GPU 1: NVIDIA H200 (UUID: GPU-b)'\n")
    (fake / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    assert gpu.candidates() == ["0", "1"]
    assert gpu.acquire()["device"] == "0" and os.environ["CUDA_VISIBLE_DEVICES"] == "0"


# The lock directory: every failure to use it is one line naming it; two users can share it.
NOBODY = 65534
as_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="running as a second uid needs root")


def as_nobody(fn):
    """fn() in a forked child running as uid/gid 65534 (root ignores permissions): ["ok", its value],
    ["exit", the SystemExit message] or ["error", repr]."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.umask(0o022)
            try:
                out = ["ok", fn()]
            except SystemExit as e:
                out = ["exit", str(e.code)]
            except BaseException as e:  # noqa: BLE001 - reported to the test
                out = ["error", repr(e)]
            os.write(w, json.dumps(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    assert data, "the child as uid 65534 reported nothing"
    return json.loads(data)


def take(devices):
    """What a new job does: a lease on one of devices (the fork's copy of the parent's lease dropped; the
    parent's lock stays held, by the parent's descriptor)."""
    def fn():
        gpu.release()
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
        return gpu.acquire()
    return fn


@pytest.fixture
def shared(clean):
    """A lock directory other uids can reach: tmp_path lies under pytest's private (0700) base."""
    base = Path(tempfile.mkdtemp(prefix="normrobust-gpu-test-"))
    base.chmod(0o755)
    os.environ[gpu.LOCK_DIR_ENV] = str(base / "locks")
    old_umask = os.umask(0o022)
    yield base / "locks"
    os.umask(old_umask)
    shutil.rmtree(base)


def test_a_lock_dir_that_is_a_file_stops_with_one_line(tmp_path):
    (tmp_path / "locks").write_text("not a directory\n")
    r = acquire_in_child(tmp_path, "0", wait=0)
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.strip() == (f"gpu: NORMROBUST_LOCK_DIR={tmp_path / 'locks'} is a file, not a directory: "
                                f"remove it or point NORMROBUST_LOCK_DIR at a directory"), r.stderr


@as_root_only
def test_a_lock_dir_another_user_cannot_write_stops_with_one_line_naming_it(shared):
    os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    shared.mkdir(mode=0o755)  # root's, not writable by others
    kind, msg = as_nobody(take("0"))
    assert kind == "exit" and "\n" not in msg, msg
    assert msg.startswith(f"gpu: NORMROBUST_LOCK_DIR={shared} is not writable by uid {NOBODY} "
                          f"(cannot create gpu-0-slot0.lock in it)"), msg
    assert "every user sharing the GPUs" in msg and f"chmod 1777 {shared}" in msg, msg
    # one it cannot create: its parent is not writable either
    os.environ[gpu.LOCK_DIR_ENV] = str(shared / "sub")
    kind, msg = as_nobody(take("0"))
    assert kind == "exit" and "\n" not in msg, msg
    assert msg.startswith(f"gpu: cannot create NORMROBUST_LOCK_DIR={shared / 'sub'} (uid {NOBODY} may not write "
                          f"in {shared})") and f"mkdir -m 1777 {shared / 'sub'}" in msg, msg


@as_root_only
def test_two_users_share_a_lock_dir(shared):
    os.environ["CUDA_VISIBLE_DEVICES"] = "0,1"
    mine = gpu.acquire()  # root creates the shared directory and takes device 0
    assert mine["device"] == "0"
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777, "the shared lock directory is writable by everyone"
    assert stat.S_IMODE(os.stat(mine["lock"]).st_mode) == 0o666, "umask 022, yet every user can lock it"
    kind, theirs = as_nobody(take("0,1"))  # device 0 is held by root: the other user gets device 1
    assert kind == "ok" and theirs["device"] == "1", theirs
    st = os.stat(theirs["lock"])
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o666)
    gpu.release()  # root's job ends: the other user can lock the file root made, and writes its pid there
    kind, theirs = as_nobody(take("0"))
    assert kind == "ok" and theirs["lock"] == mine["lock"], theirs
    assert Path(mine["lock"]).read_text().split()[0] == str(theirs["pid"])


@as_root_only
def test_a_lock_file_another_user_made_0644_stops_naming_it_and_the_fix(shared):
    shared.mkdir()
    shared.chmod(0o1777)
    old = shared / "gpu-0-slot0.lock"  # as an older version left it
    old.write_text("12345 host\n")
    old.chmod(0o644)
    kind, msg = as_nobody(take("0"))
    assert kind == "exit" and "\n" not in msg, msg
    assert msg.startswith(f"gpu: lock file {old} is not writable by uid {NOBODY} (owner uid 0, mode 0644)"), msg
    assert f"chmod a+rw {shared}/*.lock" in msg, msg


@pytest.mark.parametrize("call, err, expect", [
    ("open", errno.EROFS, "is on a read-only file system (cannot create gpu-0-slot0.lock in it): point "
                          "NORMROBUST_LOCK_DIR at a writable directory"),
    ("flock", errno.ENOLCK, "its file system may not support flock"),
    ("open", errno.ENOSPC, "No space left on device"),
])
def test_other_lock_dir_failures_stop_with_one_line(clean, monkeypatch, call, err, expect):
    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(os if call == "open" else gpu.fcntl, call, fail)
    os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    with pytest.raises(SystemExit) as e:
        gpu._try_lock("0", str(clean), 0) if call == "open" else gpu.acquire()
    msg = str(e.value.code)
    assert "\n" not in msg and f"NORMROBUST_LOCK_DIR={clean}" in msg and expect in msg, msg


def test_snakemake_puts_overlapping_gpu_jobs_on_different_devices(tmp_path):
    one_epoch = tmp_path / "one_epoch.yaml"
    # the two devices are emulated: device cpu, else a job holding a GPU it cannot use stops (utils.pick_device)
    one_epoch.write_text("device: cpu\ntraining:\n  epochs: 1\n  save_epochs: []\n  schedule: {kind: constant}\n")
    cells = [f"generated/cnn/{norm}/standard/s0" for norm in ("none", "bn")]
    wd = tmp_path / "wd"
    cmd = [sys.executable, "-m", "snakemake", *[f"results/models/{c}/model.pt" for c in cells],
           "-s", str(ROOT / "Snakefile"), "-d", str(wd), "--cores", "2", "--resources", "gpu=2",
           "--configfile", str(ROOT / "tests" / "configs" / "tiny.yaml"), str(one_epoch)]
    r = subprocess.run(cmd, env=child_env(tmp_path, "0,1", wait=120), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-5000:]
    jobs = []
    for c in cells:
        lease = torch.load(wd / "results" / "models" / c / "model.pt", weights_only=True)["lease"]
        log = wd / "results" / "logs" / "train" / f"{c.rsplit('/', 1)[0]}.log"  # a job trains every seed
        assert lease["source"] == "lease" and lease["candidates"] == ["0", "1"], lease
        assert f"leased device {lease['device']}" in log.read_text()
        # run time: from taking the lease to the log's last write ("done: ...")
        jobs.append((lease["acquired_at"], log.stat().st_mtime, lease["device"]))
    overlapping = [(a, b) for i, a in enumerate(jobs) for b in jobs[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert overlapping, f"no two training jobs ran at the same time: {jobs}"
    assert all(a[2] != b[2] for a, b in overlapping), jobs
    assert {j[2] for j in jobs} == {"0", "1"}
