{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "featurestore-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name (names every object of the release). */}}
{{- define "featurestore-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "featurestore-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "featurestore-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "featurestore-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "featurestore-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: kubeflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "featurestore-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "featurestore-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "featurestore-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when leader election is on: explicitly, or because there is more than one replica. */}}
{{- define "featurestore-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* Watched namespaces, validated (DNS labels, no duplicates). Empty: cluster-wide. */}}
{{- define "featurestore-operator.watchNamespaces" -}}
{{- range .Values.watchNamespaces -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .) -}}
{{- fail (printf "watchNamespaces: %q is not a namespace name (DNS label)" .) -}}
{{- end -}}
{{- end -}}
{{- .Values.watchNamespaces | uniq | join "," -}}
{{- end -}}

{{/*
The admin's pod settings of Feast components, as JSON: feastPodSettings, or its former name
podDefaults (read for one release; NOTES.txt warns). Both set is an error.
*/}}
{{- define "featurestore-operator.feastPodSettings" -}}
{{- if and .Values.feastPodSettings .Values.podDefaults -}}
{{- fail "set feastPodSettings only: podDefaults is its former name (deprecated)" -}}
{{- end -}}
{{- toJson (default .Values.podDefaults .Values.feastPodSettings | default dict) -}}
{{- end -}}
