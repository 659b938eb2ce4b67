#!/usr/bin/env bash
# The e2e scenario, against whatever cluster kubectl/helm reach (the current context, or
# KUBE_CONTEXT): used by the kind run (tests/e2e/run-kind-e2e.sh) and by the node run on this
# machine (tests/e2e/test_node.py). The images must already be on the node(s).
#
#   helm install the chart with the local images (pullPolicy Never) -> operator pod Ready
#   kubectl apply -f examples/feature-repos/demo.yaml -f examples/local.yaml (as the README says)
#   a Job writes the parquet data on the store's claim -> kubectl wait --for=condition=Ready fs/demo
#   apply Job, feature server, registry server and Redis run as pods
#   materialize: a Job from the CronJob's jobTemplate
#   a client pod, mounting the client config as the PodDefault injects it, reads online features
#     through the feature server Service's DNS name (Feast SDK) and over plain HTTP
#   registry.cacheTtlSeconds changed -> the feature server pods roll, the store returns to Ready
#   the FeatureStore deleted -> every pod, claim and object it created is gone
#
# Needs kubectl, helm, python3. Knobs: KUBE_CONTEXT, OPERATOR_IMAGE=featurestore-operator:e2e,
# FEAST_IMAGE=featurestore-feast:e2e, TIMEOUT_SECONDS=600, HELM_ARGS (extra `helm install` args).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-featurestore-operator:e2e}"
FEAST_IMAGE="${FEAST_IMAGE:-featurestore-feast:e2e}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"
TIMEOUT="${TIMEOUT_SECONDS}s"
RELEASE=featurestore-operator
OPERATOR_NS=featurestore-system
NS=kubeflow-user-example-com   # the namespace of examples/local.yaml
STORE=demo                     # metadata.name in examples/local.yaml
OWNER_LABEL=featurestore.kubeflow.org/name
COMPONENT_LABEL=app.kubernetes.io/component

say() { printf '\n[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[e2e] FAILED: %s\n' "$*" >&2; exit 1; }
k() { kubectl ${KUBE_CONTEXT:+--context "$KUBE_CONTEXT"} "$@"; }

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

# wait_pod NAME: until the Pod succeeded (return 0) or failed (exit)
wait_pod() {
  local name="$1" deadline=$((SECONDS + TIMEOUT_SECONDS)) phase
  while [ "$SECONDS" -lt "$deadline" ]; do
    phase="$(k get pod "$name" -n "$NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)"
    case "$phase" in
      Succeeded) return 0 ;;
      Failed) k logs -n "$NS" "$name" --tail=80 || true; die "pod/$name failed" ;;
    esac
    sleep 3
  done
  k describe pod "$name" -n "$NS" || true
  die "pod/$name did not finish within $TIMEOUT"
}

# running COMPONENT: names of the store's Running+Ready pods of that component
running() {
  k get pods -n "$NS" -l "$OWNER_LABEL=$STORE,$COMPONENT_LABEL=$1" \
    -o jsonpath='{range .items[?(@.status.phase=="Running")]}{.metadata.name}{" "}{.status.containerStatuses[*].ready}{"\n"}{end}' |
    awk '$2 == "true" {print $1}'
}

diagnostics() {
  say "diagnostics"
  k get nodes -o wide || true
  k get featurestores.featurestore.kubeflow.org -A -o wide || true
  k describe featurestore "$STORE" -n "$NS" || true
  k get all,pvc,cm,secret -n "$NS" -o wide || true
  k get events -n "$NS" --sort-by=.lastTimestamp | tail -40 || true
  k get pods -n "$OPERATOR_NS" -o wide || true
  k logs -n "$OPERATOR_NS" "deploy/$RELEASE" --tail=200 || true
  for pod in $(k get pods -n "$NS" -o name 2>/dev/null); do
    echo "--- $pod"; k logs -n "$NS" "$pod" --all-containers --tail=40 || true
  done
}
trap 'rc=$?; [ "$rc" -eq 0 ] || diagnostics; exit "$rc"' EXIT

# --- operator --------------------------------------------------------------------------------
say "installing the chart (images $OPERATOR_IMAGE, $FEAST_IMAGE; pulls disabled)"
# shellcheck disable=SC2086
helm ${KUBE_CONTEXT:+--kube-context "$KUBE_CONTEXT"} upgrade --install "$RELEASE" "$ROOT/charts/featurestore-operator" \
  --namespace "$OPERATOR_NS" --create-namespace \
  --set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}" --set image.pullPolicy=Never \
  --set images.feast="$FEAST_IMAGE" \
  --set istio=false \
  --set resyncSeconds=30 \
  ${HELM_ARGS:-} \
  --wait --timeout 5m
k rollout status -n "$OPERATOR_NS" "deploy/$RELEASE" --timeout="$TIMEOUT"
k wait --for=condition=Ready pod -n "$OPERATOR_NS" -l app.kubernetes.io/instance="$RELEASE" --timeout="$TIMEOUT"
k wait --for=condition=Established crd/featurestores.featurestore.kubeflow.org --timeout=60s

# --- feature store ---------------------------------------------------------------------------
say "creating namespace $NS, then: kubectl apply -f examples/feature-repos/demo.yaml -f examples/local.yaml"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k apply -f "$ROOT/examples/feature-repos/demo.yaml" -f "$ROOT/examples/local.yaml"

say "waiting for the store's data volume claim (status.endpoints.bucket) to be bound"
claim=""
for _ in $(seq 120); do
  claim="$(k get featurestore "$STORE" -n "$NS" -o jsonpath='{.status.endpoints.bucket}' 2>/dev/null || true)"
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

say "kubectl wait --for=condition=Ready fs/$STORE"
k wait --for=condition=Ready "fs/$STORE" -n "$NS" --timeout="$TIMEOUT"
k get fs "$STORE" -n "$NS" -o wide

say "the store's workloads run as pods"
apply_job="$(k get jobs -n "$NS" -l "$OWNER_LABEL=$STORE" -o name | grep -- "-apply-" | head -n1)"
[ -n "$apply_job" ] || die "no apply Job"
[ "$(k get -n "$NS" "$apply_job" -o jsonpath='{.status.succeeded}')" -ge 1 ] || die "$apply_job did not succeed"
for component in feature-server registry-server online-store; do
  pods="$(running "$component")"
  [ -n "$pods" ] || die "no Running+Ready pod of component $component"
  echo "$component: $pods"
done

# --- materialization -------------------------------------------------------------------------
# A Job from the CronJob's template (what `kubectl create job --from=cronjob/...` does; that
# command does not support batch/v1beta1 CronJobs of Kubernetes < 1.21 in current kubectl).
say "materializing (a Job from cronjob/$STORE-materialize)"
k delete job demo-materialize-e2e -n "$NS" --ignore-not-found --cascade=foreground --wait=true
k get cronjob "$STORE-materialize" -n "$NS" -o json | python3 -c '
import json, sys
cron = json.load(sys.stdin)
tpl = cron["spec"]["jobTemplate"]
print(json.dumps({"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": "demo-materialize-e2e", "labels": tpl.get("metadata", {}).get("labels", {}),
                               "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                               "ownerReferences": [{"apiVersion": cron["apiVersion"], "kind": "CronJob",
                                                    "name": cron["metadata"]["name"], "uid": cron["metadata"]["uid"],
                                                    "controller": True}]},
                  "spec": tpl["spec"]}))' | k create -n "$NS" -f -
wait_job demo-materialize-e2e
k logs -n "$NS" job/demo-materialize-e2e --tail=20

# --- online features from a client pod -------------------------------------------------------
client_pod() {  # client_pod NAME: a notebook-like pod with the client config mounted as the PodDefault does
  k delete pod "$1" -n "$NS" --ignore-not-found --wait=true
  k apply -n "$NS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {access-feast-$STORE: "true", app.kubernetes.io/part-of: featurestore-e2e}
  annotations: {sidecar.istio.io/inject: "false"}
spec:
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: client
      image: $FEAST_IMAGE
      imagePullPolicy: Never
      command: [python, -c]
      args:
        - |
          import json, math, os, urllib.request
          from feast import FeatureStore
          features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
          # generate_data.py: the newest row of driver N has conv_rate (N-1000)/10, avg_daily_trips N-1000
          store = FeatureStore()  # FEAST_FS_YAML_FILE_PATH: the client config (remote online store)
          got = store.get_online_features(features=features, entity_rows=[{"driver_id": d} for d in (1001, 1003, 9999)]).to_dict()
          assert math.isclose(got["conv_rate"][0], 0.1, rel_tol=1e-5) and math.isclose(got["conv_rate"][1], 0.3, rel_tol=1e-5), got
          assert got["avg_daily_trips"][:2] == [1, 3] and got["conv_rate"][2] is None, got
          url = "http://$STORE-feature-server.$NS.svc.cluster.local:6566/get-online-features"
          body = json.dumps({"features": features, "entities": {"driver_id": [1001, 1003]}}).encode()
          req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
          doc = json.load(urllib.request.urlopen(req, timeout=30))
          values = dict(zip(doc["metadata"]["feature_names"], (r["values"] for r in doc["results"])))
          assert values["avg_daily_trips"] == [1, 3], values
          print("ONLINE-FEATURES-OK", got["conv_rate"], values["avg_daily_trips"])
      env:
        - {name: FEAST_FS_YAML_FILE_PATH, value: /etc/feast/$STORE/feature_store.yaml}
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: {drop: [ALL]}
      volumeMounts:
        - {name: feast-$STORE, mountPath: /etc/feast/$STORE, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - {name: feast-$STORE, configMap: {name: $STORE-feast-client}}
    - {name: tmp, emptyDir: {}}
YAML
  wait_pod "$1"
  local out
  out="$(k logs -n "$NS" "$1")"
  echo "$out"
  grep -q ONLINE-FEATURES-OK <<<"$out" || die "$1 did not read the expected features"
}
say "a client pod reads online features through $STORE-feature-server.$NS.svc.cluster.local"
client_pod demo-client

# --- a config change rolls the feature server ------------------------------------------------
say "changing registry.cacheTtlSeconds: the feature server pods roll, the store returns to Ready"
before="$(running feature-server | sort | tr '\n' ' ')"
generation="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.metadata.generation}')"
k patch fs "$STORE" -n "$NS" --type merge -p '{"spec": {"registry": {"cacheTtlSeconds": 17}}}'
k get configmap "$STORE-feast-config" -n "$NS" -o jsonpath='{.data}' >/dev/null
deadline=$((SECONDS + TIMEOUT_SECONDS))
while :; do
  observed="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.status.observedGeneration}')"
  after="$(running feature-server | sort | tr '\n' ' ')"
  if [ "${observed:-0}" -gt "$generation" ] && [ -n "$after" ] && ! echo "$after" | grep -qwF -- "${before%% *}"; then
    break
  fi
  [ "$SECONDS" -lt "$deadline" ] || die "feature server did not roll (before: $before, now: $after, observedGeneration $observed)"
  sleep 3
done
k get configmap "$STORE-feast-config" -n "$NS" -o jsonpath='{.data.feature_store\.yaml}' | grep -q "cache_ttl_seconds: 17" ||
  die "feature_store.yaml does not carry cache_ttl_seconds: 17"
k rollout status -n "$NS" "deploy/$STORE-feature-server" --timeout="$TIMEOUT"
k wait --for=condition=Ready "fs/$STORE" -n "$NS" --timeout="$TIMEOUT"
echo "feature server pods: before [$before] after [$after]"
client_pod demo-client-after-roll

# --- deletion --------------------------------------------------------------------------------
say "deleting fs/$STORE: every pod, claim and object it created must go"
# ours, not the operator's; its pod holds the claim (PVC protection) until it is gone
k delete job demo-generate-data -n "$NS" --cascade=foreground --wait=true
k delete pod demo-client demo-client-after-roll -n "$NS" --wait=true
k delete fs "$STORE" -n "$NS" --wait=true --timeout="$TIMEOUT"
kinds=all,configmaps,secrets,serviceaccounts,persistentvolumeclaims,networkpolicies,poddisruptionbudgets,roles,rolebindings
left=""
for _ in $(seq 120); do
  left="$(k get "$kinds" -n "$NS" -l "$OWNER_LABEL=$STORE" -o name 2>/dev/null || true)"
  left="$left$(k get pods,pvc -n "$NS" -o name 2>/dev/null || true)"
  [ -z "$left" ] && break
  sleep 2
done
[ -z "$left" ] || die "left behind after deleting fs/$STORE: $(echo "$left" | tr '\n' ' ')"
k get configmap demo-feature-repo -n "$NS" >/dev/null || die "the user's feature repo ConfigMap was deleted"

say "PASSED"
