#!/usr/bin/env bash
# Benchmarks (bench/*.py) on a fresh machine: set-up (idempotent, cached), then one script.
#   bash hack/bench.sh reconcile [--n 50 200] [--only p1 p2 p5]
#   bash hack/bench.sh memory [--n 1000]
#   bash hack/bench.sh serving
#   bash hack/bench.sh flood [--n 40] [--before DIR]
# Each prints figures and ratios measured side by side in one run; results: docs/benchmarks.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
name="${1:?usage: hack/bench.sh reconcile|memory|serving [args]}"
shift
[ -f "$ROOT/bench/$name.py" ] || { echo "no benchmark bench/$name.py" >&2; exit 2; }
bash "$ROOT/hack/setup.sh" >&2
cd "$ROOT"
exec "${FSO_VENV:-$FSO_CACHE/venv}/bin/python" "bench/$name.py" "$@"
