# Steps the e2e scenarios share (sourced by scenario.sh and scenario-gcp.sh; not run by itself).
# Before sourcing, a scenario sets NS (the store's namespace) and STORE (its name).
#
# Knobs: KUBE_CONTEXT, OPERATOR_IMAGE=featurestore-operator:e2e, FEAST_IMAGE=featurestore-feast:e2e,
# TIMEOUT_SECONDS=600, HELM_ARGS (extra `helm install` args).
# From a registry, as a user installs a release (after hack/release.sh; the node tier's main scenario):
# CHART_REF=oci://REGISTRY/charts/featurestore-operator CHART_VERSION=X (the chart's own default
# images, pulled by the node), FEAST_IMAGE=REGISTRY/featurestore-feast:X, PULL_POLICY=IfNotPresent
# (of the scenario's own Jobs and pods), CHART_PULL_ARGS (e.g. --plain-http for a local registry).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPERATOR_IMAGE="${OPERATOR_IMAGE:-featurestore-operator:e2e}"
FEAST_IMAGE="${FEAST_IMAGE:-featurestore-feast:e2e}"
CHART_REF="${CHART_REF:-}"
PULL_POLICY="${PULL_POLICY:-Never}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-600}"
TIMEOUT="${TIMEOUT_SECONDS}s"
RELEASE=featurestore-operator
OPERATOR_NS=featurestore-system
OWNER_LABEL=featurestore.kubeflow.org/name
COMPONENT_LABEL=app.kubernetes.io/component
#: the container securityContext of our own Jobs and pods (restricted pod security)
CONTAINER_SECURITY='{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}'

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

# store_bucket [claim]: status.endpoints.bucket of fs/$STORE once it is set (its GCS bucket, or
# the name of its data volume claim; with "claim", once that claim exists too), 240 s at most
store_bucket() {
  local name="" deadline=$((SECONDS + 240))
  while [ "$SECONDS" -lt "$deadline" ]; do
    name="$(k get featurestore "$STORE" -n "$NS" -o jsonpath='{.status.endpoints.bucket}' 2>/dev/null || true)"
    if [ -n "$name" ] && { [ "${1:-}" != claim ] || k get pvc "$name" -n "$NS" >/dev/null 2>&1; }; then
      echo "$name"
      return 0
    fi
    sleep 2
  done
  die "status.endpoints.bucket of fs/$STORE stayed empty${1:+ (or its volume claim did not appear)}"
}

# wait_identity: fs/$STORE's pods can act as its Google service account: the WorkloadIdentity
# condition is True (the GSA's binding is written) and the store's KSA carries the GSA annotation the
# metadata server maps pods by. Until then a pod of the KSA gets no token (401), as on GKE.
wait_identity() {
  local deadline=$((SECONDS + 240)) cond="" gsa=""
  say "waiting for fs/$STORE's Workload Identity (condition WorkloadIdentity, KSA $STORE-feast annotated)"
  while [ "$SECONDS" -lt "$deadline" ]; do
    cond="$(k get fs "$STORE" -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="WorkloadIdentity")].status}' 2>/dev/null || true)"
    gsa="$(k get sa "$STORE-feast" -n "$NS" -o jsonpath='{.metadata.annotations.iam\.gke\.io/gcp-service-account}' 2>/dev/null || true)"
    [ "$cond" = True ] && [ -n "$gsa" ] && return 0
    sleep 2
  done
  die "fs/$STORE: WorkloadIdentity condition '$cond', KSA annotation '$gsa' after 240s"
}

# wait_crd NAME: the CRD is Established. (kubectl wait fails at once on a CRD created a moment ago
# whose status has no conditions yet - "accessor error: <nil>" - so this polls.)
wait_crd() {
  local deadline=$((SECONDS + 60))
  until [ "$(k get crd "$1" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "crd/$1 not Established after 60s"
    sleep 1
  done
}

# install_chart: helm upgrade --install with the local images (pulls disabled) and HELM_ARGS;
# the operator pod becomes Ready
install_chart() {
  local chart=("$ROOT/charts/featurestore-operator")
  local images=(--set image.repository="${OPERATOR_IMAGE%:*}" --set image.tag="${OPERATOR_IMAGE##*:}"
    --set image.pullPolicy=Never --set images.feast="$FEAST_IMAGE")
  if [ -n "$CHART_REF" ]; then
    say "installing the chart $CHART_REF --version $CHART_VERSION (its own images, pulled by the node)"
    # shellcheck disable=SC2206
    chart=("$CHART_REF" --version "$CHART_VERSION" ${CHART_PULL_ARGS:-})
    images=()
  else
    say "installing the chart (images $OPERATOR_IMAGE, $FEAST_IMAGE; pulls disabled)"
  fi
  # shellcheck disable=SC2086
  helm ${KUBE_CONTEXT:+--kube-context "$KUBE_CONTEXT"} upgrade --install "$RELEASE" "${chart[@]}" \
    --namespace "$OPERATOR_NS" --create-namespace \
    "${images[@]}" \
    --set istio=false \
    --set resyncSeconds=30 \
    ${HELM_ARGS:-} \
    --wait --timeout 5m
  k rollout status -n "$OPERATOR_NS" "deploy/$RELEASE" --timeout="$TIMEOUT"
  # (rollout status: the new pods are Ready; a pod of the previous release may still be terminating)
  k wait --for=condition=Available -n "$OPERATOR_NS" "deploy/$RELEASE" --timeout="$TIMEOUT"
  wait_crd featurestores.featurestore.kubeflow.org
  wait_webhook
}

# wait_webhook: with the chart's admission webhook on, until the API server reaches it. helm --wait
# returns once the operator pod is Ready (serving the webhook), but the webhook Service's new
# endpoint reaches the node's proxy a moment later: a create sent in between fails with "failed
# calling webhook ... connection refused" (docs/security/admission-webhook.md, Limits). A
# server-side dry-run create is answered by the webhook (admitted or refused) once it is reachable.
wait_webhook() {
  [ -n "$(k get validatingwebhookconfiguration -l "app.kubernetes.io/instance=$RELEASE" -o name)" ] || return 0
  local start=$SECONDS deadline=$((SECONDS + 60)) out
  while out="$(printf '%s\n' 'apiVersion: featurestore.kubeflow.org/v1alpha1' 'kind: FeatureStore' \
    'metadata: {name: webhook-probe}' 'spec: {project: webhook_probe}' |
    k create --dry-run=server -n default -f - 2>&1)"; [[ "$out" == *"failed calling webhook"* ]]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the API server does not reach the admission webhook after 60s: $out"
    sleep 1
  done
  say "the API server reaches the admission webhook (waited $((SECONDS - start)) s)"
}

# run_job NAME ENV_YAML VOLUMES_YAML MOUNTS_YAML ARGS...: a one-off Job of ours in the Feast image
# (restricted pod security), until it succeeded; prints its log. ENV_YAML etc. are flow-style lists.
# RUN_AS: the KSA it runs as (default: the namespace's default).
run_job() {
  local name="$1" env="$2" volumes="$3" mounts="$4"
  shift 4
  local args
  args="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")"
  k delete job "$name" -n "$NS" --ignore-not-found --cascade=foreground --wait=true
  k apply -n "$NS" -f - <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: $name
  labels: {app.kubernetes.io/part-of: featurestore-e2e}
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations: {sidecar.istio.io/inject: "false"}
    spec:
      restartPolicy: Never
      serviceAccountName: ${RUN_AS:-default}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: run
          image: $FEAST_IMAGE
          imagePullPolicy: $PULL_POLICY
          command: $args
          env: [{name: PYTHONDONTWRITEBYTECODE, value: "1"}, {name: HOME, value: /tmp}${env:+, $env}]
          securityContext: $CONTAINER_SECURITY
          volumeMounts: [{name: repo, mountPath: /repo, readOnly: true}, {name: tmp, mountPath: /tmp}${mounts:+, $mounts}]
      volumes: [{name: repo, configMap: {name: $STORE_REPO}}, {name: tmp, emptyDir: {}}${volumes:+, $volumes}]
YAML
  wait_job "$name"
  k logs -n "$NS" "job/$name"
}

# materialize NAME: a Job from the CronJob's jobTemplate, until it succeeded (what `kubectl create
# job --from=cronjob/...` does; that command does not support the batch/v1beta1 CronJobs of
# Kubernetes < 1.21 in current kubectl)
materialize() {
  say "materializing (a Job from cronjob/$STORE-materialize)"
  k delete job "$1" -n "$NS" --ignore-not-found --cascade=foreground --wait=true
  k get cronjob "$STORE-materialize" -n "$NS" -o json | JOB="$1" python3 -c '
import json, os, sys
cron = json.load(sys.stdin)
tpl = cron["spec"]["jobTemplate"]
print(json.dumps({"apiVersion": "batch/v1", "kind": "Job",
                  "metadata": {"name": os.environ["JOB"], "labels": tpl.get("metadata", {}).get("labels", {}),
                               "annotations": {"cronjob.kubernetes.io/instantiate": "manual"},
                               "ownerReferences": [{"apiVersion": cron["apiVersion"], "kind": "CronJob",
                                                    "name": cron["metadata"]["name"], "uid": cron["metadata"]["uid"],
                                                    "controller": True}]},
                  "spec": tpl["spec"]}))' | k create -n "$NS" -f -
  wait_job "$1"
  k logs -n "$NS" "job/$1" --all-containers --tail=20
}

# client_pod NAME MARKER ENV_YAML PYTHON: a notebook-like pod that mounts the client config as the
# PodDefault injects it and runs PYTHON; it must succeed and print MARKER. RUN_AS: its KSA.
client_pod() {
  local name="$1" marker="$2" env="$3" code
  code="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1]))' "$4")"
  k delete pod "$name" -n "$NS" --ignore-not-found --wait=true
  k apply -n "$NS" -f - <<YAML
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels: {access-feast-$STORE: "true", app.kubernetes.io/part-of: featurestore-e2e}
  annotations: {sidecar.istio.io/inject: "false"}
spec:
  restartPolicy: Never
  serviceAccountName: ${RUN_AS:-default}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    seccompProfile: {type: RuntimeDefault}
  containers:
    - name: client
      image: $FEAST_IMAGE
      imagePullPolicy: $PULL_POLICY
      command: [python, -c, $code]
      env: [{name: FEAST_FS_YAML_FILE_PATH, value: /etc/feast/$STORE/feature_store.yaml}, {name: HOME, value: /tmp}${env:+, $env}]
      securityContext: $CONTAINER_SECURITY
      volumeMounts:
        - {name: feast-$STORE, mountPath: /etc/feast/$STORE, readOnly: true}
        - {name: tmp, mountPath: /tmp}
  volumes:
    - {name: feast-$STORE, configMap: {name: $STORE-feast-client}}
    - {name: tmp, emptyDir: {}}
YAML
  wait_pod "$name"
  local out
  out="$(k logs -n "$NS" "$name")"
  echo "$out"
  grep -q "$marker" <<<"$out" || die "$name did not print $marker"
}

# read_online_code: Python for client_pod that reads online features through the client config
# (Feast SDK, remote online store) and over plain HTTP from the feature server Service's DNS name.
# generate_data.py: the newest row of driver N has conv_rate (N-1000)/10, avg_daily_trips N-1000
read_online_code() {
  cat <<PY
import json, math, urllib.request
from feast import FeatureStore
features = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
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
PY
}

# wait_store_ready: kubectl wait --for=condition=Ready, then the apply Job succeeded and each
# COMPONENT given has a Running+Ready pod
wait_store_ready() {
  say "kubectl wait --for=condition=Ready fs/$STORE"
  k wait --for=condition=Ready "fs/$STORE" -n "$NS" --timeout="$TIMEOUT"
  k get fs "$STORE" -n "$NS" -o wide
  say "the store's workloads run as pods"
  local apply_job component pods
  apply_job="$(k get jobs -n "$NS" -l "$OWNER_LABEL=$STORE" -o name | grep -- "-apply-" | head -n1)"
  [ -n "$apply_job" ] || die "no apply Job"
  [ "$(k get -n "$NS" "$apply_job" -o jsonpath='{.status.succeeded}')" -ge 1 ] || die "$apply_job did not succeed"
  for component in "$@"; do
    pods="$(running "$component")"
    [ -n "$pods" ] || die "no Running+Ready pod of component $component"
    echo "$component: $pods"
  done
}

# delete_store JOBS PODS: delete our Jobs and pods, then fs/$STORE; every pod, claim and object it
# created must go, the user's feature repo ConfigMap ($STORE_REPO) must stay
delete_store() {
  say "deleting fs/$STORE: every pod, claim and object it created must go"
  # ours, not the operator's (a pod of ours would hold a claim through PVC protection)
  local job pod
  for job in $1; do k delete job "$job" -n "$NS" --ignore-not-found --cascade=foreground --wait=true; done
  for pod in $2; do k delete pod "$pod" -n "$NS" --ignore-not-found --wait=true; done
  k delete fs "$STORE" -n "$NS" --wait=true --timeout="$TIMEOUT"
  local kinds=all,configmaps,secrets,serviceaccounts,persistentvolumeclaims,networkpolicies,poddisruptionbudgets,roles,rolebindings
  local left=""
  for _ in $(seq 120); do
    left="$(k get "$kinds" -n "$NS" -l "$OWNER_LABEL=$STORE" -o name 2>/dev/null || true)"
    left="$left$(k get pods,pvc -n "$NS" -o name 2>/dev/null || true)"
    [ -z "$left" ] && break
    sleep 2
  done
  [ -z "$left" ] || die "left behind after deleting fs/$STORE: $(echo "$left" | tr '\n' ' ')"
  k get configmap "$STORE_REPO" -n "$NS" >/dev/null || die "the user's feature repo ConfigMap was deleted"
}

# profile_namespace NS OWNER [GSA]: the namespace as Kubeflow's profile controller makes it for a
# Profile (kubeflow/dashboard components/profile-controller/controllers/profile_controller.go
# Reconcile @063d073 and its default namespace-labels.yaml): owner annotation, the profile labels (the
# PodDefault webhook acts only where app.kubernetes.io/part-of=kubeflow-profile), the KSAs
# default-editor and default-viewer with RoleBindings of the same names to kubeflow-edit /
# kubeflow-view, the owner's namespaceAdmin binding to kubeflow-admin; with GSA, what its
# WorkloadIdentity plugin does to default-editor (plugin_workload_identity.go: the annotation; the
# roles/iam.workloadIdentityUser binding on the GSA is the caller's, in IAM).
profile_namespace() {
  local ns="$1" owner="$2" gsa="${3:-}"
  say "namespace $ns as the profile controller makes it (owner $owner${gsa:+, default-editor -> $gsa})"
  k apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  annotations: {owner: $owner}
  labels:
    app.kubernetes.io/part-of: kubeflow-profile
    katib.kubeflow.org/metrics-collector-injection: enabled
    serving.kubeflow.org/inferenceservice: enabled
    pipelines.kubeflow.org/enabled: "true"
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default-editor
  namespace: $ns
  annotations: {${gsa:+iam.gke.io/gcp-service-account: $gsa}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default-viewer, namespace: $ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-editor, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubeflow-edit}
subjects: [{kind: ServiceAccount, name: default-editor, namespace: $ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-viewer, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubeflow-view}
subjects: [{kind: ServiceAccount, name: default-viewer, namespace: $ns}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: namespaceAdmin
  namespace: $ns
  annotations: {user: $owner, role: admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubeflow-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: $owner}]
YAML
}

# notebook_pod NAME MARKER ENV_JSON PYTHON STORE...: a notebook of the profile in $NS, running as
# default-editor, whose form ticked the PodDefault box of each STORE; the pod is admitted as Kubeflow's
# PodDefault webhook admits it (tests/e2e/notebook_pod.py applies the namespace's PodDefaults with
# upstream's rules, unless ADMISSION=webhook: the cluster's own webhook does). It must print MARKER.
notebook_pod() {
  local name="$1" marker="$2" env="$3" code="$4" stores=() s manifest
  shift 4
  for s in "$@"; do stores+=(--store "$s"); done
  k delete pod "$name" -n "$NS" --ignore-not-found --wait=true
  local admit=()
  [ "${ADMISSION:-standin}" = webhook ] && admit=(--no-admission)
  manifest="$(printf '{"poddefaults": %s, "namespace": %s}' "$(k get poddefaults -n "$NS" -o json)" "$(k get namespace "$NS" -o json)" |
    PYTHONPATH="$ROOT" python3 -m tests.e2e.notebook_pod "$name" "$FEAST_IMAGE" "$code" "${stores[@]}" --env-json "$env" "${admit[@]}")" ||
    die "the PodDefault admission refused notebook $name"
  echo "$manifest" | python3 -c 'import json,sys; p=json.load(sys.stdin); c=p["spec"]["containers"][0]; print("admitted:", sorted(e["name"] for e in c["env"]), sorted(m["mountPath"] for m in c["volumeMounts"]))'
  echo "$manifest" | k apply -n "$NS" -f -
  wait_pod "$name"
  local out
  out="$(k logs -n "$NS" "$name")"
  echo "$out"
  grep -q "$marker" <<<"$out" || die "$name did not print $marker"
}
