#!/usr/bin/env bash
# The whole test suite on a fresh machine: set-up (idempotent, cached), then every tier.
#   bash hack/test.sh                 all tiers
#   bash hack/test.sh -m unit         one tier (unit | controlplane | datapath | e2e)
# The e2e tier (and a run of all tiers) first provisions the test node: hack/provision-node.sh.
# Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FSO_CACHE="${FSO_CACHE:-$HOME/.cache/featurestore-operator}"
VENV="${FSO_VENV:-$FSO_CACHE/venv}"
bash "$ROOT/hack/setup.sh"
# The e2e tier runs on a real node assembled here: provision it (cached; cold ~20 min, warm 1 s)
# unless the run selects only other tiers (-m EXPR without "e2e", or only paths outside tests/e2e).
marker=""
paths=""
prev=""
for arg in "$@"; do
  [ "$prev" = "-m" ] && marker="$arg"
  case "$arg" in
    -m?*) marker="${arg#-m}" ;;
    -*) ;;
    *) [ "$prev" = "-m" ] || [ "$prev" = "-k" ] || [ ! -e "${arg%%::*}" ] || paths="$paths $arg" ;;
  esac
  prev="$arg"
done
if { [ -z "$marker" ] || [[ "$marker" == *e2e* ]]; } && { [ -z "$paths" ] || [[ "$paths" == *e2e* ]]; }; then
  bash "$ROOT/hack/provision-node.sh"
fi
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
