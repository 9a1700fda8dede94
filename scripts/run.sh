#!/usr/bin/env bash
# One-command set-up and run. Creates .venv (if missing), installs harlab with what it needs, then:
#   scripts/run.sh reproduce   the tutorials' eight experiments (180 models) and their HTML report
#   scripts/run.sh test        the layer contracts (lint-imports) and the test suite (also installs Debian's
#                              chromium, for the report's browser test)
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

ensure_chromium() {
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "${HARLAB_CHROMIUM:-}" ] && return
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    if ! command -v apt-get >/dev/null; then
        echo "scripts/run.sh: the tests need a headless chromium; install it or set HARLAB_CHROMIUM" >&2
        exit 1
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

case "${1:-}" in
    reproduce)
        shift
        exec "$venv/bin/harlab" reproduce "$@"
        ;;
    test)
        shift
        ensure_chromium
        "$venv/bin/lint-imports" --no-cache >/dev/null || { "$venv/bin/lint-imports" --no-cache; exit 1; }
        exec "$py" -m pytest -q "$@"
        ;;
    *)
        echo "usage: scripts/run.sh reproduce [harlab reproduce options] | test [pytest options]" >&2
        exit 2
        ;;
esac
