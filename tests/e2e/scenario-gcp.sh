#!/usr/bin/env bash
# The e2e scenario of provider gcp, against whatever cluster kubectl/helm reach: Memorystore (TLS +
# AUTH) for the online store, a GCS bucket for the registry and the offline data. Run by
# tests/e2e/test_node.py against fakes on the host (the Memorystore REST fake backed by a real
# redis-server, fake-gcs-server); on GKE it runs against the real services.
#
#   helm upgrade --install the chart with HELM_ARGS (how the operator and Feast reach GCP)
#   kubectl apply -f examples/feature-repos/demo.yaml -f $GCP_MANIFEST (a provider: gcp store
#     whose feature repo reads $DATA_URI)
#   a Job writes the parquet data to $DATA_URI (in the store's bucket)
#   kubectl wait --for=condition=Ready; the HPA keeps minReplicas feature server pods; the feature
#     server reads the AUTH string from the store's Secret and the CA from the Secret it mounts
#   materialize: a Job from the CronJob reads the parquet from gs:// and writes to Memorystore
#   a client pod reads online features (feature server -> Memorystore) and retrieves historical
#     features from the bucket (point in time: the row in force at each entity's timestamp)
#   the FeatureStore deleted -> every pod and object it created is gone
#
#   the namespace is made as Kubeflow's profile controller makes it; with GCP_MANIFEST2, a second
#     store in it; a notebook of the profile (default-editor, Workload Identity to NOTEBOOK_GSA) ticks
#     BOTH stores' PodDefault boxes, is admitted with upstream's PodDefault rules, and reads online
#     features, historical features from gs:// and the registry of each store; with OTHER_NS, a
#     notebook of another profile (default-editor -> OTHER_GSA) is refused by GCS (403)
#
# Needs kubectl, helm, python3 and: GCP_MANIFEST (the FeatureStore), DATA_URI
# (gs://BUCKET/PATH.parquet, in the store's bucket), POD_ENV (flow-style env list for the pods of
# ours: how they reach GCS; empty on GKE with Workload Identity), NOTEBOOK_ENV (the same as a JSON
# list, for notebooks; "[]" on GKE). Optional: GCP_MANIFEST2, NOTEBOOK_GSA, OTHER_NS, OTHER_GSA,
# ADMISSION=webhook (a cluster with Kubeflow's own PodDefault webhook). Knobs: see tests/e2e/lib.sh.
set -euo pipefail

: "${GCP_MANIFEST:?the provider: gcp FeatureStore manifest}" "${DATA_URI:?gs://BUCKET/PATH.parquet}"
POD_ENV="${POD_ENV:-}"
NOTEBOOK_ENV="${NOTEBOOK_ENV:-[]}"
STORE2=""
# shellcheck disable=SC2034 # read by lib.sh
STORE_REPO=demo-feature-repo   # examples/feature-repos/demo.yaml
NS=kubeflow-user-example-com   # its namespace
STORE=""
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# notebook_code STORE...: Python of a notebook that opens each store by its own client config (the
# per-store FEAST_<NAME>_FS_YAML_FILE_PATH its PodDefault sets) and reads the registry (gs://),
# online features (feature server) and point-in-time historical features (gs:// parquet)
notebook_code() {
  cat <<PY
import math, os
from datetime import timedelta
from pathlib import Path
import pandas as pd
from feast import FeatureStore
features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
latest = pd.read_parquet("$DATA_URI").groupby("driver_id")["event_timestamp"].max()
minute = timedelta(minutes=1)
entity_df = pd.DataFrame({"driver_id": [1001, 1002, 1003],
                          "event_timestamp": [latest[1001] + minute, latest[1002] - timedelta(hours=2) + minute,
                                              latest[1003] - timedelta(hours=5) + minute]})
for name in "$*".split():
    path = os.environ["FEAST_" + name.upper().replace("-", "_") + "_FS_YAML_FILE_PATH"]
    store = FeatureStore(fs_yaml_file=Path(path))
    views = sorted(v.name for v in store.list_feature_views())  # the registry, from gs://
    assert "driver_hourly_stats" in views, views
    got = store.get_online_features(features=features, entity_rows=[{"driver_id": 1001}, {"driver_id": 1003}]).to_dict()
    assert math.isclose(got["conv_rate"][0], 0.1, rel_tol=1e-5) and got["avg_daily_trips"] == [1, 3], got
    df = store.get_historical_features(entity_df=entity_df, features=features).to_df().sort_values("driver_id")
    assert df["avg_daily_trips"].tolist() == [1, 4, 8], df
    print(name, "registry", views, "online", got["avg_daily_trips"], "historical", df["avg_daily_trips"].tolist())
print("NOTEBOOK-TWO-STORES-OK")
PY
}

# other_profile_code BUCKET: Python of another profile's notebook: every read of the bucket is refused
other_profile_code() {
  cat <<PY
from google.api_core import exceptions as gexc
from google.cloud import storage
import pandas as pd
client = storage.Client()
for path in ("registry.pb", "${DATA_URI#gs://*/}"):
    try:
        client.bucket("$1").blob(path).download_as_bytes()
    except gexc.Forbidden as err:
        print("403", path, err.message[:120])
    else:
        raise SystemExit(f"another profile read gs://$1/{path}")
try:
    pd.read_parquet("$DATA_URI")
except Exception as err:  # gcsfs: 403 as an HttpError/PermissionError
    assert "403" in str(err) or "Forbidden" in str(err) or isinstance(err, PermissionError), repr(err)
    print("403 (gcsfs)", type(err).__name__)
else:
    raise SystemExit("another profile read $DATA_URI")
print("REFUSED-403")
PY
}

if ! k get crd poddefaults.kubeflow.org >/dev/null 2>&1; then
  say "installing Kubeflow's PodDefault CRD (upstream's, vendored in tests/support/crds)"
  # (a 1.20 API server refuses its `default: ""` of probes' grpc.service as null: dropped here only)
  sed '/^ *default: ""$/d' "$ROOT/tests/support/crds/poddefaults.kubeflow.org.yaml" | k apply -f -
  wait_crd poddefaults.kubeflow.org
fi
install_chart

read -r manifest_ns STORE <<<"$(k create --dry-run=client -f "$GCP_MANIFEST" -o jsonpath='{.metadata.namespace} {.metadata.name}')"
[ "$manifest_ns" = "$NS" ] || die "$GCP_MANIFEST: metadata.namespace must be $NS (the feature repo's)"
profile_namespace "$NS" user@example.com "${NOTEBOOK_GSA:-}"
[ -z "${OTHER_NS:-}" ] || profile_namespace "$OTHER_NS" other@example.com "${OTHER_GSA:-}"
[ -z "${GCP_MANIFEST2:-}" ] || STORE2="$(k create --dry-run=client -f "$GCP_MANIFEST2" -o jsonpath='{.metadata.name}')"
say "kubectl apply -f examples/feature-repos/demo.yaml -f $GCP_MANIFEST (fs/$STORE)${STORE2:+ -f $GCP_MANIFEST2 (fs/$STORE2)}"
k apply -f "$ROOT/examples/feature-repos/demo.yaml" -f "$GCP_MANIFEST" ${GCP_MANIFEST2:+-f "$GCP_MANIFEST2"}

say "waiting for the store's bucket (status.endpoints.bucket)"
bucket="$(store_bucket)"
case "$DATA_URI" in gs://"$bucket"/*) ;; *) die "DATA_URI $DATA_URI is not in the store's bucket $bucket" ;; esac

wait_identity
say "writing the parquet data to $DATA_URI (as the store's KSA: only its GSA may write the bucket)"
RUN_AS="$STORE-feast" run_job gcp-generate-data "$POD_ENV" "" "" python /repo/generate_data.py "$DATA_URI"

wait_store_ready feature-server

min_replicas="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.spec.featureServer.autoscaling.minReplicas}')"
if [ -n "$min_replicas" ]; then
  say "the HorizontalPodAutoscaler keeps $min_replicas feature server pods (spec.featureServer.autoscaling)"
  deadline=$((SECONDS + TIMEOUT_SECONDS))
  until [ "$(running feature-server | wc -l)" -ge "$min_replicas" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "fewer than $min_replicas Running+Ready feature server pods: $(running feature-server | tr '\n' ' ')"
    sleep 3
  done
  running feature-server
  k get hpa,pdb -n "$NS" -l "$OWNER_LABEL=$STORE"
fi

say "the feature server reads the AUTH string and the CA from the store's Secret"
k get deploy "$STORE-feature-server" -n "$NS" -o json | SECRET="$STORE-online-store" python3 -c '
import json, os, sys
pod = json.load(sys.stdin)["spec"]["template"]["spec"]
secret = os.environ["SECRET"]
env = {e["name"]: e for e in pod["containers"][0]["env"]}
assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "password"}, env["REDIS_PASSWORD"]
mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
volume = {v["name"]: v for v in pod["volumes"]}[mounts["/etc/feast/redis-tls"]]
assert volume["secret"]["secretName"] == secret, volume
print("AUTH from secretKeyRef", secret, "- CA mounted from Secret", secret)'
k get configmap "$STORE-feast-config" -n "$NS" -o jsonpath='{.data.feature_store\.yaml}' | grep >/dev/null 'password=${REDIS_PASSWORD}' ||
  die "feature_store.yaml does not take the password from REDIS_PASSWORD"

materialize gcp-materialize-e2e

say "a client pod of the profile (default-editor) reads online features (feature server -> Memorystore) and historical features from $DATA_URI"
RUN_AS=default-editor client_pod gcp-client-online ONLINE-FEATURES-OK "$POD_ENV" "$(read_online_code)"
RUN_AS=default-editor client_pod gcp-client-historical HISTORICAL-FEATURES-OK "$POD_ENV" "$(cat <<PY
from datetime import timedelta
import pandas as pd
from feast import FeatureStore
# the rows the Job wrote (generate_data.py): at age h hours, avg_daily_trips = N - 1000 + h and
# conv_rate 0.99, but (N - 1000) / 10 in the newest row (h = 0)
latest = pd.read_parquet("$DATA_URI").groupby("driver_id")["event_timestamp"].max()
minute = timedelta(minutes=1)
entity_df = pd.DataFrame({"driver_id": [1001, 1002, 1003],
                          "event_timestamp": [latest[1001] + minute, latest[1002] - timedelta(hours=2) + minute,
                                              latest[1003] - timedelta(hours=5) + minute]})
store = FeatureStore()  # the client config: registry and offline data in the bucket
job = store.get_historical_features(entity_df=entity_df, features=["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"])
df = job.to_df().sort_values("driver_id")
assert df["avg_daily_trips"].tolist() == [1, 4, 8], df
assert [round(float(v), 4) for v in df["conv_rate"]] == [0.1, 0.99, 0.99], df
print("HISTORICAL-FEATURES-OK", df[["driver_id", "avg_daily_trips", "conv_rate"]].to_dict("list"))
PY
)"

if [ -n "$STORE2" ]; then
  (STORE="$STORE2" && wait_store_ready feature-server && materialize gcp-materialize-e2e-2)
  say "a notebook of the profile ticks both stores' boxes: online, historical (gs://) and registry of each"
  notebook_pod gcp-notebook NOTEBOOK-TWO-STORES-OK "$NOTEBOOK_ENV" "$(notebook_code "$STORE" "$STORE2")" "$STORE" "$STORE2"
  k delete pod gcp-notebook -n "$NS" --wait=true
fi
if [ -n "${OTHER_NS:-}" ]; then
  say "a notebook of another profile ($OTHER_NS) is refused by GCS: registry and offline data of fs/$STORE"
  (NS="$OTHER_NS" && notebook_pod gcp-other-profile REFUSED-403 "$NOTEBOOK_ENV" "$(other_profile_code "$bucket")")
  k delete pod gcp-other-profile -n "$OTHER_NS" --wait=true
fi
if [ -n "$STORE2" ]; then
  say "deleting fs/$STORE2"
  k delete job gcp-materialize-e2e-2 -n "$NS" --ignore-not-found --cascade=foreground --wait=true
  k delete fs "$STORE2" -n "$NS" --wait=true --timeout="$TIMEOUT"
fi
delete_store gcp-generate-data "gcp-client-online gcp-client-historical"

say "PASSED"
