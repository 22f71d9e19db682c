#!/usr/bin/env bash
# The GPU check in one call. On a machine with a CUDA device (about 8 minutes on one H200):
#   1. the CUDA-only tests (pytest -m cuda: the fast path, attacks and evaluation on the device);
#   2. the full benchmark (python -m normrobust.bench: ResNet-18 at 3x32x32, batch 512, five norms; training
#      against the usual DataLoader loop, PGD-10 against torchattacks, LIGS);
#   3. a short pipeline (ResNet-18 on generated 32x32 data, six cells) with 1 and with 3 GPU slots per device
#      (python -m normrobust.bench_pipeline).
# Results go to benchmarks/results/ (and the tables in benchmarks/PERFORMANCE.md and README.md).
# Without CUDA it says so and runs the CPU-sized version of each step (bench --quick, the small-CNN pipeline).
#
# Python: $PYTHON, else .venv/bin/python, else python3; the package is used from src/ (PYTHONPATH), so no install.
# What that Python lacks of snakemake, pytest, torchattacks, jsonschema, pandas, matplotlib, jinja2, pyyaml is
# installed from $NORMROBUST_WHEELS (a directory of wheels: pip --no-index) when set: carry it to a machine without
# the internet, e.g. `pip download -d wheels snakemake pytest torchattacks` on a machine with it.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-}
[ -n "$PY" ] || { [ -x .venv/bin/python ] && PY=.venv/bin/python; } || PY=python3
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-}
status=0

say() { printf '[gpu-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=$("$PY" - <<'PYEOF'
import importlib.util
mods = {"snakemake": "snakemake", "pytest": "pytest", "torchattacks": "torchattacks", "jsonschema": "jsonschema",
        "pandas": "pandas", "matplotlib": "matplotlib", "jinja2": "jinja2", "yaml": "pyyaml"}
print(" ".join(pkg for mod, pkg in mods.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
    if [ -n "${NORMROBUST_WHEELS:-}" ]; then
        say "installing from $NORMROBUST_WHEELS: $missing"
        "$PY" -m pip install -q --no-index --find-links "$NORMROBUST_WHEELS" $missing || status=1
    else
        say "missing Python packages: $missing (set NORMROBUST_WHEELS to a directory of their wheels)"
    fi
fi

if "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    mode=gpu
    STEP_TIMEOUT=${STEP_TIMEOUT:-200}  # the three steps take about 8 minutes on one H200
    say "CUDA device: $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))'); the full check"
else
    mode=cpu
    STEP_TIMEOUT=${STEP_TIMEOUT:-900}  # a 2-core machine: minutes per step
    say "no CUDA device: running the CPU-sized check (bench --quick, the small-CNN pipeline); the GPU half is not measured"
fi

step() {  # name, command...: run with a time limit, report, keep going
    local name=$1; shift
    say "$name ..."
    local t0=$SECONDS
    if timeout "$STEP_TIMEOUT" "$@"; then
        say "$name: done in $((SECONDS - t0))s"
    else
        say "$name: FAILED (exit $?) after $((SECONDS - t0))s"
        status=1
    fi
}

if [ "$mode" = gpu ]; then
    step "CUDA-only tests" "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
    step "benchmark (full)" "$PY" -m normrobust.bench
    step "pipeline, 1 and 3 slots" "$PY" -m normrobust.bench_pipeline
else
    step "CUDA-only tests (they skip here)" "$PY" -m pytest -q -m cuda -p no:cacheprovider tests
    step "benchmark (--quick)" "$PY" -m normrobust.bench --quick
    step "pipeline, 1 and 3 slots (CPU)" "$PY" -m normrobust.bench_pipeline --cpu
fi
say "results: $(ls -t benchmarks/results/*.json 2>/dev/null | head -3 | tr '\n' ' ')"
exit $status
