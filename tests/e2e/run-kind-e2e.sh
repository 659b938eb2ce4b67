#!/usr/bin/env bash
# End-to-end test on a kind cluster: real pods, real Feast, real Redis.
#
#   bash tests/e2e/run-kind-e2e.sh            create cluster, run, delete cluster
#   KEEP=1 bash tests/e2e/run-kind-e2e.sh     keep the cluster (and print how to reach it)
#
# Steps: create a kind cluster -> build the operator and feast-runtime images (Dockerfile) ->
# `kind load docker-image` -> the scenario every e2e run shares (tests/e2e/scenario.sh: helm
# install with those images, the local example + its feature repo ConfigMap, Ready, pods,
# materialization, a client pod reading online features, a config roll-out, deletion).
# The same scenario runs without Docker on a node assembled on the host: tests/e2e/test_node.py.
#
# Needs: docker (daemon running), kind, kubectl, helm (3 or 4), python3.
# Knobs (environment):
#   CLUSTER=fso-e2e            kind cluster name (must not exist, unless REUSE_CLUSTER=1)
#   REUSE_CLUSTER=1            use an existing cluster of that name (never deleted by the script)
#   KEEP=1                     keep the cluster at the end (also after a failure)
#   KIND_NODE_IMAGE=...        node image, e.g. kindest/node:v1.21.14 for an old Kubernetes
#   OPERATOR_IMAGE=featurestore-operator:e2e  FEAST_IMAGE=featurestore-feast:e2e
#   SKIP_BUILD=1               use already built images of those names
#   TIMEOUT_SECONDS=600        timeout of each wait
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
E2E="$ROOT/tests/e2e"
CLUSTER="${CLUSTER:-fso-e2e}"
CONTEXT="kind-$CLUSTER"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-featurestore-operator:e2e}"
FEAST_IMAGE="${FEAST_IMAGE:-featurestore-feast:e2e}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"

say() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[e2e] FAILED: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

# --- preflight -------------------------------------------------------------------------------
missing=()
for tool in docker kind kubectl helm python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] || die "missing tools: ${missing[*]}"
docker info >/dev/null 2>&1 || die "docker daemon not reachable (docker info failed)"

created_cluster=0
cleanup() {
  local rc=$?
  if [ "$created_cluster" = 1 ] && [ "${KEEP:-0}" != 1 ]; then
    say "deleting kind cluster $CLUSTER"
    kind delete cluster --name "$CLUSTER" || true
  elif [ "$created_cluster" = 1 ]; then
    say "KEEP=1: cluster kept; kubectl --context $CONTEXT get fs -A; kind delete cluster --name $CLUSTER"
  fi
  exit "$rc"
}
trap cleanup EXIT

# --- cluster ---------------------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  [ "${REUSE_CLUSTER:-0}" = 1 ] || die "kind cluster $CLUSTER exists: delete it, or set REUSE_CLUSTER=1 (or CLUSTER=another-name)"
  say "reusing kind cluster $CLUSTER"
else
  say "creating kind cluster $CLUSTER"
  created_cluster=1
  kind create cluster --name "$CLUSTER" --wait 180s ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"}
fi
k version

# --- images ----------------------------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building $OPERATOR_IMAGE (operator) and $FEAST_IMAGE (feast-runtime)"
  DOCKER_BUILDKIT=1 docker build -t "$OPERATOR_IMAGE" "$ROOT"
  DOCKER_BUILDKIT=1 docker build --target feast-runtime -t "$FEAST_IMAGE" "$ROOT"
fi
# the operator image must not contain Feast
if docker run --rm --entrypoint python "$OPERATOR_IMAGE" -c "import feast" >/dev/null 2>&1; then
  die "$OPERATOR_IMAGE contains feast: the operator image must stay lean"
fi
docker run --rm --entrypoint id "$OPERATOR_IMAGE" -u | grep -qx 10001 || die "$OPERATOR_IMAGE does not run as uid 10001"
say "loading images into kind"
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$FEAST_IMAGE"

# --- the shared scenario (diagnostics on failure are its own) -------------------------------
KUBE_CONTEXT="$CONTEXT" OPERATOR_IMAGE="$OPERATOR_IMAGE" FEAST_IMAGE="$FEAST_IMAGE" TIMEOUT_SECONDS="$TIMEOUT_SECONDS" \
  bash "$E2E/scenario.sh"
