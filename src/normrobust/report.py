"""The LaTeX report: render it from the aggregated tables, then compile it.

Usage::

    python -m normrobust report render --tables results/tables --figures results/figures \\
        --outdir paper/generated [--claims results/tables/claims.csv] [--template paper/report.tex.j2]
    python -m normrobust report build --texdir paper/generated --out results/report.pdf

``render`` fills ``paper/report.tex.j2`` (jinja2 with LaTeX-safe delimiters: ``\\VAR{...}`` for values,
``\\BLOCK{...}`` for statements, ``\\#{...}`` for comments) and writes ``OUTDIR/report.tex``,
``OUTDIR/tables/*.tex`` and copies of the figures into ``OUTDIR/figures/``. Every number in the text is
computed here from the CSVs (nothing typed by hand); the claims are evaluated afresh from the tables with
:mod:`normrobust.claims` unless ``--claims`` names a claims CSV to use instead.

``build`` runs ``latexmk -pdf -interaction=nonstopmode -halt-on-error`` in TEXDIR, fails when the log
reports undefined references or citations, and copies the PDF atomically to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import claims as C
from . import reproduction as R
from . import tables as T
from .studies import STUDIES

TEX_INSTALL = ("apt-get install latexmk texlive-latex-base texlive-latex-recommended "
               "texlive-fonts-recommended texlive-latex-extra")
STUDY_ORDER = list(STUDIES)
STUDY_FIGURES = {name: s["figures"] for name, s in STUDIES.items()}
UNDEFINED_RE = re.compile(r"(There were undefined references|Reference `[^']*' on page \d+ undefined|"
                          r"Citation `[^']*' on page \d+ undefined|There were undefined citations)")


def default_template() -> Path:
    here = Path(__file__).resolve().parents[2] / "paper" / "report.tex.j2"
    return here if here.is_file() else Path("paper/report.tex.j2")


# ----------------------------------------------------------------------------------- jinja helpers

def jinja_env(template_dir: Path):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(template_dir)),
        block_start_string=r"\BLOCK{", block_end_string="}",
        variable_start_string=r"\VAR{", variable_end_string="}",
        comment_start_string=r"\#{", comment_end_string="}",
        line_statement_prefix="%%", line_comment_prefix="%#",
        trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["tex"] = T.tex_escape
    return env


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _join(items: list[str], last: str = "and") -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _num(x: Any) -> str:
    """A plain number for the text (config values), in math mode when negative."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return T.tex_escape(x)
    s = T.fmt_num(v, 4)
    return f"${s}$" if v < 0 else s


def _eps_tex(attack: str, eps: float) -> str:
    if attack == "gaussian":
        return _num(eps)
    if T.is_linf(attack):
        return f"{_num(eps)}/255"
    return _num(eps)


def change_phrase(row: pd.Series | dict[str, Any] | None, what: str) -> str:
    """'lowered WHAT by 24.8 points' (or raised / did not change) from a claims row."""
    if row is None or not np.isfinite(float(row["mean_diff"])):
        return ""
    pct = T.metric_is_percent(row["metric"])
    v = float(row["mean_diff"]) * (100 if pct else 1)
    digits = 1 if pct else 3
    if round(v, digits) == 0:
        return f"left {what} unchanged"
    unit = " points" if pct else ""
    verb = "raised" if v > 0 else "lowered"
    return f"{verb} {what} by {abs(v):.{digits}f}{unit}"


def claim_context(row: pd.Series) -> dict[str, Any]:
    return {
        "id": T.tex_escape(row["id"]), "text": T.tex_escape(row["claim"]),
        "diff": T.claim_diff_tex(row) + (" points" if T.metric_is_percent(row["metric"])
                                         and np.isfinite(float(row["mean_diff"])) else ""),
        "n": int(row["n_seeds"]) if np.isfinite(float(row["n_seeds"])) else 0,
        "verdict": T.verdict_tex(row["verdict"]), "raw_verdict": str(row["verdict"]),
        "note": T.tex_escape(row.get("note", "") if isinstance(row.get("note", ""), str) else ""),
    }


def _attack_config_tex(a: dict[str, Any] | None) -> str:
    """'PGD-$L_\\infty$, $\\varepsilon=4/255$, 10 steps of 1/255' from a config attack dict."""
    if not isinstance(a, dict):
        return "none"
    name = f"{str(a.get('type', '')).lower()}_{a.get('norm', '')}"
    label = T.attack_label(name) if name in T.ATTACK_LABEL else name.upper()
    parts = [T.tex_escape(label)]
    if a.get("targeted"):
        parts[0] = "targeted " + parts[0]
    if "eps" in a:
        parts.append(f"$\\varepsilon = {_eps_tex(name, a['eps'])}$")
    if "steps" in a:
        step = f" of {_eps_tex(name, a['step'])}" if "step" in a else ""
        parts.append(f"{_num(a['steps'])} step{'s' if a['steps'] != 1 else ''}{step}")
    if "rel_step" in a:
        parts.append(f"step {_num(a['rel_step'])}$\\,\\varepsilon$")
    if a.get("random_start"):
        parts.append("random start")
    return ", ".join(parts)


# ------------------------------------------------------------------------------------------ render

def _setup_context(info: dict[str, Any], metrics: pd.DataFrame, head: dict[str, Any]) -> dict[str, Any]:
    cfg = info.get("config") or {}
    cells = metrics[["dataset", "arch", "norm", "regime", "seed"]].drop_duplicates()
    datasets = []
    for name in sorted(set(metrics["dataset"])):
        d = (cfg.get("datasets") or {}).get(name) or {}
        desc = T.tex_escape(name)
        if d:
            keys = [k for k in ("kind", "n_train", "n_test", "image_size", "num_classes", "rf_amplitude",
                                "nrf_amplitude", "noise_std") if k in d]
            desc += " (" + ", ".join(f"{T.tex_escape(k)} {T.tex_escape(d[k]) if isinstance(d[k], str) else _num(d[k])}"
                                     for k in keys) + ")"
        datasets.append(desc)
    archs = []
    for name in sorted(set(metrics["arch"])):
        a = (cfg.get("archs") or {}).get(name) or {}
        desc = T.tex_escape(name)
        extra = []
        if "kind" in a:
            extra.append(T.tex_escape(a["kind"]))
        if "widths" in a:
            extra.append("widths " + ", ".join(_num(w) for w in a["widths"]))
        if "blocks" in a:
            extra.append("blocks " + ", ".join(_num(w) for w in a["blocks"]))
        archs.append(desc + (f" ({'; '.join(extra)})" if extra else ""))
    regimes = []
    for name in T.sort_regimes(set(metrics["regime"])):
        r = (cfg.get("regimes") or {}).get(name)
        desc = f"{T.tex_escape(T.regime_label(name))} (\\texttt{{{T.tex_escape(name)}}})"
        if isinstance(r, dict) and r.get("attack"):
            desc += ": training attack " + _attack_config_tex(r["attack"])
            if r.get("attack_mode"):
                desc += f", generated in {T.tex_escape(r['attack_mode'])} mode"
        elif isinstance(r, dict):
            desc += ": clean images only"
        regimes.append(desc)
    attacks = []
    rob = metrics[metrics["metric"] == "robust_acc"]
    for att in T.sort_attacks(set(rob["attack"])):
        eps = sorted(set(rob[rob["attack"] == att]["eps"].dropna()))
        spec = ((cfg.get("evaluation") or {}).get("attacks") or {}).get(att) or {}
        steps = f"; {_num(spec['steps'])} steps" if "steps" in spec else ""
        unit = " (in 1/255)" if T.is_linf(att) else ""
        attacks.append(f"{T.tex_escape(T.attack_label(att))}: $\\varepsilon \\in \\{{{', '.join(T.fmt_num(e) for e in eps)}\\}}${unit}{steps}")
    noise = sorted(set(metrics[metrics["metric"] == "noise_acc"]["eps"].dropna()))
    tr = cfg.get("training") or {}
    ev = cfg.get("evaluation") or {}
    training = []
    for k, label in (("epochs", "epochs"), ("batch_size", "batch size"), ("optimizer", "optimizer"),
                     ("lr", "learning rate"), ("momentum", "momentum"), ("weight_decay", "weight decay")):
        if k in tr:
            v = tr[k]
            training.append(f"{label} {T.tex_escape(v) if isinstance(v, str) else _num(v)}")
    sch = tr.get("schedule") or {}
    if sch.get("kind") == "multistep" and sch.get("milestones"):
        training.append(f"learning rate $\\times {T.fmt_num(sch.get('gamma', 0.1))}$ at epoch"
                        f"{'s' if len(sch['milestones']) > 1 else ''} {_join([_num(m) for m in sch['milestones']])}")
    seeds = sorted(set(int(s) for s in cells["seed"]))
    return {
        "datasets": datasets, "archs": archs, "regimes": regimes, "attacks": attacks,
        "norms": _join([T.tex_escape(T.norm_label(n)) for n in T.sort_norms(set(metrics["norm"]))]),
        "noise": ", ".join(_num(s) for s in noise), "training": "; ".join(training),
        "seeds": ", ".join(str(s) for s in seeds), "n_seeds": len(seeds), "n_cells": len(cells),
        "n_models": len(cells.drop(columns=["seed"]).drop_duplicates()),
        "eval_n_test": _num(ev["n_test"]) if "n_test" in ev else "",
        "ligs_sigma": _num(ev["ligs_sigma"]) if "ligs_sigma" in ev else "",
        "headline": T.tex_escape(T.attack_eps_label(head["attack"], head["eps"])),
        "transfer_attack": _attack_config_tex((cfg.get("transfer") or {}).get("attack")),
        "history_attack": _attack_config_tex((tr.get("history") or {}).get("attack")),
        "history_n_test": _num((tr.get("history") or {}).get("n_test")) if (tr.get("history") or {}).get("n_test") else "",
    }


def _study_scope(st: dict[str, Any]) -> str:
    return (f"{T.tex_escape(st.get('dataset', ''))}; architecture{'s' if len(st.get('archs', [])) > 1 else ''} "
            f"{_join([T.tex_escape(a) for a in st.get('archs', [])])}; norms "
            f"{_join([T.tex_escape(T.norm_label(n)) for n in T.sort_norms(st.get('norms', []))])}; regimes "
            f"{_join([T.tex_escape(T.regime_label(r)) for r in T.sort_regimes(st.get('regimes', []))])}")


def _find_claim(claims: pd.DataFrame, ids: list[str]) -> pd.Series | None:
    for cid in ids:
        hit = claims[claims["id"] == cid]
        if len(hit) and np.isfinite(float(hit["mean_diff"].iloc[0])):
            return hit.iloc[0]
    return None


def _abstract(claims: pd.DataFrame, setup: dict[str, Any], studies: dict[str, Any]) -> list[str]:
    """Sentences of the abstract, each built only from numbers in the tables."""
    out = [f"We trained {setup['n_models']} model configurations ({setup['n_cells']} models counting "
           f"{setup['n_seeds']} seed{'s' if setup['n_seeds'] != 1 else ''}) with and without normalisation "
           "layers and measured clean accuracy, robust accuracy under attack, local input-gradient similarity "
           "(LIGS)" + (" and, on generated data with known features, reliance on non-robust features"
                      if "e5_synthetic" in studies else "") + "."]
    bits = []
    r_clean = _find_claim(claims, ["E1-bn-clean"])
    r_rob = _find_claim(claims, ["E1-bn-robust", "E2-bn-std-robust"])
    r_ligs = _find_claim(claims, ["E1-bn-ligs", "E2-bn-std-ligs"])
    n = max([int(r["n_seeds"]) for r in (r_clean, r_rob, r_ligs) if r is not None] or [0])
    if r_clean is not None:
        bits.append(change_phrase(r_clean, "clean accuracy"))
    if r_rob is not None:
        bits.append(change_phrase(r_rob, f"{setup['headline']} robust accuracy"))
    if r_ligs is not None:
        bits.append(change_phrase(r_ligs, "LIGS"))
    if bits:
        out.append(f"Under standard training, batch normalisation (BN) {_join(bits)} compared with the same "
                   f"network without normalisation (mean of per-seed paired differences, {n} "
                   f"seed{'s' if n != 1 else ''}).")
    r_nrf = _find_claim(claims, ["E5-bn-nrf"])
    if r_nrf is not None:
        out.append(f"On the generated data, BN {change_phrase(r_nrf, 'reliance on non-robust features')}.")
    r_adv = [r for _, r in claims[claims["id"].str.startswith("E2-bn-adv-robust")].iterrows()
             if np.isfinite(float(r["mean_diff"]))]
    if r_adv:
        r = r_adv[0]
        out.append(f"Under adversarial training the BN gap in robust accuracy was "
                   f"{T.fmt_signed(float(r['mean_diff']), True)} points.")
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    k = len(claims)
    out.append(f"Of {k} claim{'s' if k != 1 else ''} from the literature checked with a rule fixed in "
               f"advance, {int(counts.get(C.PASS, 0))} passed, {int(counts.get(C.FAIL, 0))} failed and "
               f"{int(counts.get(C.INCONCLUSIVE, 0))} were inconclusive.")
    return out


def render(tables_dir: str | Path, figures_dir: str | Path, outdir: str | Path,
           claims_csv: str | Path | None = None, template: str | Path | None = None) -> Path:
    """Write OUTDIR/report.tex, OUTDIR/tables/*.tex and OUTDIR/figures/*.pdf; return the .tex path."""
    from .utils import atomic_write, log

    tables_dir, figures_dir, outdir = Path(tables_dir), Path(figures_dir), Path(outdir)
    template = Path(template) if template else default_template()
    if not template.is_file():
        raise T.MissingInputError(f"missing report template {template}")
    info = T.read_run_info(tables_dir, required=True)
    metrics = T.read_table(tables_dir, "metrics")
    enabled = T.studies(info)
    history = T.read_table(tables_dir, "history") if "e2_trajectories" in enabled else None
    transfer = T.read_table(tables_dir, "transfer") if "e9_transfer" in enabled else None
    head = T.headline(info)
    if claims_csv:
        p = Path(claims_csv)
        if not p.is_file():
            raise T.MissingInputError(f"missing claims file {p} (run `python -m normrobust claims` first)")
        claims = pd.read_csv(p, keep_default_na=False, na_values=["", "nan", "NaN"])
        for c in ("mean_diff", "min_diff", "max_diff", "n_seeds"):
            claims[c] = pd.to_numeric(claims[c], errors="coerce")
    else:
        claims = C.evaluate(info, metrics, history, transfer)

    written: dict[str, str] = {}

    def write_table(name: str, text: str) -> str:
        rel = f"tables/{name.replace('_', '-')}.tex"
        atomic_write(outdir / rel, lambda f: f.write(text), mode="w")
        written[name] = rel
        return rel

    figs: dict[str, dict[str, Any]] = {}
    for names in STUDY_FIGURES.values():
        for name in names:
            src = figures_dir / f"{name}.pdf"
            if src.is_file():
                data = src.read_bytes()
                atomic_write(outdir / "figures" / f"{name}.pdf", lambda f, d=data: f.write(d))
                figs[name] = {"present": True, "path": f"figures/{name}.pdf", "missing": ""}
            else:
                figs[name] = {"present": False, "path": "", "missing": T.tex_escape(str(src))}

    setup = _setup_context(info, metrics, head)
    study_ctx: dict[str, Any] = {}
    for key in STUDY_ORDER:
        st = enabled.get(key)
        if st is None:
            continue
        sel = dict(dataset=st.get("dataset"), archs=st.get("archs"), norms=st.get("norms"),
                   regimes=st.get("regimes"))
        tabs = {}
        if key in ("e1_norms", "e2_trajectories"):
            tabs["main"] = write_table(f"main_{key}", T.main_results_table(metrics, head, **sel))
        if key == "e5_synthetic":
            tabs["nrf"] = write_table(f"nrf_{key}", T.nrf_table(metrics, **sel))
        if key == "e9_transfer":
            tabs["transfer"] = write_table(f"transfer_{key}", T.transfer_table(transfer, **sel))
        sc = claims[claims["study"] == key]
        n_seeds = metrics[(metrics["dataset"] == st.get("dataset")) & metrics["arch"].isin(st.get("archs", []))
                          & metrics["norm"].isin(st.get("norms", [])) & metrics["regime"].isin(st.get("regimes", []))
                          ]["seed"].nunique()
        study_ctx[key] = {
            "scope": _study_scope(st), "tables": tabs, "n_seeds": int(n_seeds),
            "claims": [claim_context(r) for _, r in sc.iterrows()],
            "dataset": T.tex_escape(st.get("dataset", "")), "n_epochs": 0, "n_pairs": 0, "n_images": "--",
        }
        if key == "e2_trajectories" and history is not None:
            h = history[(history["dataset"] == st.get("dataset")) & history["arch"].isin(st.get("archs", []))]
            study_ctx[key]["n_epochs"] = int(h["epoch"].max()) if len(h) else 0
        if key == "e9_transfer" and transfer is not None:
            t = transfer[transfer["dataset"] == st.get("dataset")]
            study_ctx[key]["n_pairs"] = int(len(t[["source_arch", "source_norm", "source_regime", "target_arch",
                                                    "target_norm", "target_regime"]].drop_duplicates()))
            study_ctx[key]["n_seeds"] = int(t["seed"].nunique())
            nn = t["n"].dropna()
            study_ctx[key]["n_images"] = (f"{int(nn.min())}--{int(nn.max())}" if len(nn) and nn.min() != nn.max()
                                          else (str(int(nn.iloc[0])) if len(nn) else "--"))

    write_table("claims", T.claims_table(claims))
    repro = R.reproduction_frame(info, metrics, transfer if transfer is not None else _optional(tables_dir, "transfer"))
    write_table("reproduction", R.reproduction_table(repro))
    costs = _optional(tables_dir, "costs")
    write_table("costs", T.costs_table(costs))
    counts = claims["verdict"].value_counts() if len(claims) else pd.Series(dtype=int)
    versions = info.get("versions") or {}
    inputs = [(n, tables_dir / n) for n in ("metrics.csv", "history.csv", "transfer.csv", "costs.csv",
                                            "run_info.json")]
    ctx = {
        "title": "Do normalisation layers make networks lean on non-robust features?",
        "date": T.tex_escape(str(info.get("created", ""))[:10]),
        "abstract": _abstract(claims, setup, enabled),
        "setup": setup, "studies": study_ctx, "figs": figs, "tables": written,
        "claims": [claim_context(r) for _, r in claims.iterrows()],
        "failed": [claim_context(r) for _, r in claims[claims["verdict"] == C.FAIL].iterrows()],
        "inconclusive": [claim_context(r) for _, r in claims[claims["verdict"] == C.INCONCLUSIVE].iterrows()],
        "n_claims": len(claims), "n_pass": int(counts.get(C.PASS, 0)), "n_fail": int(counts.get(C.FAIL, 0)),
        "n_inconclusive": int(counts.get(C.INCONCLUSIVE, 0)),
        "rule": {"tol_keep": T.fmt_num(C.TOL_KEEP * 100), "tol_small": T.fmt_num(C.TOL_SMALL * 100),
                 "min_seeds": C.MIN_SEEDS},
        "reproduction": {
            "n_rows": len(repro), "n_ours": int(np.isfinite(repro["ours"]).sum()),
            "n_same": int((repro["match"] == "same").sum()), "n_analogue": int((repro["match"] == "analogue").sum()),
            "n_not_run": int((repro["match"] == "not run").sum()),
        },
        "limitations": R.limitations(info, claims, repro, setup["n_seeds"]),
        "costs": _costs_context(costs),
        "provenance": {
            "config_sha": T.tex_escape(info.get("config_sha256", "unknown")[:16]),
            "cpu": T.tex_escape(info.get("cpu", "unknown")),
            "machine": T.tex_escape(info.get("machine", "unknown")),
            "commit": T.tex_escape(info.get("git_commit", "unknown")),
            "versions": _join([f"{T.tex_escape(k)}~{T.tex_escape(v)}" for k, v in sorted(versions.items())]),
            "device": T.tex_escape(info.get("device", "unknown")),
            "created": T.tex_escape(info.get("created", "unknown")),
            "inputs": [{"name": T.tex_escape(n), "sha": _sha(p)} for n, p in inputs if p.is_file()],
        },
    }
    env = jinja_env(template.parent)
    text = env.get_template(template.name).render(**ctx)
    out = outdir / "report.tex"
    atomic_write(out, lambda f: f.write(text), mode="w")
    log(f"report: rendered {out} ({len(written)} tables, {sum(f['present'] for f in figs.values())} figures)")
    return out


def _optional(tables_dir: Path, name: str) -> pd.DataFrame | None:
    """A table the report can do without (older runs lack costs.csv): None when absent."""
    try:
        return T.read_table(tables_dir, name)
    except T.MissingInputError:
        return None


def _costs_context(costs: pd.DataFrame | None) -> dict[str, Any]:
    if costs is None or not len(costs):
        return {"present": False, "total_h": "--", "n_jobs": 0, "gpu": False}
    return {"present": True, "total_h": T.fmt_num(costs["wall_s"].sum() / 3600, 2), "n_jobs": len(costs),
            "gpu": bool(costs["peak_gpu_mem_mib"].notna().any())}


# ------------------------------------------------------------------------------------------- build

def build(texdir: str | Path, out: str | Path, tex: str = "report.tex", timeout: int = 600) -> int:
    """Compile TEXDIR/TEX with latexmk and copy the PDF to OUT. Returns an exit code."""
    from .utils import atomic_write, log

    latexmk = shutil.which("latexmk")
    if latexmk is None:
        print(f"normrobust report build: error: TeX is missing (no latexmk on PATH); install it with: "
              f"{TEX_INSTALL}", file=sys.stderr)
        return 3
    texdir = Path(texdir)
    if not (texdir / tex).is_file():
        print(f"normrobust report build: error: missing {texdir / tex} (run `python -m normrobust report render`"
              " first)", file=sys.stderr)
        return 1
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", tex]
    try:
        proc = subprocess.run(cmd, cwd=texdir, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"normrobust report build: error: latexmk timed out after {timeout}s", file=sys.stderr)
        return 1
    logfile = texdir / (Path(tex).stem + ".log")
    log_text = logfile.read_text(errors="replace") if logfile.is_file() else ""
    if proc.returncode != 0:
        errs = [ln for ln in log_text.splitlines() if ln.startswith("!")][:5]
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        print(f"normrobust report build: error: latexmk failed (exit {proc.returncode}) in {texdir}; "
              f"see {logfile}\n" + ("\n".join(errs) if errs else tail), file=sys.stderr)
        return 1
    undefined = sorted(set(m.group(0) for m in UNDEFINED_RE.finditer(log_text)))
    if undefined:
        print(f"normrobust report build: error: undefined references in {logfile}: " + "; ".join(undefined),
              file=sys.stderr)
        return 1
    pdf = texdir / (Path(tex).stem + ".pdf")
    data = pdf.read_bytes()
    atomic_write(out, lambda f: f.write(data))
    log(f"report: built {out} ({len(data) // 1024} KiB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m normrobust report", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the report's .tex, tables and figures")
    r.add_argument("--tables", default="results/tables", help="directory of the aggregated tables")
    r.add_argument("--figures", default="results/figures", help="directory of the figure PDFs (NAME.pdf)")
    r.add_argument("--outdir", default="paper/generated", help="where report.tex, tables/, figures/ go")
    r.add_argument("--claims", default=None, help="claims CSV to use (default: evaluate from the tables)")
    r.add_argument("--template", default=None, help="jinja2 template (default: paper/report.tex.j2)")
    b = sub.add_parser("build", help="compile the rendered report with latexmk")
    b.add_argument("--texdir", default="paper/generated", help="directory holding report.tex")
    b.add_argument("--tex", default="report.tex", help="main .tex file in TEXDIR")
    b.add_argument("--out", default="results/report.pdf", help="where to copy the PDF")
    args = p.parse_args(argv)
    if args.cmd == "render":
        try:
            render(args.tables, args.figures, args.outdir, claims_csv=args.claims, template=args.template)
        except T.MissingInputError as e:
            print(f"normrobust report render: error: {e}", file=sys.stderr)
            return 1
        return 0
    return build(args.texdir, args.out, tex=args.tex)


if __name__ == "__main__":
    raise SystemExit(main())
