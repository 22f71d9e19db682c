#!/usr/bin/env bash
# Idempotent setup for normrobust: a virtual environment in .venv with the package and
# everything its tests need (versions pinned by constraints.txt), and a TeX engine
# (latexmk + TeX Live) for the report. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

TEX_PKGS="latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra poppler-utils"
PYTHON=${PYTHON:-python3}

can_apt() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }
apt_updated=""
apt_install() {
    [ -n "$apt_updated" ] || { apt-get update -q >/dev/null; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

# 1. virtual environment (Debian needs python3-venv for ensurepip)
if [ ! -x .venv/bin/python ]; then
    if ! "$PYTHON" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        if can_apt; then
            echo "bootstrap: installing python3-venv with apt"
            apt_install python3-venv
            "$PYTHON" -m venv .venv
        else
            echo "bootstrap: '$PYTHON -m venv' failed; install it with: sudo apt-get install python3-venv" >&2
            exit 1
        fi
    fi
fi

# 2. Python packages, reinstalled only when pyproject.toml or constraints.txt change
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "bootstrap: installing Python packages into .venv (pinned by constraints.txt)"
    .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]" 2>&1 \
        | grep -v "^WARNING: Location" || true
    .venv/bin/python -c "import normrobust, torch, torchvision, snakemake" \
        || { echo "bootstrap: the Python install failed (see above)" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi

# 3. TeX for the report
if ! command -v latexmk >/dev/null || ! command -v pdftotext >/dev/null || ! kpsewhich booktabs.sty >/dev/null 2>&1; then
    if can_apt; then
        echo "bootstrap: installing TeX Live and latexmk with apt (a minute or two)"
        apt_install $TEX_PKGS
    else
        echo "bootstrap: TeX is missing, the report cannot be compiled. Install it with:" >&2
        echo "    sudo apt-get install $TEX_PKGS" >&2
    fi
fi
echo "bootstrap: ready (.venv: $(.venv/bin/python --version), torch $(.venv/bin/python -c 'import torch; print(torch.__version__)'))"
