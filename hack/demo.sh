#!/usr/bin/env bash
# Local end-to-end demo on the embedded default stand-ins (see hack/demo.py). Set-up is idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
bash "$ROOT/hack/setup.sh"
exec "${FSO_VENV:-$FSO_CACHE/venv}/bin/python" "$ROOT/hack/demo.py"
