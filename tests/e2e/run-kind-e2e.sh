#!/usr/bin/env bash
# End-to-end test on a kind cluster: real pods, real Feast, real Redis.
#
#   bash tests/e2e/run-kind-e2e.sh            create cluster, run, delete cluster
#   KEEP=1 bash tests/e2e/run-kind-e2e.sh     keep the cluster (and print how to reach it)
#
# Steps: create a kind cluster -> build the operator and feast-runtime images (Dockerfile) ->
# `kind load docker-image` -> helm install charts/featurestore-operator with those images ->
# ConfigMap feature repo (tests/e2e/feature_repo) + examples/local.yaml -> wait for
# condition=Ready -> write the parquet data (Job) -> materialize (a Job from the CronJob) ->
# port-forward the feature server and check /get-online-features returns the newest values ->
# delete the FeatureStore and check that everything it created is gone.
#
# Needs: docker (daemon running), kind, kubectl, helm (3 or 4), curl, python3.
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
TIMEOUT="${TIMEOUT_SECONDS}s"
RELEASE=featurestore-operator
OPERATOR_NS=featurestore-system
NS=kubeflow-user-example-com   # the namespace of examples/local.yaml
STORE=demo                     # metadata.name in examples/local.yaml
PORT="${PORT:-16566}"
OWNER_LABEL=featurestore.kubeflow.org/name

say() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[e2e] FAILED: %s\n' "$*" >&2; exit 1; }
k() { kubectl --context "$CONTEXT" "$@"; }

# wait_job NAME: until the Job succeeded (return 0) or failed (exit), TIMEOUT at most
wait_job() {
  local name="$1" deadline=$((SECONDS + TIMEOUT_SECONDS)) ok failed
  while [ "$SECONDS" -lt "$deadline" ]; do
    ok="$(k get job "$name" -n "$NS" -o jsonpath='{.status.succeeded}' 2>/dev/null || true)"
    failed="$(k get job "$name" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Failed")].status}' 2>/dev/null || true)"
    [ "${ok:-0}" -ge 1 ] && return 0
    if [ "$failed" = True ]; then
      k logs -n "$NS" "job/$name" --all-containers --tail=50 || true
      die "job/$name failed"
    fi
    sleep 3
  done
  die "job/$name did not finish within $TIMEOUT"
}

# --- preflight -------------------------------------------------------------------------------
missing=()
for tool in docker kind kubectl helm curl python3; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "${#missing[@]}" -eq 0 ] || die "missing tools: ${missing[*]}"
docker info >/dev/null 2>&1 || die "docker daemon not reachable (docker info failed)"

created_cluster=0
pf_pid=""
cleanup() {
  local rc=$?
  [ -z "$pf_pid" ] || kill "$pf_pid" 2>/dev/null || true
  if [ "$rc" -ne 0 ] && kubectl config get-contexts "$CONTEXT" >/dev/null 2>&1; then
    say "diagnostics (exit code $rc)"
    k get fs -A -o wide || true
    k describe fs "$STORE" -n "$NS" || true
    k get all,pvc,cm,secret -n "$NS" -o wide || true
    k get events -n "$NS" --sort-by=.lastTimestamp | tail -40 || true
    k logs -n "$OPERATOR_NS" "deploy/$RELEASE" --tail=200 || true
    for pod in $(k get pods -n "$NS" -o name 2>/dev/null); do
      echo "--- $pod"; k logs -n "$NS" "$pod" --all-containers --tail=40 || true
    done
  fi
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

# --- operator --------------------------------------------------------------------------------
say "installing the chart"
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" "$ROOT/charts/featurestore-operator" \
  --namespace "$OPERATOR_NS" --create-namespace \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" --set image.pullPolicy=Never \
  --set images.feast="$FEAST_IMAGE" \
  --set istio=false \
  --set resyncSeconds=30 \
  --wait --timeout 5m
k rollout status -n "$OPERATOR_NS" "deploy/$RELEASE" --timeout="$TIMEOUT"
k wait --for=condition=Established crd/featurestores.featurestore.kubeflow.org --timeout=60s

# --- feature store ---------------------------------------------------------------------------
say "creating namespace $NS, the feature repo ConfigMap and examples/local.yaml"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
# examples/local.yaml references ConfigMap demo-feature-repo
k create configmap demo-feature-repo -n "$NS" \
  --from-file="$E2E/feature_repo/features.py" --from-file="$E2E/feature_repo/generate_data.py" \
  --dry-run=client -o yaml | k apply -f -
k apply -f "$ROOT/examples/local.yaml"

# --- data --------------------------------------------------------------------------------------
say "waiting for the store's data volume claim (status.endpoints.bucket)"
claim=""
for _ in $(seq 120); do
  claim="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.status.endpoints.bucket}' 2>/dev/null || true)"
  [ -n "$claim" ] && k get pvc "$claim" -n "$NS" >/dev/null 2>&1 && break
  sleep 2
done
[ -n "$claim" ] || die "status.endpoints.bucket (the data volume claim) stayed empty"

# Data first: the example's CronJob (*/15) may fire while we wait for Ready, and a run without
# data would fail. `feast apply` does not need the data (features.py declares its schema).
say "writing the parquet data to volume claim $claim"
k delete job demo-generate-data -n "$NS" --ignore-not-found --cascade=foreground --wait=true
k apply -n "$NS" -f - <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: demo-generate-data
  labels: {app.kubernetes.io/part-of: featurestore-e2e}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {sidecar.istio.io/inject: "false"}
    spec:
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: generate
          image: $FEAST_IMAGE
          imagePullPolicy: Never
          command: [python, /repo/generate_data.py, /data/driver_stats.parquet]
          env: [{name: PYTHONDONTWRITEBYTECODE, value: "1"}]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: repo, mountPath: /repo, readOnly: true}
            - {name: data, mountPath: /data}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - {name: repo, configMap: {name: demo-feature-repo}}
        - {name: data, persistentVolumeClaim: {claimName: $claim}}
        - {name: tmp, emptyDir: {}}
YAML
wait_job demo-generate-data
k logs -n "$NS" job/demo-generate-data

say "waiting for featurestore/$STORE to be Ready (images pull, Redis starts, feast apply runs)"
k wait --for=condition=Ready "fs/$STORE" -n "$NS" --timeout="$TIMEOUT"
k get fs "$STORE" -n "$NS" -o wide

# --- materialization -------------------------------------------------------------------------
say "materializing (a Job from cronjob/$STORE-materialize)"
k delete job demo-materialize-e2e -n "$NS" --ignore-not-found --cascade=foreground --wait=true
k create job demo-materialize-e2e --from="cronjob/$STORE-materialize" -n "$NS"
wait_job demo-materialize-e2e
k logs -n "$NS" job/demo-materialize-e2e --tail=20

# --- online features -------------------------------------------------------------------------
say "querying the feature server through a port-forward"
k port-forward -n "$NS" "svc/$STORE-feature-server" "$PORT:6566" >/dev/null 2>&1 &
pf_pid=$!
for _ in $(seq 60); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 1
done
response="$(curl -sf -X POST "http://127.0.0.1:$PORT/get-online-features" -H 'Content-Type: application/json' \
  -d '{"features": ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"],
       "entities": {"driver_id": [1001, 1003, 9999]}}')" || die "POST /get-online-features failed"
echo "$response"
# generate_data.py: the newest row of driver N has conv_rate (N-1000)/10 and avg_daily_trips N-1000
RESPONSE="$response" python3 - <<'PY'
import json, math, os, sys
doc = json.loads(os.environ["RESPONSE"])
names = doc["metadata"]["feature_names"]
values = {name: result["values"] for name, result in zip(names, doc["results"])}
conv, trips = values["conv_rate"], values["avg_daily_trips"]
problems = []
if not (math.isclose(conv[0], 0.1, rel_tol=1e-5) and math.isclose(conv[1], 0.3, rel_tol=1e-5)):
    problems.append(f"conv_rate {conv[:2]} != [0.1, 0.3] (the newest rows)")
if trips[:2] != [1, 3]:
    problems.append(f"avg_daily_trips {trips[:2]} != [1, 3]")
if conv[2] is not None:
    problems.append(f"unknown driver 9999 has conv_rate {conv[2]}")
if problems:
    sys.exit("online features wrong: " + "; ".join(problems))
print("online features OK: driver 1001 conv_rate", conv[0], "trips", trips[0])
PY
kill "$pf_pid" 2>/dev/null || true
pf_pid=""

# --- deletion --------------------------------------------------------------------------------
say "deleting featurestore/$STORE: everything it created must go"
# ours, not the operator's; its pod holds the claim (PVC protection) until it is gone
k delete job demo-generate-data -n "$NS" --cascade=foreground --wait=true
k delete fs "$STORE" -n "$NS" --wait=true --timeout="$TIMEOUT"
kinds=all,configmaps,secrets,serviceaccounts,persistentvolumeclaims,networkpolicies,poddisruptionbudgets,horizontalpodautoscalers
for _ in $(seq 120); do
  left="$(k get "$kinds" -n "$NS" -l "$OWNER_LABEL=$STORE" -o name 2>/dev/null || true)"
  [ -z "$left" ] && break
  sleep 2
done
[ -z "$left" ] || die "left behind after deleting featurestore/$STORE: $(echo "$left" | tr '\n' ' ')"
k get configmap demo-feature-repo -n "$NS" >/dev/null || die "the user's feature repo ConfigMap was deleted"

say "PASSED"
