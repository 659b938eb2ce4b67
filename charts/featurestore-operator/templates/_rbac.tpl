{{/*
RBAC rules of the operator, least privilege. Every rule says WHY it exists.

Facts verified against a real kube-apiserver 1.20 (tests/controlplane/test_chart.py runs the
operator under this chart's ServiceAccount token):
  * Server-side apply is an HTTP PATCH, authorized as `patch`; when the object does not exist
    yet the apiserver ALSO authorizes the implicit creation as `create` (without it: 403 with
    an empty reason). So every kind the operator applies needs both `create` and `patch`;
    an identical re-apply needs `patch` only. `update` is never used.
  * Children carry an ownerReference with blockOwnerDeletion: true. Clusters running the
    OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened clusters) then
    require `update` on the owner's `finalizers` subresource; `patch` is not enough.
  * `get` is granted only where the operator reads single objects (FeatureStores, ConfigMaps,
    Secrets); every other read comes from its list+watch streams, which select its own objects
    by label on the server. Secrets are never listed or watched (runtime/kinds.py).

Namespaced rules: in the ClusterRole (all namespaces) or in a Role per watched namespace.
*/}}
{{- define "featurestore-operator.namespacedRules" -}}
# The FeatureStore API. list/watch: the operator streams every FeatureStore to its per-store
# workers; get: a worker checks whether its store still exists after a 404. patch: our finalizer
# is added and removed (only while cloud resources need cleanup), guarded by resourceVersion.
- apiGroups: ["featurestore.kubeflow.org"]
  resources: ["featurestores"]
  verbs: ["get", "list", "watch", "patch"]
{{- if .Values.kubeflow.onboarding.enabled }}
# Profile onboarding: create-if-absent (plain POST, never update) of the template's FeatureStore in
# each profile namespace; get tells an existing (user's own) store from an onboarded one on 409.
- apiGroups: ["featurestore.kubeflow.org"]
  resources: ["featurestores"]
  verbs: ["create"]
{{- end }}
# Roles/RoleBindings the operator owns are children: list/watch keep its cache of them (selected
# by its label on the server); create/patch/delete apply and prune them. Any namespace editor may
# set spec.authz.type kubernetes, so they are always granted: Roles <name>-feast-{reader,writer}
# (get on the store's client ConfigMap), <name>-feast-role-lookup (list rolebindings) and their
# RoleBindings (render/authz.py); with onboarding also "<name>-feast-client-reader". RBAC's
# escalation check lets the operator write a Role, or bind one, only when it holds every
# permission in it itself (configmaps get, rolebindings list): no `escalate`/`bind` verbs, so a
# RoleBinding to cluster-admin or any broader role is refused (test_chart.py shows it).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Feature view freshness (every store): the materialization Job's pod reports it as its
# termination message; the operator lists the finished Job's pods (namespace + label job-name) to
# read it, once per run. `list` only: no get/watch, no logs, no exec.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# The reconciler writes .status (conditions, endpoints, operation names) with a merge patch.
- apiGroups: ["featurestore.kubeflow.org"]
  resources: ["featurestores/status"]
  verbs: ["patch"]
# Children's ownerReferences set blockOwnerDeletion: true; OwnerReferencesPermissionEnforcement
# admits that only with `update` on the owner's finalizers subresource (patch is not enough).
- apiGroups: ["featurestore.kubeflow.org"]
  resources: ["featurestores/finalizers"]
  verbs: ["update"]
# Events on FeatureStores (kubectl describe): the operator POSTs core/v1 Events; it never
# patches or updates them, so `create` only.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# ConfigMaps: get the user's feature repo ConfigMap (spec.featureRepo.configMap, hashed into
# the repo revision); list/watch/create/patch/delete its own feature_store.yaml ConfigMaps
# (<name>-feast-config, <name>-feast-client): watched for drift, server-side applied, pruned.
# (With onboarding also the per-namespace marker ConfigMap "featurestore-onboarding", and with a
# shared online store the operator's records "featurestore-onboarded-<namespace>" in the shared
# Secret's namespace: where the Secret may be copied.)
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Secrets: get the user's Secrets the spec references (external Redis password, git credentials),
# cert-manager's issued Secret of the store's Certificate, and the store's own Secrets by their
# derived names (<name>-online-store: the generated Redis AUTH password; <name>-feast-tls: the
# per-store CA), read each pass to see drift, deletion and leftovers (reconcile/applier.refresh).
# create/patch: server-side apply of those; delete: pruning them. (With onboarding also the shared
# online store's Secret, read by name every 10 s, and its copies.) NO list/watch: that would let a
# leaked operator token read every Secret of the cluster; `get` needs the Secret's name.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "delete"]
# Owned children (OWNED_KINDS in runtime/kinds.py): list/watch feed the observed-state cache
# (drift and workload status wake the owner); create+patch = server-side apply (create is
# checked when the apply creates the object); delete = pruning what the spec no longer asks for.
#   ServiceAccount <name>-feast (Workload Identity KSA of the Feast pods), Services of the
#   feature/registry/offline servers and Redis, the PVC of the local provider's registry/data.
- apiGroups: [""]
  resources: ["serviceaccounts", "services", "persistentvolumeclaims"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Feature/registry/offline server and UI Deployments; the in-cluster Redis StatefulSet.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   feast-apply Job per repo revision; materialization CronJob (batch/v1 or v1beta1: RBAC is
#   per group, so both versions are covered). Jobs the CronJob spawns are watched for status.
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Feature server autoscaling (autoscaling/v2 or v2beta2).
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Feature server disruption budget (policy/v1 or v1beta1).
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Access policy of the feature server when Istio is off.
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Kubeflow PodDefault "Allow access to Feast" for notebooks (optional CRD).
- apiGroups: ["kubeflow.org"]
  resources: ["poddefaults"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   Istio AuthorizationPolicy of the feature server (optional CRD).
- apiGroups: ["security.istio.io"]
  resources: ["authorizationpolicies"]
  verbs: ["list", "watch", "create", "patch", "delete"]
#   cert-manager Certificate of the Feast servers (spec.tls with tls.issuer; optional CRD). cert-manager
#   writes the Secret; the operator only reads it (the Secret rule above).
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- if .Values.compute.enabled }}
# spec.compute (render/compute.py): a RoleBinding "<name>-feast-compute" per store binding the
# compute KSA to one of the two ClusterRoles below, in the store's namespace only. `bind` on
# exactly those names passes RBAC's escalation check without the operator holding what they grant
# (pods, services, SparkApplications): a store can never get more than they say.
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["rolebindings"]
  verbs: ["list", "watch", "create", "patch", "delete"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterroles"]
  resourceNames: ["featurestore-compute-kubernetes", "featurestore-compute-spark-application"]
  verbs: ["bind"]
#   RayCluster <name>-ray of engine ray with kubeRay (optional CRD, KubeRay operator).
- apiGroups: ["ray.io"]
  resources: ["rayclusters"]
  verbs: ["list", "watch", "create", "patch", "delete"]
{{- end }}
{{- end -}}

{{/* Cluster-scoped reads, needed in both modes. */}}
{{- define "featurestore-operator.clusterRules" -}}
# kopf discovers resources at start-up (discovery endpoints, no RBAC) and then watches CRDs so
# that optional CRDs installed later (PodDefault, AuthorizationPolicy) are picked up without a
# restart. Read-only.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
# A namespaced kopf operator lists/watches Namespaces to match its namespace list (and notices
# namespaces created or deleted later). Not needed cluster-wide (kopf skips it). Read-only.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- else if .Values.kubeflow.onboarding.enabled }}
# Profile onboarding watches namespaces (the profile label, opt-out label/annotation). Read-only.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
# The Kubeflow condition: whether a store's namespace carries the label Kubeflow's PodDefault
# webhook acts on (app.kubernetes.io/part-of: kubeflow-profile; reconcile/observe.py
# observe_notebooks). One get per pass of a store with a PodDefault. Read-only.
- apiGroups: [""]
  resources: ["namespaces"]
  {{- with .Values.watchNamespaces }}
  resourceNames: {{ toJson . }}
  {{- end }}
  verbs: ["get"]
{{- if .Values.kubeflow.onboarding.enabled }}
# Profile onboarding watches Kubeflow Profiles (cluster-scoped, kubeflow.org/v1). Read-only.
- apiGroups: ["kubeflow.org"]
  resources: ["profiles"]
  verbs: ["list", "watch"]
{{- end }}
# Notebook identity on GCP (backends/notebook_access.py): the Workload Identity annotation of each
# profile's default-editor names the GSA granted read on the namespace's store buckets. Only that name.
- apiGroups: [""]
  resources: ["serviceaccounts"]
  resourceNames: ["default-editor"]
  verbs: ["get"]
{{- if not .Values.clusterId }}
# The cluster identity labelled on cloud resources: the kube-system namespace uid, read once at
# start-up (backends/cluster.py). Only that namespace.
- apiGroups: [""]
  resources: ["namespaces"]
  resourceNames: ["kube-system"]
  verbs: ["get"]
{{- end }}
{{- with include "featurestore-operator.tokenReviewers" . }}
# authz kubernetes (handlers/token_reviewers.py): the operator keeps the subjects of the one
# ClusterRoleBinding {{ . }} equal to the ServiceAccounts of stores with spec.authz.type
# kubernetes. get/patch on that name only (never create, never another binding; roleRef is
# immutable). Changing a binding's subjects passes RBAC's escalation check only with `bind` on
# its ClusterRole or holding what it grants: `bind` on that one ClusterRole is the narrower
# (the operator itself gets no TokenReview right; binding that role in a namespace grants nothing,
# tokenreviews being cluster-scoped).
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterrolebindings"]
  resourceNames: [{{ . | quote }}]
  verbs: ["get", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["clusterroles"]
  resourceNames: [{{ include "featurestore-operator.tokenReviewer" $ | quote }}]
  verbs: ["bind"]
{{- end }}
{{- if and .Values.webhook.enabled (not .Values.webhook.certManager.enabled) }}
# The admission webhook (handlers/admission.py): the chart creates its ValidatingWebhookConfiguration;
# the operator only writes the caBundle of that one object (get + patch by name; never create, no
# other configuration, nothing on mutating ones). With cert-manager its CA injector does it: no rule.
- apiGroups: ["admissionregistration.k8s.io"]
  resources: ["validatingwebhookconfigurations"]
  resourceNames: [{{ printf "%s-webhook" (include "featurestore-operator.fullname" .) | quote }}]
  verbs: ["get", "patch"]
{{- end }}
{{- end -}}

{{/*
What a compute engine's pod may do in its FeatureStore's namespace (bound per store by a
RoleBinding, never cluster-wide). Read from Feast 0.67's engines:
  k8s (compute_engines/kubernetes): create a ConfigMap + an indexed Job per feature view, poll the
  Job's status, delete both, list the Job's pods and read their logs on failure.
*/}}
{{- define "featurestore-operator.computeKubernetesRules" -}}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs/status"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end -}}

{{/*
  spark_application (compute_engines/spark_application): create/poll/delete a SparkApplication and
  its ConfigMap; its driver pod (same KSA) reads that ConfigMap and, as every Spark driver on
  Kubernetes, creates and deletes its executor pods, its headless Service and their ConfigMaps/PVCs.
*/}}
{{- define "featurestore-operator.computeSparkApplicationRules" -}}
- apiGroups: ["sparkoperator.k8s.io"]
  resources: ["sparkapplications"]
  verbs: ["create", "get", "delete"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["create", "get", "list", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["create", "get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["services", "persistentvolumeclaims"]
  verbs: ["create", "get", "list", "delete"]
{{- end -}}

{{/* The token reviewers ClusterRole and ClusterRoleBinding (authz.kubernetes.enabled); empty when off. */}}
{{- define "featurestore-operator.tokenReviewer" -}}
{{- printf "%s-feast-token-reviewer" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- define "featurestore-operator.tokenReviewers" -}}
{{- if and .Values.rbac.create .Values.authz.kubernetes.enabled -}}
{{- printf "%s-feast-token-reviewers" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
