"""The whole pipeline on a tiny config: nothing → compiled PDF, then the report follows the CSVs."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normrobust.attack_specs import AUTOATTACK_TYPES
from normrobust.layout import MODEL_KEYS
from normrobust.perimage import decode
from normrobust.plan import Plan, study_models
from normrobust.studies import figure_studies

FIGURE_STUDY = figure_studies()

pytestmark = pytest.mark.slow


def snakemake(root, workdir, *args, timeout=600, env=None, configfiles=()):
    # targets go before --configfile, which takes every argument after it as a file
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(root / "Snakefile"), "-d", str(workdir),
           "--cores", "2", "--configfile", str(root / "tests" / "configs" / "tiny.yaml"), *map(str, configfiles)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if shutil.which("latexmk") is None:
        pytest.skip("latexmk is not installed (scripts/bootstrap.sh installs it as root)")
    root = Path(__file__).resolve().parents[1]
    wd = tmp_path_factory.mktemp("e2e")
    t0 = time.perf_counter()
    r = snakemake(root, wd, timeout=2400)
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stderr[-5000:]
    return root, wd, seconds


def test_tiny_pipeline_builds_the_pdf_in_minutes(run):
    root, wd, seconds = run
    pdf = wd / "results" / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    print(f"tiny pipeline: nothing to PDF in {seconds:.0f}s")  # measured, not asserted: timing is for benchmarks
    for name in FIGURE_STUDY:  # every study's figure
        assert (wd / "results" / "figures" / f"{name}.pdf").exists(), name
    # every rule left a log
    logs = {p.relative_to(wd / "results" / "logs").parts[0] for p in (wd / "results" / "logs").rglob("*.log")}
    assert {"prepare_data", "derive_data", "train", "evaluate", "transfer", "aggregate.log", "claims.log",
            "figures", "render_report.log", "build_report.log"} <= logs


def test_tables_hold_real_results(run):
    _, wd, _ = run
    t = wd / "results" / "tables"
    cfg = json.loads((t / "run_info.json").read_text())["config"]  # config.yaml + tiny.yaml, resolved
    plan = Plan(cfg)
    planned = plan.cells
    m = pd.read_csv(t / "metrics.csv")
    keys = ["dataset", "arch", "norm", "regime", "seed"]
    assert len(m.groupby(keys)) == len(planned) == 50  # 25 models (config.yaml's studies, narrowed by tiny.yaml) x 2
    clean = m[(m.metric == "clean_acc") & (m.dataset == "generated")]
    # learned something: above chance (1/10) by more than 4 standard errors of a chance-level score on n images
    # (a 3-epoch run of the no-norm ResNet is slow to start; the CNN cells are far above)
    floor = 0.1 + 4 * np.sqrt(0.1 * 0.9 / clean.n)
    assert (clean.value > floor).all(), "every model on the generated data learned something"
    robust = m[(m.metric == "robust_acc") & (m.attack == "pgd_linf") & (m.eps == 8)]
    merged = robust.merge(m[m.metric == "clean_acc"], on=keys)
    assert (merged.value_x <= merged.value_y + 1e-9).all(), "robust accuracy never exceeds clean accuracy"
    ligs = m[m.metric == "ligs"].value
    assert ligs.between(0, 1).all() and ligs.std() > 0, "LIGS must vary between models"
    assert set(m.dataset) == {"generated", "d_robust", "d_rand", "d_conflict"}, "E3/E4 trained on derived data"
    assert {"shifted_acc", "adv_confidence", "adv_wrong_confidence"} <= set(m.metric)
    images = pd.read_csv(t / "images.csv")
    on = [*keys, "metric", "attack", "eps"]
    both = m.merge(images, on=on, how="left", suffixes=("", "_images"))
    assert len(both) == len(m) and len(images) == len(m.merge(images, on=on)), "one images row per metrics row"
    unpaired = both[both["values"].isna()]
    assert set(unpaired.attack) <= set(AUTOATTACK_TYPES), "every evaluation row has its per-image values"
    for r in both[both["values"].notna()].itertuples(index=False):
        v = decode(r.values, r.n_images)
        assert int((~np.isnan(v)).sum()) == r.n and (r.n == 0 or abs(np.nanmean(v) - r.value) < 1e-5), r
    assert set(both.n_images.dropna()) == {cfg["evaluation"]["n_test"]}, "every cell: the first n_test test images"
    h = pd.read_csv(t / "history.csv")
    assert len(h) == len(planned) * 4 and h.clean_acc.between(0, 1).all(), "clean accuracy every epoch, from 0"
    assert (h.epoch == 0).sum() == len(planned) and h[h.epoch == 0][["lr", "train_loss"]].isna().all().all()
    assert h[h.epoch > 0].train_loss.notna().all(), "the loss of every epoch trained"
    e2 = {tuple(m) for m in study_models(cfg["studies"]["e2_trajectories"])}
    read = pd.Series([tuple(r) in e2 for r in h[list(MODEL_KEYS)].itertuples(index=False)], index=h.index)
    assert h[read].robust_acc_pgd_l2.between(0, 1).all() and h[read].ligs.notna().all(), "E2: PGD-L2 every epoch"
    e6 = {tuple(m) for m in study_models(cfg["studies"]["e6_factors"])}
    unread = [tuple(r) not in e2 | e6 for r in h[list(MODEL_KEYS)].itertuples(index=False)]
    assert h[unread].robust_acc.isna().all() and h[unread].ligs.isna().all(), "no study reads them: not measured"
    tr = pd.read_csv(t / "transfer.csv")
    assert len(tr) == sum(len(j.targets) for j in plan.transfer_jobs)
    assert set(tr.study) == {"e9_transfer", "e10_fgsm"} and (~tr.source_final).any(), "early-stopped sources"
    assert tr.success_rate.between(0, 1).all() and tr.error_rate.between(0, 1).all()
    for r in tr.itertuples(index=False):  # per image: the target's successes and the source's own (white box)
        for rate, n, text in ((r.success_rate, r.n, r.images), (r.white_box_rate, r.white_box_n, r.white_box_images)):
            v = decode(text, r.n_total)
            assert int((~np.isnan(v)).sum()) == n and abs(np.nanmean(v) - rate) < 1e-5, r
    claims = pd.read_csv(t / "claims.csv")
    assert len(claims) >= 15 and claims.rule.notna().all()
    assert set(claims.verdict) <= {"PASS", "FAIL", "INCONCLUSIVE", "NOT TESTABLE"}
    assert set(claims.study) == set(plan.studies), "every study has claims"


def test_second_run_has_nothing_to_do(run):
    root, wd, _ = run
    r = snakemake(root, wd)
    assert r.returncode == 0
    assert "Nothing to be done" in r.stdout + r.stderr


@pytest.mark.parametrize("change", [
    "device: cpu", "device: cuda", "gpu_slots: 3", "data_dir: /elsewhere",
    "evaluation: {batch_size: 7}", "evaluation: {fast: {eval_batch_size: 64}}", "evaluation: {fast: {amp: true}}",
    "training: {fast: {channels_last: false}}", "training: {fast: {compile: true}}",
    "transfer: {batch_size: 3}", "transfer: {fast: {channels_last: false}}",
])
def test_an_execution_detail_never_makes_finished_work_stale(run, tmp_path, change):
    """Moving a finished run to another machine (device, GPU slots, data directory) or changing how its jobs run
    (batch sizes, the fast path) replans nothing: these reach the jobs through the environment, never a param."""
    root, wd, _ = run
    (tmp_path / "change.yaml").write_text(change + "\n")
    r = snakemake(root, wd, "-n", configfiles=[tmp_path / "change.yaml"])
    assert r.returncode == 0 and "Nothing to be done" in r.stdout + r.stderr, (change, (r.stdout + r.stderr)[-2000:])


def test_editing_an_aggregated_csv_changes_the_report(run):
    root, wd, _ = run
    table = wd / "paper" / "generated" / "tables" / "main-e1-norms.tex"
    assert "0.123" not in table.read_text()
    csv = wd / "results" / "tables" / "metrics.csv"
    m = pd.read_csv(csv)
    m.loc[m.metric == "ligs", "value"] = 0.123456
    m.to_csv(csv, index=False)
    pdf = wd / "results" / "report.pdf"
    before = pdf.read_bytes()
    r = snakemake(root, wd, "paper")
    assert r.returncode == 0, r.stderr[-3000:]
    jobs = r.stdout + r.stderr
    assert "rule train" not in jobs and "rule evaluate" not in jobs, "editing a table must not retrain"
    assert "0.123" in table.read_text(), "the LIGS column must show the edited value"
    assert pdf.read_bytes() != before
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "0.123" in text, "the PDF must show the edited number"


def test_tex_missing_fails_clearly_and_keeps_finished_work(run, tmp_path):
    root, wd, _ = run
    (wd / "results" / "report.pdf").unlink()
    kept = {p: p.stat().st_mtime_ns for p in (wd / "results").rglob("*")
            if p.is_file() and p.suffix in (".pt", ".csv", ".json")}
    bin_dir = tmp_path / "bin"  # the same PATH, less latexmk
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        for exe in Path(d).glob("*") if Path(d).is_dir() else []:
            if exe.name != "latexmk" and not (bin_dir / exe.name).exists():
                (bin_dir / exe.name).symlink_to(exe)
    r = snakemake(root, wd, env={**os.environ, "PATH": str(bin_dir)})
    assert r.returncode != 0
    log = (wd / "results" / "logs" / "build_report.log").read_text()
    assert "TeX is missing (no latexmk on PATH); install it with: apt-get install latexmk" in log
    r = snakemake(root, wd)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout + r.stderr
    assert "rule build_report" in out and "rule train" not in out and "rule evaluate" not in out
    assert (wd / "results" / "report.pdf").exists()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items()), "finished work is not redone"


def _pdf_text(pdf):
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_report_has_every_section_and_filled_tables(run):
    _, wd, _ = run
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = _pdf_text(wd / "results" / "report.pdf")
    for section in ("Abstract", "Setup", "E1: normalisation and vulnerability", "E2: training trajectories",
                    "E5: ground truth", "E9: transferability", "Claims", "Reproduction against the published",
                    "Limitations", "Provenance", "Computational cost"):
        assert section in text, section
    for tag in ("E3", "E4", "E6", "E7", "E8", "E10"):
        assert re.search(rf"^(\d+ +)?{tag}: ", text, re.M), f"a section for {tag}"
    assert "analogue: generated" in text, "the reproduction table holds our numbers"
    costs = pd.read_csv(wd / "results" / "tables" / "costs.csv")
    assert set(costs.rule) == {"prepare_data", "derive_data", "train", "evaluate", "transfer"}
    train = costs[costs.rule == "train"]
    cfg = json.loads((wd / "results" / "tables" / "run_info.json").read_text())["config"]
    assert (train.wall_s > 0).all() and len(train) == len(Plan(cfg).trained) == 25, "one training job per model"


def test_fresh_checkout_with_only_the_tables_rebuilds_figures_and_paper(run, tmp_path):
    root, wd, _ = run
    fresh = tmp_path / "fresh"  # the repository's files come from root; the work directory holds only tables
    shutil.copytree(wd / "results" / "tables", fresh / "results" / "tables")
    r = snakemake(root, fresh, "paper")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    for rule in ("train", "evaluate", "transfer", "aggregate", "prepare_data"):
        assert f"rule {rule}:" not in out, f"a tables-only checkout must not run {rule}"
    for name in ("trajectories", "robust_vs_eps", "ligs_per_norm", "transfer_heatmap", "nrf_reliance"):
        assert (fresh / "results" / "figures" / f"{name}.pdf").exists(), name
    assert (fresh / "results" / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert not (fresh / "results" / "models").exists()


def test_snakemake_html_report(run):
    root, wd, _ = run
    html = wd / "report.html"
    r = snakemake(root, wd, "--report", str(html))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    text = html.read_text(errors="replace")
    for name in ("robust_vs_eps", "trajectories", "metrics.csv", "claims.csv", "report.pdf"):
        assert name in text, name
