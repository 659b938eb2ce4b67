#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent, cached), then every tier.
#   bash hack/test.sh                 all tiers
#   bash hack/test.sh -m unit         one tier (unit | controlplane | datapath | e2e)
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
VENV="${FSO_VENV:-$FSO_CACHE/venv}"
bash "$ROOT/hack/setup.sh"
cd "$ROOT"
# binaries were provisioned above: a missing control plane is a failure, not a skip
export FSO_REQUIRE_CONTROLPLANE=1
set +e
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "[test] pytest collected no tests: failing" >&2
  exit 1
fi
exit "$rc"
