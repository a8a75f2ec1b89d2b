#!/usr/bin/env bash
# Install dynredis into ./.venv, plus the Redis tools it is used with.
#   scripts/install.sh          runtime + redis-cli
#   scripts/install.sh --test   also test dependencies, redis-server, redis-benchmark and
#                               ioredis (npm, into compat/node_modules)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

need_apt=()
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
if [[ $want_test == 1 ]]; then
    command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
    command -v redis-benchmark >/dev/null 2>&1 || need_apt+=(redis-tools)
fi

apt_install() {
    local sudo=""
    [[ $(id -u) != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    if command -v apt-get >/dev/null 2>&1 && { [[ $(id -u) == 0 ]] || [[ -n $sudo ]]; }; then
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
    else
        echo "install.sh: please install these packages yourself: $*" >&2
        return 1
    fi
}

if [[ ${#need_apt[@]} -gt 0 ]]; then
    echo "install.sh: installing ${need_apt[*]}"
    apt_install "${need_apt[@]}"
fi
# Debian's redis-server package starts a server on 6379 as a service; the tests start
# their own servers on free ports, so that one is left alone.

PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install python3-venv
        "$PY" -m venv .venv
    fi
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [[ $want_test == 1 ]]; then
    .venv/bin/python -m pip install -q -e ".[test]"
    # ioredis for the Node.js client tests in compat/ (they fail without it).
    if [[ ! -d compat/node_modules/ioredis ]]; then
        if ! command -v npm >/dev/null 2>&1; then
            apt_install nodejs npm || true
        fi
        if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
            echo "install.sh: node and npm are needed for the ioredis tests (compat/)" >&2
            exit 1
        fi
        if ! (cd compat && npm install --no-audit --no-fund --silent); then
            echo "install.sh: npm install in compat/ failed: ioredis is missing" >&2
            exit 1
        fi
    fi
else
    .venv/bin/python -m pip install -q -e .
fi
echo "install.sh: dynredis installed in .venv"
