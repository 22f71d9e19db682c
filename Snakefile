# normrobust: do normalisation layers make networks lean on non-robust features?
# Stages (one file each under workflow/rules/): data → train → evaluate → transfer → figures → paper.

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

sys.path.insert(0, str(Path(workflow.basedir) / "src"))


configfile: Path(workflow.basedir) / "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/transfer.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/paper.smk"


# Run by the main Snakemake process, never submitted to a cluster: targets, plotting, tables
# and LaTeX (fast, CPU, and TeX is often only on the login node), and prepare_data (CPU only,
# and a dataset with `download: true` needs the internet, which login nodes usually have).
localrules:
    all,
    figures,
    paper,
    prepare_data,
    claims,
    figure,
    render_report,
    build_report,


rule all:
    input:
        L.report_pdf,


rule figures:
    input:
        [L.figure(f) for f in PLAN.figures()],


rule paper:
    input:
        L.report_pdf,
