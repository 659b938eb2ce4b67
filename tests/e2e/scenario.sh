#!/usr/bin/env bash
# The e2e scenario, against whatever cluster kubectl/helm reach (the current context, or
# KUBE_CONTEXT): used by the kind run (tests/e2e/run-kind-e2e.sh) and by the node run on this
# machine (tests/e2e/test_node.py: a release from a local registry, CHART_REF etc. in lib.sh).
#
#   helm install the chart: the local images already on the node(s) (pullPolicy Never), or with
#     CHART_REF a release's chart with its own images, pulled by the node -> operator pod Ready
#   kubectl apply -f examples/feature-repos/demo.yaml -f examples/local.yaml (as the README says)
#   a Job writes the parquet data on the store's claim -> kubectl wait --for=condition=Ready fs/demo
#   apply Job, feature server, registry server and Redis run as pods
#   materialize: a Job from the CronJob's jobTemplate
#   a client pod, mounting the client config as the PodDefault injects it, reads online features
#     through the feature server Service's DNS name (Feast SDK) and over plain HTTP
#   registry.cacheTtlSeconds changed -> the feature server pods roll, the store returns to Ready
#   the FeatureStore deleted -> every pod, claim and object it created is gone
#
# Needs kubectl, helm, python3. Knobs: see tests/e2e/lib.sh (the steps both scenarios share).
set -euo pipefail

NS=kubeflow-user-example-com   # the namespace of examples/local.yaml
STORE=demo                     # metadata.name in examples/local.yaml
# shellcheck disable=SC2034 # read by lib.sh
STORE_REPO=demo-feature-repo   # its spec.featureRepo.configMap.name
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_chart

# --- feature store ---------------------------------------------------------------------------
say "creating namespace $NS, then: kubectl apply -f examples/feature-repos/demo.yaml -f examples/local.yaml"
k create namespace "$NS" --dry-run=client -o yaml | k apply -f -
k apply -f "$ROOT/examples/feature-repos/demo.yaml" -f "$ROOT/examples/local.yaml"

say "waiting for the store's data volume claim (status.endpoints.bucket)"
claim="$(store_bucket claim)"

# Data first: the example's CronJob (*/15) may fire while we wait for Ready, and a run without
# data would fail. `feast apply` does not need the data (features.py declares its schema).
say "writing the parquet data to volume claim $claim"
run_job demo-generate-data "" "{name: data, persistentVolumeClaim: {claimName: $claim}}" "{name: data, mountPath: /data}" \
  python /repo/generate_data.py /data/driver_stats.parquet

wait_store_ready feature-server registry-server online-store

# --- materialization, in two parallel shares --------------------------------------------------
say "spec.materialization.parallelism 2: the run's pod holds a share per container (1.20: no Indexed Jobs)"
k patch fs "$STORE" -n "$NS" --type merge -p '{"spec": {"materialization": {"parallelism": 2}}}'
deadline=$((SECONDS + TIMEOUT_SECONDS))
until [ "$(k get cronjob "$STORE-materialize" -n "$NS" \
  -o jsonpath='{.spec.jobTemplate.spec.template.spec.containers[*].name}')" = "materialize-0 materialize-1" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "the CronJob did not get a container per share"
  sleep 2
done
materialize demo-materialize-e2e
# (grep >/dev/null, not grep -q: under pipefail, grep -q quitting at its first match can fail
# the pipeline with the writer's SIGPIPE)
for i in 0 1; do
  k logs -n "$NS" job/demo-materialize-e2e -c "materialize-$i" | grep >/dev/null "share $i of 2: \['driver_" ||
    die "share $i did not materialize its windows of the feature views"
done
say "status.materialization.featureViews: both views, from the two shares' reports"
deadline=$((SECONDS + TIMEOUT_SECONDS))
until [ "$(k get fs "$STORE" -n "$NS" -o jsonpath='{.status.materialization.featureViews[*].name}')" = \
  "driver_daily_trips driver_hourly_stats" ]; do
  [ "$SECONDS" -lt "$deadline" ] || die "status.materialization.featureViews: $(k get fs "$STORE" -n "$NS" \
    -o jsonpath='{.status.materialization.featureViews[*].name}')"
  sleep 2
done

# --- online features from a client pod -------------------------------------------------------
say "a client pod reads online features through $STORE-feature-server.$NS.svc.cluster.local"
client_pod demo-client ONLINE-FEATURES-OK "" "$(read_online_code)"

# --- a config change rolls the feature server ------------------------------------------------
say "changing registry.cacheTtlSeconds: the feature server pods roll, the store returns to Ready"
before="$(running feature-server | sort | tr '\n' ' ')"
generation="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.metadata.generation}')"
k patch fs "$STORE" -n "$NS" --type merge -p '{"spec": {"registry": {"cacheTtlSeconds": 17}}}'
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
k get configmap "$STORE-feast-config" -n "$NS" -o jsonpath='{.data.feature_store\.yaml}' | grep >/dev/null "cache_ttl_seconds: 17" ||
  die "feature_store.yaml does not carry cache_ttl_seconds: 17"
k rollout status -n "$NS" "deploy/$STORE-feature-server" --timeout="$TIMEOUT"
k wait --for=condition=Ready "fs/$STORE" -n "$NS" --timeout="$TIMEOUT"
echo "feature server pods: before [$before] after [$after]"
client_pod demo-client-after-roll ONLINE-FEATURES-OK "" "$(read_online_code)"

# --- deletion --------------------------------------------------------------------------------
delete_store demo-generate-data "demo-client demo-client-after-roll"

say "PASSED"
