#!/usr/bin/env bash
# A fresh clone's first `make run`, set-up included, until /v1/health answers: what a new
# machine meets (empty pip, npm and wheel caches; the machine's own package configuration).
#
#     benchmarks/first_run.sh [REPO (default: this checkout's origin or itself)] [WORK_DIR]
#
# Prints the seconds and writes benchmarks/results/first_run.json. Uses port 8000 (make
# run's): nothing else may listen there. Stops only what it started.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
repo=${1:-$here}
work=${2:-$(mktemp -d)}
rm -rf "$work/biomatch" && mkdir -p "$work"
git clone -q "$repo" "$work/biomatch" && cd "$work/biomatch" || exit 1
export PIP_CACHE_DIR=$work/pip-cache npm_config_cache=$work/npm-cache BIOMATCH_WHEELHOUSE=$work/wheels
load_before=$(cut -d' ' -f1 /proc/loadavg)
start=$(date +%s.%N)
make run > "$work/run.log" 2>&1 &
make_pid=$!
until curl -sf http://127.0.0.1:8000/v1/health >/dev/null 2>&1; do
    sleep 1
    kill -0 $make_pid 2>/dev/null || { echo "make run ended early:"; tail -20 "$work/run.log"; exit 1; }
done
seconds=$(echo "$(date +%s.%N) - $start" | bc)
load_after=$(cut -d' ' -f1 /proc/loadavg)
descendants() { for child in $(pgrep -P "$1"); do descendants "$child"; echo "$child"; done; }
kill $(descendants $make_pid) $make_pid 2>/dev/null
wait $make_pid 2>/dev/null
echo "first make run answered after $seconds s (load $load_before -> $load_after)"
mkdir -p "$here/benchmarks/results"
printf '{"benchmark": "fresh clone, first make run until /v1/health", "seconds": %s, "load_avg_1m_before": %s, "load_avg_1m_after": %s}\n' \
    "$seconds" "$load_before" "$load_after" > "$here/benchmarks/results/first_run.json"
rm -rf "$work"
