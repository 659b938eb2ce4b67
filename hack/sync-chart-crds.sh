#!/usr/bin/env bash
# Copy the generated CRDs (crds/, from `featurestore-operator crd`) into the Helm chart's files/crds/,
# which templates/crds.yaml renders (so `helm upgrade` upgrades them; Helm never upgrades a chart's
# crds/). The chart's copy must equal the repo's crds/: tests/unit/test_chart_crds.py fails on drift.
#   bash hack/sync-chart-crds.sh           copy
#   bash hack/sync-chart-crds.sh --check   exit 1 (and show the diff) when they differ
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/crds"
DST="$ROOT/charts/featurestore-operator/files/crds"
if [ "${1:-}" = "--check" ]; then
  exec diff -ru "$SRC" "$DST"
fi
mkdir -p "$DST"
# remove CRDs that no longer exist in crds/, then copy the current ones byte for byte
for f in "$DST"/*; do
  [ -e "$f" ] || continue
  [ -e "$SRC/$(basename "$f")" ] || rm -v "$f"
done
cp -v "$SRC"/*.yaml "$DST"/
