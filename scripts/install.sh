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
    # compat/test_redis_exporter.py scrapes a node with the Prometheus exporter.
    command -v prometheus-redis-exporter >/dev/null 2>&1 || need_apt+=(prometheus-redis-exporter)
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
# The build tools go into the venv once (mypy brings mypyc; without it dynredis runs as
# pure Python), so neither step below builds a throwaway environment of its own.
mkdir -p build
.venv/bin/python -m pip install -q "setuptools>=68" "mypy>=1.10" >build/pip-install.log 2>&1 \
    || .venv/bin/python -m pip install -q "setuptools>=68" >>build/pip-install.log 2>&1 || true
# The package itself is installed editable and uncompiled here (DYNREDIS_PURE=1);
# build_native below compiles it in place.
extras=""
[[ $want_test == 1 ]] && extras="[test]"
if ! DYNREDIS_PURE=1 .venv/bin/python -m pip install -q --no-build-isolation -e ".${extras}" \
        >>build/pip-install.log 2>&1; then
    tail -40 build/pip-install.log >&2
    echo "install.sh: pip install failed (full output: build/pip-install.log)" >&2
    exit 1
fi

# Lua scripting runs on lupa's Lua 5.1 (a binary wheel): say so plainly if it is missing.
if ! .venv/bin/python -c 'import lupa.lua51' >/dev/null 2>&1; then
    echo "install.sh: lupa (with its Lua 5.1 runtime) did not install: EVAL and FUNCTION" \
         "need it (see build/pip-install.log)" >&2
    exit 1
fi

# Compile the request path with mypyc (see dynredis/native.py and setup.py), unless the
# compiled modules are already current or DYNREDIS_PURE=1. Where it cannot compile,
# dynredis runs the very same code as pure Python, only slower.
build_native() {
    if [[ "${DYNREDIS_PURE:-}" == 1 ]]; then
        echo "install.sh: DYNREDIS_PURE=1: not compiling, dynredis runs as pure Python"
        return
    fi
    if .venv/bin/python -c 'import sys, dynredis.native as n; sys.exit(n.why_pure() is not None)'; then
        return
    fi
    echo "install.sh: compiling the request path with mypyc (about a minute)"
    if ! .venv/bin/python setup.py build_ext --inplace >build/native-build.log 2>&1; then
        echo "install.sh: compiling failed (see build/native-build.log);" \
             "dynredis runs as pure Python, slower" >&2
    fi
}
build_native

if [[ $want_test == 1 ]]; then
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
fi
echo "install.sh: dynredis installed in .venv ($(.venv/bin/python -c 'import dynredis.native as n; print(n.state)'))"
