"""Quality gates of the workflow and the report: lint, formatting, references, reproduction table, costs."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import copy_tables_of_config
from normrobust import aggregate
from normrobust.analysis.latex import costs_table
from normrobust.analysis.reproduction import (
    Published,
    limitations,
    metric_reason,
    reproduction_frame,
    reproduction_table,
)
from normrobust.studies import STUDIES, analysis, figure_studies

FIGURE_STUDY = figure_studies()

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_TABLES = ROOT / "tests" / "fixtures" / "tables"
# The lints justified in workflow/rules/common.smk's header comment; any other lint fails.
JUSTIFIED_LINTS = {
    "Specify a conda environment or container for each rule.:",
    "Shell command directly uses variable PY from outside of the rule:",
}


def test_snakemake_lint_has_only_justified_warnings():
    r = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile"),
                        "-d", str(ROOT)], capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    lints = {ln.strip()[2:].strip() for ln in out.splitlines() if ln.startswith("    * ")}
    assert lints, "snakemake --lint printed nothing: the parsing of its output is out of date\n" + out[-2000:]
    assert lints <= JUSTIFIED_LINTS, f"unjustified lints: {lints - JUSTIFIED_LINTS}"
    assert "Lints for snakefile" not in out, out[-3000:]
    common = (ROOT / "workflow" / "rules" / "common.smk").read_text()
    for lint in JUSTIFIED_LINTS:
        assert lint.rstrip(".:") in common, f"the justification of '{lint}' is missing from common.smk"


def test_snakefmt_check_is_clean():
    exe = shutil.which("snakefmt") or str(Path(sys.executable).parent / "snakefmt")
    r = subprocess.run([exe, "--check", "Snakefile", "workflow/"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_figure_referenced_in_the_report_exists_and_every_figure_is_referenced():
    tpl = "\n".join(p.read_text() for p in [ROOT / "paper" / "report.tex.j2",
                                            *sorted((ROOT / "paper" / "sections").glob("*.tex.j2"))])
    refs = set(re.findall(r"\\ref\{fig:([^}]+)\}", tpl))
    placed = set(re.findall(r'figure\("([^"]+)"\)', tpl))
    assert refs == placed == set(FIGURE_STUDY), (refs, placed)
    assert "call figure(" not in tpl, "a figure's caption is its module's FIGURES[name].caption: \\VAR{figure(name)}"
    for label in re.findall(r"\\ref\{((?:sec|tab):[^}]+)\}", tpl):
        kind, name = label.split(":", 1)
        defined = (rf"\label{{{label}}}" in tpl) or (kind == "tab" and f'"{name}")' in tpl)
        assert defined, f"\\ref{{{label}}} has no label in the template"
    for sec in ("Setup", "Reproduction against the published numbers", "Limitations", "Provenance",
                "Computational cost", "Claims"):
        assert f"\\section{{{sec}" in tpl, sec


def test_captions_of_the_html_report_exist():
    smk = "\n".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    captions = re.findall(r'caption="([^"]+)"', smk)
    assert len(captions) >= 4
    for c in captions:
        assert (ROOT / "workflow" / "rules" / c).resolve().is_file(), c
    assert (ROOT / "workflow" / "report" / "workflow.rst").is_file()


# ---------------------------------------------------------------------------------- reproduction

PUBLISHED = [p for m in map(analysis, STUDIES) for p in m.PUBLISHED]

def _cifar_info() -> dict:
    return {"config": {
        "datasets": {"cifar10": {"kind": "cifar10"}, "gen": {"kind": "generated"}},
        "archs": {"resnet18": {"kind": "resnet", "blocks": [2, 2, 2, 2]}, "cnn": {"kind": "cnn"}},
        "regimes": {"standard": {"attack": None},
                    "pgd_l2_targeted": {"attack": {"type": "pgd", "norm": "l2", "eps": 0.5, "targeted": True}},
                    "advprop": {"attack": {"type": "pgd", "norm": "linf", "eps": 4}, "objective": "advprop"}},
        "evaluation": {"attacks": {"l2": {"type": "pgd", "norm": "l2", "eps": [0.25, 0.5]}}}}}


def _rows(dataset, arch, norm, regime, clean, robust, ligs):
    out = []
    for seed, (c, r, lg) in enumerate(zip(clean, robust, ligs)):
        base = dict(dataset=dataset, arch=arch, norm=norm, regime=regime, seed=seed)
        out += [dict(base, metric="clean_acc", attack="none", eps=0.0, value=c),
                dict(base, metric="robust_acc", attack="l2", eps=0.25, value=r),
                dict(base, metric="robust_acc", attack="l2", eps=0.5, value=r / 2),
                dict(base, metric="ligs", attack="none", eps=0.0, value=lg)]
    return out


def test_reproduction_table_puts_ours_beside_the_published_numbers():
    rows = (_rows("cifar10", "resnet18", "bn", "standard", [0.95, 0.97], [0.10, 0.14], [0.6, 0.62])
            + _rows("gen", "cnn", "bn", "standard", [0.5, 0.5], [0.0, 0.0], [0.1, 0.1])  # worse match: ignored
            + _rows("cifar10", "resnet18", "bn", "advprop", [0.96, 0.99], [0.3, 0.3], [0.9, 0.9])
            + _rows("gen", "cnn", "none", "standard", [0.9, 0.8], [0.4, 0.5], [0.8, 0.9]))
    f = reproduction_frame(_cifar_info(), pd.DataFrame(rows), None, PUBLISHED)
    assert len(f) == len(PUBLISHED)
    by_q = f.set_index("quantity")
    bn_clean = by_q.loc["standard, BN: clean accuracy (%)"]
    assert bn_clean["match"] == "same" and bn_clean["n"] == 2
    assert bn_clean["ours"] == pytest.approx(96.0) and bn_clean["diff"] == pytest.approx(96.0 - 95.3)
    assert bn_clean["ours_std"] == pytest.approx(np.std([95, 97], ddof=1))
    assert by_q.loc["standard, BN: PGD-L2 0.25 accuracy (%)"]["ours"] == pytest.approx(12.0)  # ε = 0.25, not 0.5
    assert by_q.loc["standard, BN: LIGS"]["ours"] == pytest.approx(0.61)
    none_clean = by_q.loc["standard, no norm: clean accuracy (%)"]
    assert none_clean["match"] == "analogue" and none_clean["ours"] == pytest.approx(85.0)
    assert "gen, cnn, standard" in none_clean["ours_setting"]
    advprop = by_q.loc["AdvProp − standard: clean top-1 (points)"]
    assert advprop["ours"] == pytest.approx(1.5) and advprop["match"] == "analogue"  # CIFAR-10 is not ImageNet
    assert by_q.loc["adversarial, BN: clean accuracy (%)"]["match"] == "not run"
    assert (f[f["source"].str.startswith("[G]")]["match"] == "not run").all()
    tex = reproduction_table(f)
    assert "96.0 $\\pm$ 1.4 (2)" in tex and "+0.7" in tex and tex.count("\\multicolumn") >= 4
    assert "\\\\\n[" not in tex, "a row starting with [ would be read as \\\\[length]"


def test_goodfellow_rows_are_error_rates_and_transfer():
    info = {"config": {
        "datasets": {"mnist": {"kind": "mnist"}},
        "archs": {"maxout": {"kind": "maxout"}},
        "regimes": {"standard": {"attack": None},
                    "fgsm": {"attack": {"type": "fgsm", "norm": "linf", "eps": 63.75}, "objective": "weighted"}},
        "evaluation": {"attacks": {"fgsm_linf": {"type": "fgsm", "norm": "linf", "eps": [63.75]}}}}}
    rows = []
    for regime, clean, rob in (("standard", 0.99, 0.1), ("fgsm", 0.992, 0.8)):
        for seed in (0, 1):
            base = dict(dataset="mnist", arch="maxout", norm="none", regime=regime, seed=seed)
            rows += [dict(base, metric="clean_acc", attack="none", eps=0.0, value=clean),
                     dict(base, metric="robust_acc", attack="fgsm_linf", eps=63.75, value=rob),
                     dict(base, metric="adv_wrong_confidence", attack="fgsm_linf", eps=63.75, value=0.95)]
    transfer = pd.DataFrame([dict(study="e10_fgsm", dataset="mnist", seed=s, source_arch="maxout", source_norm="none",
                                  source_regime=a, source_final=True, target_arch="maxout", target_norm="none",
                                  target_regime=b, success_rate=0.9, error_rate=v, n=100)
                             for s in (0, 1) for a, b, v in (("standard", "fgsm", 0.2), ("fgsm", "standard", 0.4))])
    f = reproduction_frame(info, pd.DataFrame(rows), transfer, PUBLISHED).set_index("quantity")
    maxout = f[f["setting"] == "maxout, MNIST"]
    assert (maxout["match"] == "same").all()
    assert maxout.loc["standard: FGSM ε=0.25 error (%)", "ours"] == pytest.approx(90.0)
    assert maxout.loc["FGSM-trained: clean error (%)", "ours"] == pytest.approx(0.8)
    assert maxout.loc["transfer standard → FGSM-trained: error (%)", "ours"] == pytest.approx(20.0)
    assert maxout.loc["transfer FGSM-trained → standard: error (%)", "ours"] == pytest.approx(40.0)
    assert maxout.loc["standard: confidence on misclassified FGSM (%)", "ours"] == pytest.approx(95.0)
    assert f[f["setting"] == "shallow softmax, MNIST"]["match"].eq("not run").all()


def test_reproduction_uses_a_studys_own_preference_and_reading():
    """The shared code calls what a study's entry brings without knowing the study: ``prefer`` puts the paper's kind
    of training first among otherwise equal regimes, ``ours`` reads our values (with the tables it is given)."""
    info = _cifar_info()
    info["config"]["regimes"]["pgd_linf"] = {"attack": {"type": "pgd", "norm": "linf", "eps": 8}}
    rows = pd.DataFrame(_rows("cifar10", "resnet18", "bn", "pgd_l2_targeted", [0.8, 0.8], [0.5, 0.5], [0.9, 0.9])
                        + _rows("cifar10", "resnet18", "bn", "pgd_linf", [0.6, 0.8], [0.4, 0.4], [0.9, 0.9]))
    transfer = pd.DataFrame({"seed": [0]})
    calls = []

    def reader(p, c, cfg, metrics, tr):
        calls.append((p.quantity, c["regime"], cfg is info["config"], len(metrics), tr is transfer))
        return pd.Series([1.0, 3.0]), "read by the study"

    kw = dict(norm="bn", role="adversarial", arch_blocks=(2, 2, 2, 2))
    plain = Published("x", "[X]", "s", "plain", 50.0, **kw)  # no preference: the first regime by name
    linf = Published("x", "[X]", "s", "linf", 50.0, prefer=lambda g: (g.get("attack") or {}).get("norm") == "linf",
                     **kw)
    read = Published("x", "[X]", "s", "read", 50.0, prefer=linf.prefer, ours=reader, **kw)
    f = reproduction_frame(info, rows, transfer, [plain, linf, read]).set_index("quantity")
    assert f.loc["plain", "ours_setting"] == "cifar10, resnet18, pgd_l2_targeted" and f.loc["plain", "ours"] == 80.0
    assert f.loc["linf", "ours_setting"] == "cifar10, resnet18, pgd_linf" and f.loc["linf", "ours"] == 70.0
    assert calls == [("read", "pgd_linf", True, len(rows), True)]  # the study's reader, for the preferred cell
    assert f.loc["read", "ours"] == 2.0 and f.loc["read", "diff"] == -48.0 and f.loc["read", "match"] == "analogue"
    assert f.loc["read", "ours_setting"] == "cifar10, resnet18, pgd_linf (read by the study)"
    assert len({plain, linf, read}) == 3 and read == Published("x", "[X]", "s", "read", 50.0, **kw)  # data compare


def test_the_reproduction_code_names_no_study():
    """No per-study flag or special case in the shared reproduction code: a study that needs its own comparison
    brings it in its ``PUBLISHED`` (``Published.prefer`` / ``Published.ours``)."""
    text = (SRC / "analysis" / "reproduction.py").read_text()
    for word in [*STUDIES, "targeted", "clean_diff", "advprop", "weighted", "efficientnet", "maxout"]:
        assert word not in text.lower(), word
    assert not re.search(r"\bE\d+\b", text), "a study's tag"
    reading = text.split("# ------", 1)[0]  # the table; the limitations below it speak of kinds of claim metric
    assert '"transfer"' not in reading and not re.search(r"metric\s*==", reading), "a special case of a metric"


def test_limitations_name_failed_claims_and_missing_studies():
    claims = pd.DataFrame([dict(id="E1-bn-clean", study="e1_norms", claim="BN raises clean accuracy",
                                metric="clean_acc", mean_diff=-0.2, verdict="FAIL"),
                           dict(id="E9-transfer", study="e9_transfer", claim="x", metric="success_rate",
                                mean_diff=0.0, verdict="INCONCLUSIVE")])
    repro = reproduction_frame(_cifar_info(), pd.DataFrame(
        _rows("cifar10", "resnet18", "bn", "standard", [0.5, 0.5], [0.1, 0.1], [0.6, 0.6])), None, PUBLISHED)
    items = limitations(_cifar_info(), claims, repro, 2, lambda row: metric_reason(row["metric"]),
                        [("E3", "disentangled datasets"), ("E4", "conflicting features")])
    text = " ".join(items)
    assert "Did not reproduce: BN raises clean accuracy" in text and "possible reason" in text
    assert "1 claim stayed inconclusive" in text
    assert "differs from [B] Fig. 3 (fig) by -45.3" in text  # same setting, far off: said plainly
    assert "E3" in text and "E4" in text


# ------------------------------------------------------------------------------------------- costs

def test_costs_table_from_benchmark_files_and_job_gpu_memory(tmp_path):
    """A job handles every seed of a cell: its benchmark file is the cell's (no seed); its GPU memory the largest of
    its seeds'."""
    model = "gen/cnn/bn/standard"
    bench = []
    for rule, s in (("train", 12.5), ("evaluate", 3.0)):
        p = tmp_path / "results" / "benchmarks" / rule / f"{model}.tsv"
        p.parent.mkdir(parents=True)
        p.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                     f"{s}\t0:00:12\t812.5\t900\t1\t1\t0\t0\t90\t{s * 0.9}\n")
        bench.append(str(p))
    t = tmp_path / "results" / "benchmarks" / "transfer" / model / "transfer" / "e9_transfer" / "final.tsv"
    t.parent.mkdir(parents=True)
    t.write_text((tmp_path / "results" / "benchmarks" / "evaluate" / f"{model}.tsv").read_text())
    bench.append(str(t))
    docs = {str(tmp_path / "results" / "eval" / model / f"s{s}" / "metrics.json"):
            {"cell": {}, "rows": [], "peak_gpu_mem_mib": 300.0 + s, "train_peak_gpu_mem_mib": 2048.0 - s}
            for s in (0, 1)}
    transfers = {str(tmp_path / "results" / "eval" / model / "s1" / "transfer" / "e9_transfer" / "final.json"):
                 {"peak_gpu_mem_mib": 77.0}}
    costs = aggregate.costs_table(bench, docs, transfers)
    got = costs.set_index("rule")
    assert got.loc["train", "wall_s"] == 12.5 and got.loc["train", "target"] == model
    assert got.loc["train", "max_rss_mib"] == 812.5 and got.loc["train", "peak_gpu_mem_mib"] == 2048.0
    assert got.loc["evaluate", "peak_gpu_mem_mib"] == 301.0
    assert got.loc["transfer", "target"] == f"{model}/transfer/e9_transfer/final"
    assert got.loc["transfer", "peak_gpu_mem_mib"] == 77.0
    tex = costs_table(costs)
    assert "\\texttt{train} & 1 & 0.2 & 12.5 & 12.5 & 812 & 2,048" in tex
    assert "no benchmark records" in costs_table(costs.iloc[:0])


def test_aggregate_never_replaces_tables_by_empty_ones(tmp_path, capsys):
    out = tmp_path / "tables"
    out.mkdir()
    (out / "metrics.csv").write_text("kept")
    assert aggregate.main(["--config", "{}", "--outdir", str(out)]) == 1
    assert (out / "metrics.csv").read_text() == "kept"
    assert "nothing to aggregate" in capsys.readouterr().err


def _plan(workdir, *args):
    r = subprocess.run([sys.executable, "-m", "snakemake", "-n", *args, "-s", str(ROOT / "Snakefile"),
                        "-d", str(workdir)], capture_output=True, text=True, timeout=300)
    return r, r.stdout + r.stderr


def test_tables_only_checkout_plans_no_training(tmp_path):
    """A fresh checkout holding only results/tables/ of this config: `snakemake paper` plans plotting and LaTeX
    only."""
    copy_tables_of_config(tmp_path / "results" / "tables")
    r, out = _plan(tmp_path, "paper")
    assert r.returncode == 0, out[-3000:]
    assert "built from the tables alone" in out
    jobs = set(re.findall(r"^rule (\w+):", out, flags=re.M))
    assert jobs == {"claims", "figure", "render_report", "build_report", "paper"}, jobs


@pytest.mark.parametrize("made_by", ["another", "unrecorded", "no run_info"])
def test_tables_of_another_config_stop_the_run_with_one_line(tmp_path, made_by):
    """Tables another config made (or that record no config, or have no run_info.json at all) are never reported as
    this config's nor overwritten by a new run: the run stops before planning anything, with one line saying how to
    proceed, and the tables are left as they were."""
    tables = copy_tables_of_config(tmp_path / "results" / "tables", ROOT / "workflow" / "presets" / "mnist-quick.yaml")
    if made_by == "unrecorded":
        info = json.loads((tables / "run_info.json").read_text())
        del info["config_sha256"]
        (tables / "run_info.json").write_text(json.dumps(info))
    if made_by == "no run_info":
        (tables / "run_info.json").unlink()
    before = {p.name: p.read_bytes() for p in tables.iterdir()}
    r, out = _plan(tmp_path, "paper")
    assert r.returncode != 0
    assert "Traceback" not in out and "nothing is trained" not in out
    words = "holds tables of unknown origin" if made_by == "no run_info" else "holds the tables of another run"
    line = next(s for s in out.splitlines() if words in s)
    assert "mv results/tables" in line and "run_info.json" in line and "nothing was run or changed" in line
    assert ("config it does not record" in line) == (made_by == "unrecorded")
    assert {p.name: p.read_bytes() for p in tables.iterdir()} == before


def test_tables_only_mode_holds_for_the_preset_that_made_them(tmp_path):
    """The same tables, made by the mnist-quick preset: with that preset they are this config's tables, wherever
    its data lives (data_dir is an execution detail, like the device)."""
    preset = ROOT / "workflow" / "presets" / "mnist-quick.yaml"
    copy_tables_of_config(tmp_path / "results" / "tables", preset)
    r, out = _plan(tmp_path, "paper", "--configfile", str(preset), "--config", f"data_dir={tmp_path}", "device=cpu")
    assert r.returncode == 0, out[-3000:]
    assert "built from the tables alone" in out and "another run" not in out


# ------------------------------------------------------------------------------------------ structure

SRC = ROOT / "src" / "normrobust"
MAX_MODULE_LINES = 450  # a module longer than this is doing more than one thing


def test_ruff_is_clean_on_src_and_tests():
    exe = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    r = subprocess.run([exe, "check", "src", "tests"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_module_is_longer_than_450_lines():
    long = {str(p.relative_to(ROOT)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines()))
            > MAX_MODULE_LINES}
    assert not long, long


def test_a_study_key_is_named_only_by_its_package():
    """Shared code knows no study: the workflow, the schema, the report template, the analysis and the registry
    (which finds the study packages) iterate over the studies. (A study's report fragment is named after its key;
    its text need not name it.)"""
    files = [*SRC.rglob("*.py"), ROOT / "Snakefile", *(ROOT / "workflow").rglob("*.smk"),
             *(ROOT / "workflow" / "report").glob("*"), *(ROOT / "workflow" / "schemas").glob("*"),
             *(ROOT / "paper").rglob("*.j2")]
    for key, module in STUDIES.items():
        package = Path(module.__file__).parent
        naming = {p for p in files if re.search(rf"\b{key}\b", p.read_text())}
        assert all(p.is_relative_to(package) for p in naming), (key, naming)


def _imports(path: Path, module: str, modules: dict[str, Path]) -> set[str]:
    """The package modules ``module`` imports, function-local imports included."""
    import ast

    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.add(name)
    return out


def test_the_package_has_no_import_cycle():
    """No module reaches itself through the modules it imports (function-local imports included); a submodule
    importing its own package's siblings is no cycle."""
    modules = {}
    for p in SRC.rglob("*.py"):
        parts = p.relative_to(SRC.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    graph = {m: _imports(p, m, modules) for m, p in modules.items()}
    for m, deps in graph.items():  # importing a.b.c runs the packages a.b first, unless m is inside them
        for d in list(deps):
            parent = d.rpartition(".")[0]
            while parent.count("."):
                if parent != m and not m.startswith(parent + ".") and parent in modules:
                    deps.add(parent)
                parent = parent.rpartition(".")[0]

    def reach(start: str) -> bool:
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m == start:
                return True
            if m not in seen:
                seen.add(m)
                todo += graph[m]
        return False

    assert not [m for m in graph if reach(m)]
