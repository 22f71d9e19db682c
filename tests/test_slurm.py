"""The SLURM profile on a real one-node SLURM cluster (scripts/slurm-cluster.sh).

The module starts the cluster (munged, slurmctld, slurmd with two stand-in GPUs), sends a tiny
config through `--workflow-profile workflow/profiles/slurm`, and checks that the training jobs
ran as SLURM jobs with a GPU granted, in the partition named by $SLURM_PARTITION, that a job
SLURM requeues mid-training resumes from its last epoch, and that local rules stayed local.
Skipped, with the reason, where the cluster cannot start (not root, no slurm/munge packages,
no plugin). `.ci/run` installs the packages.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm-cluster.sh"
PROFILE = ROOT / "workflow" / "profiles" / "slurm"
TINY = ROOT / "tests" / "configs" / "tiny.yaml"
EPOCHS = 20  # long enough to requeue a training job after its first saved epoch
CELLS = ("none", "bn")
PARTITION = "gpu"  # the test cluster's non-default partition, chosen through $SLURM_PARTITION
BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")

pytestmark = pytest.mark.slow


def _plugin_installed() -> bool:
    return importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p < 65000:
            try:
                with socket.socket() as s2:
                    s2.bind(("127.0.0.1", p + 1))
                return p
            except OSError:
                continue
    return 6817


def _client_env(conf: Path) -> dict:
    """This environment without inherited SLURM settings, pointed at the test cluster."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
    env.update(SLURM_CONF=str(conf), SLURM_PARTITION=PARTITION, PYTHONHASHSEED="0")
    return env


@dataclass
class Cluster:
    dir: Path
    env: dict = field(repr=False)

    def run(self, *cmd, check=True) -> str:
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if check:
            assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
        return r.stdout

    def job(self, job_id: str) -> dict:
        """`scontrol show job -d` as a dict of its key=value fields."""
        out = self.run("scontrol", "show", "job", "-d", str(job_id))
        return dict(m.groups() for m in re.finditer(r"(\w+)=(\S*)", out))


@pytest.fixture(scope="module")
def cluster():
    if not _plugin_installed():
        pytest.skip("snakemake-executor-plugin-slurm is not installed (bash scripts/bootstrap.sh installs it)")
    if os.geteuid() != 0:
        pytest.skip("the test cluster needs root (munged, slurmctld, slurmd)")
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM is not installed (missing {', '.join(missing)}): "
                    "apt-get install slurmctld slurmd slurm-client munge")
    # a short path: slurmd keeps unix sockets in its spool dir under it
    state = Path(tempfile.mkdtemp(prefix="normrobust-slurm-"))
    env = {**os.environ, "NORMROBUST_SLURM_DIR": str(state), "NORMROBUST_SLURM_PORT": str(_free_port_pair())}
    r = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
        pytest.skip(f"SLURM cannot start here: {(r.stderr or r.stdout).strip()[-1500:]}")
    try:
        yield Cluster(state, _client_env(state / "slurm.conf"))
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(state, ignore_errors=True)


def _requeue_after_first_epoch(c: Cluster, ckpt: Path, comment: str, result: dict, stop: threading.Event):
    """Once the cell's first epoch is saved, requeue its SLURM job (as a node failure or a
    preemption would): SLURM kills it and starts it again."""
    while not stop.is_set():
        if ckpt.exists():
            out = c.run("squeue", "--noheader", "--states=RUNNING", "--format=%i|%k", check=False)
            ids = [line.split("|")[0] for line in out.splitlines() if line.endswith("|" + comment)]
            if ids:
                r = subprocess.run(["scontrol", "requeue", ids[0]], env=c.env, capture_output=True, text=True)
                result.update(job=ids[0], rc=r.returncode, err=r.stderr.strip(), at=time.time())
                return
        time.sleep(0.1)


@dataclass
class Run:
    wd: Path
    out: str  # Snakemake's stdout + stderr
    cell_dir: dict  # norm -> results/models/<cell>
    requeued: dict  # job, rc, err: the job the watcher requeued ({} if none)
    seconds: float
    train_mem: int  # mem_mb asked for train


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    wd = tmp_path_factory.mktemp("slurm-wd")
    extra = wd / "slurm-test.yaml"
    extra.write_text(yaml.safe_dump({
        # the test cluster's GPUs are emulated (gres on a machine without one): with device auto, a job bound to a
        # GPU it cannot use stops (normrobust.utils.pick_device), so these jobs are told to use the CPU
        "device": "cpu",
        "seeds": [0],
        "training": {"epochs": EPOCHS, "save_epochs": [], "history": {"n_test": 20},
                     "schedule": {"kind": "constant"}},
        "run": ["e1_norms"],
        "studies": {"e1_norms": {"norms": list(CELLS), "regimes": ["standard"]}},
    }))
    cell_dir = {n: wd / "results" / "models" / "generated" / "cnn" / n / "standard" / "s0" for n in CELLS}
    targets = [str(cell_dir[n].relative_to(wd) / "model.pt") for n in CELLS]
    # the profile's requests as they are, unless this node is too small for its memory
    # (a command-line --set-resources replaces the profile's whole set-resources)
    node_mb = int(re.search(r"RealMemory=(\d+)", cluster.run("scontrol", "show", "node")).group(1))
    set_resources = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    override = []
    if max(r.get("mem_mb", 0) for r in set_resources.values()) > node_mb:
        for rule, res in set_resources.items():
            res["mem_mb"] = min(res.get("mem_mb", 0), node_mb // 2)
            override += [f"{rule}:{k}={v}" for k, v in res.items()]
        override = ["--set-resources", *override]
    cmd = [sys.executable, "-m", "snakemake", *targets,
           "-s", str(ROOT / "Snakefile"), "-d", str(wd),
           "--workflow-profile", str(PROFILE), *override,
           "--slurm-init-seconds-before-status-checks", "2",   # poll quickly: the jobs take seconds
           # the batch job's own environment, into its SLURM log (.snakemake/slurm_logs/...)
           "--precommand", "env | grep -E '^(SLURM_JOB_ID|SLURM_JOB_GPUS|CUDA_VISIBLE_DEVICES)=' || true",
           "--configfile", str(TINY), str(extra)]  # --configfile is greedy: last
    requeued: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_requeue_after_first_epoch, daemon=True, args=(
        cluster, cell_dir["none"] / "checkpoint.pt", "rule_train_wildcards_generated_cnn_none_standard",
        requeued, stop))
    watcher.start()
    t0 = time.perf_counter()
    try:
        r = subprocess.run(cmd, cwd=wd, env=cluster.env, capture_output=True, text=True, timeout=420)
    finally:
        stop.set()
        watcher.join(timeout=10)
    seconds = time.perf_counter() - t0
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    return Run(wd, out, cell_dir, requeued, seconds, set_resources["train"]["mem_mb"])


def _submitted(out: str) -> dict[str, str]:
    """SLURM job id per (rule, norm) from Snakemake's output."""
    jobs = {}
    for m in re.finditer(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)", out):
        parts = Path(m.group(2)).parts
        rule, wildcards = parts[-3], parts[-2]  # .../slurm_logs/rule_<rule>/<wildcards>/<id>.log
        norm = wildcards.split("_")[2]  # generated_cnn_<norm>_standard
        jobs[(rule.removeprefix("rule_"), norm)] = m.group(1)
    return jobs


def test_training_ran_as_slurm_jobs_with_a_gpu(cluster, run):
    wd, out, cell_dir = run.wd, run.out, run.cell_dir
    jobs = _submitted(out)
    assert {("train", n) for n in CELLS} <= set(jobs), f"training jobs were not submitted to SLURM:\n{out[-3000:]}"
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    queue = cluster.run("squeue", "--noheader", "--states=all", "--name", run_id, "--format=%i|%T|%P|%k")
    state = {line.split("|")[0]: line.split("|") for line in queue.splitlines()}
    import torch

    for norm in CELLS:
        job_id = jobs[("train", norm)]
        _, st, partition, comment = state[job_id]
        assert st == "COMPLETED" and comment == f"rule_train_wildcards_generated_cnn_{norm}_standard"
        assert partition == PARTITION, "the partition comes from $SLURM_PARTITION through the profile"
        info = cluster.job(job_id)
        assert info.get("JOB_GRES") == "gpu:1", f"no GPU granted to job {job_id}: {info}"
        assert info.get("Requeue") == "1", "the profile submits with --requeue"
        assert info.get("MinMemoryNode") == f"{run.train_mem}M", "train's mem_mb from the profile"
        # inside the batch job: SLURM's own environment (precommand, into the job's SLURM log)
        log = (wd / ".snakemake" / "slurm_logs" / "rule_train" / f"generated_cnn_{norm}_standard" / f"{job_id}.log")
        env = dict(re.findall(r"^(SLURM_JOB_ID|SLURM_JOB_GPUS|CUDA_VISIBLE_DEVICES)=(.*)$", log.read_text(), re.M))
        assert env.get("SLURM_JOB_ID") == job_id, log.read_text()[-2000:]
        assert env.get("CUDA_VISIBLE_DEVICES") in ("0", "1") and env.get("SLURM_JOB_GPUS") in ("0", "1")
        # inside the rule's own process (an srun step of that job): the lease train.py records
        lease = torch.load(cell_dir[norm] / "model.pt", weights_only=True).get("lease")
        if lease is not None:
            assert lease["source"] == "slurm", lease
            assert str(lease["slurm_job_id"]) == job_id, lease
            assert str(lease["device"]) == env["CUDA_VISIBLE_DEVICES"], (lease, env)
        assert len((cell_dir[norm] / "history.csv").read_text().splitlines()) == EPOCHS + 2  # header, epochs 0..E
    print(f"SLURM run of {len(jobs)} jobs took {run.seconds:.0f}s")


def test_local_rules_stay_local(run):
    out = run.out
    assert re.search(r"^localrule prepare_data:", out, re.M), "prepare_data is a local rule"
    assert re.search(r"^rule train:", out, re.M)
    assert not re.search(r"submitted.*rule_prepare_data", out)


def test_a_requeued_training_job_resumes(cluster, run):
    wd, out, cell_dir, requeued = run.wd, run.out, run.cell_dir, run.requeued
    if not requeued:
        pytest.skip("training finished before its job could be requeued")
    assert requeued["rc"] == 0, f"scontrol requeue failed: {requeued['err']}"
    job_id = requeued["job"]
    assert _submitted(out)[("train", "none")] == job_id
    assert int(cluster.job(job_id).get("Restarts", 0)) >= 1, "SLURM restarted the job"
    log = (wd / "results/logs/train/generated/cnn/none/standard.log").read_text()
    resumed = re.search(r"resuming after epoch [1-9]\d*", log)
    assert resumed, log[-2000:]
    epochs = [line.split(",")[0] for line in (cell_dir["none"] / "history.csv").read_text().splitlines()[1:]]
    assert epochs == [str(e) for e in range(0, EPOCHS + 1)], "every epoch exactly once (0: initialisation)"
    print(f"job {job_id} requeued; on its restart: {resumed.group(0)}")


def test_the_profile_picks_squeue_partition_and_no_account_here(cluster, monkeypatch):
    """Without accounting (this cluster), status by squeue and no -A; the partition from the env."""
    from snakemake.profiles import ProfileConfigFileParser

    for k in ("SLURM_CONF", "SLURM_PARTITION"):
        monkeypatch.setenv(k, cluster.env[k])
    monkeypatch.delenv("SLURM_ACCOUNT", raising=False)
    with open(PROFILE / "config.yaml") as f:
        parsed = ProfileConfigFileParser().parse(f)
    assert parsed["executor"] == "slurm"
    assert parsed["slurm-status-command"] == "squeue"
    assert parsed["slurm-no-account"] == "True"
    assert f"slurm_partition='{PARTITION}'" in parsed["default-resources"]
    monkeypatch.setenv("SLURM_ACCOUNT", "proj42")
    with open(PROFILE / "config.yaml") as f:
        parsed = ProfileConfigFileParser().parse(f)
    assert "slurm-no-account" not in parsed and "slurm_account='proj42'" in parsed["default-resources"]


def test_default_profile_sets_no_executor():
    default = yaml.safe_load((ROOT / "workflow" / "profiles" / "default" / "config.yaml").read_text())
    assert "executor" not in default
    slurm = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert slurm["executor"] == "slurm"
