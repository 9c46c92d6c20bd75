#!/usr/bin/env bash
# Sets up .venv with everything BioMatch needs, on a fresh Debian/Ubuntu machine or a dev box.
# Everything installs from wheels but afis's native NBIS library (seconds of gcc). The
# default face model (YuNet + SFace) needs no compiler. The optional dlib face model
# (plug-in face-dlib) is compiled, so BIOMATCH_DLIB says what to do with it:
#   auto (default)  install it only where its built wheel is already in $BIOMATCH_WHEELHOUSE
#   1               build it from source against OpenBLAS where needed (about 15 minutes on
#                   2 cores; about 3x faster embeddings than the dlib-bin wheel), install it
#   0               never
# Built wheels are kept in $BIOMATCH_WHEELHOUSE so only the first install pays.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DLIB_VERSION=20.0.1
AFIS_VERSION=1.2.7
WHEELHOUSE=${BIOMATCH_WHEELHOUSE:-$HOME/.cache/biomatch/wheels}
WITH_DLIB=${BIOMATCH_DLIB:-auto}

have_blas_headers() {
    [ -e /usr/include/x86_64-linux-gnu/cblas.h ] || [ -e /usr/include/cblas.h ] \
        || ls /usr/include/*/cblas.h >/dev/null 2>&1
}

apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        echo "install: run 'sudo apt-get install $*' first" >&2
        exit 1
    fi
}

build_dlib() {
    have_blas_headers || {
        echo "install: installing OpenBLAS and LAPACK headers for dlib's build"
        apt_install libopenblas-dev liblapack-dev
    }
    .venv/bin/python -m pip install -q cmake
    echo "install: building dlib $DLIB_VERSION against OpenBLAS (about 15 minutes on 2 cores)"
    .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELHOUSE" "dlib==$DLIB_VERSION"
}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools
mkdir -p "$WHEELHOUSE"

have_dlib_wheel() { ls "$WHEELHOUSE"/dlib-"$DLIB_VERSION"-*.whl >/dev/null 2>&1; }
EXTRAS=dev,scale
case "$WITH_DLIB" in
    1) have_dlib_wheel || build_dlib; EXTRAS=$EXTRAS,dlib ;;
    auto) have_dlib_wheel && EXTRAS=$EXTRAS,dlib ;;
    0) ;;
    *) echo "install: BIOMATCH_DLIB must be auto, 1 or 0, not '$WITH_DLIB'" >&2; exit 1 ;;
esac

# afis (fingerprints) is an sdist whose native NBIS library (MINDTCT) is built only by
# `make -C native install` in the unpacked sdist; a plain `pip install afis` silently falls
# back to slow pure-Python ports. Build it once into a wheel that carries the library.
if ! ls "$WHEELHOUSE"/afis-"$AFIS_VERSION"-*.whl >/dev/null 2>&1; then
    command -v make >/dev/null && command -v gcc >/dev/null || apt_install make gcc libc6-dev
    echo "install: building afis $AFIS_VERSION with its native NBIS library"
    build=$(mktemp -d)
    .venv/bin/python -m pip download -q --no-deps --no-binary :all: -d "$build" "afis==$AFIS_VERSION"
    tar -xzf "$build"/afis-"$AFIS_VERSION".tar.gz -C "$build"
    make -s -C "$build/afis-$AFIS_VERSION/native" install >/dev/null
    .venv/bin/python -m pip wheel -q --no-deps -w "$WHEELHOUSE" "$build/afis-$AFIS_VERSION"
    rm -rf "$build"
fi
.venv/bin/python -m pip install -q --find-links "$WHEELHOUSE" "afis==$AFIS_VERSION"
.venv/bin/python -m pip install -q --find-links "$WHEELHOUSE" -e ".[$EXTRAS]"
case "$EXTRAS" in *dlib*) echo "install: with the dlib face model (face-dlib)" ;; esac
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
