#!/usr/bin/env bash
# One-command set-up and run. Creates .venv (if missing), installs harlab with what it needs, then:
#   scripts/run.sh reproduce   the tutorial's 1D CNN: 10 seeded runs, mean ± std test accuracy
#   scripts/run.sh test        the test suite
# HARLAB_TORCH_VERSION pins torch (default 2.13.0, the CPU build this project's machines carry).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
py="$venv/bin/python"
stamp="$venv/.harlab-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet "torch==${HARLAB_TORCH_VERSION:-2.13.0}"
    "$py" -m pip install --quiet -e ".[test]"
    touch "$stamp"
fi

case "${1:-}" in
    reproduce)
        shift
        exec "$venv/bin/harlab" train --model cnn --repeats 10 "$@"
        ;;
    test)
        shift
        exec "$py" -m pytest -q "$@"
        ;;
    *)
        echo "usage: scripts/run.sh reproduce [harlab train options] | test [pytest options]" >&2
        exit 2
        ;;
esac
