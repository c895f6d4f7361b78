{{- define "brain-ai-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
NAME within 63 characters (a DNS-1123 label's limit): as it is when it fits, else its first 54
characters and 8 hex digits of the SHA-256 of KEY, so two long names that share a prefix still
differ. Called with a list: (list NAME KEY).
*/}}
{{- define "brain-ai-operator.fit" -}}
{{- $name := index . 0 -}}
{{- if le (len $name) 63 -}}
{{- $name -}}
{{- else -}}
{{- printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (index . 1 | sha256sum | trunc 8) -}}
{{- end -}}
{{- end -}}

{{/* A namespaced object's name: the full name and a suffix ("metrics"), within 63 characters. */}}
{{- define "brain-ai-operator.suffixedName" -}}
{{- $name := printf "%s-%s" (include "brain-ai-operator.fullname" .context) .suffix -}}
{{- include "brain-ai-operator.fit" (list $name $name) -}}
{{- end -}}

{{/*
The name of the release's cluster-scoped objects (ClusterRole, ClusterRoleBinding): the full name
and the release's namespace, so that releases of the same name in two namespaces do not collide.
Namespaced objects keep the full name alone. Past 63 characters the hash is of namespace/release,
the release's identity.
*/}}
{{- define "brain-ai-operator.clusterScopedName" -}}
{{- $name := printf "%s-%s" (include "brain-ai-operator.fullname" .) .Release.Namespace -}}
{{- include "brain-ai-operator.fit" (list $name (printf "%s/%s" .Release.Namespace .Release.Name)) -}}
{{- end -}}

{{- define "brain-ai-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "brain-ai-operator.labels" -}}
{{ include "brain-ai-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brain-ai
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "brain-ai-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "brain-ai-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* What the operator does to BrainAIClusters and the children it owns: nothing more. */}}
{{- define "brain-ai-operator.rules" -}}
- apiGroups: ["brainai.io"]
  resources: ["brainaiclusters"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["brainai.io"]
  resources: ["brainaiclusters/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: [""]
  resources: ["configmaps", "services", "serviceaccounts", "secrets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  # status names the first pod-level reason a tier is not ready; PostgreSQL members are rolled
  # (deleted) one at a time; Patroni's Role grants patch/update, which its grantor must hold
  resources: ["pods"]
  verbs: ["get", "list", "watch", "delete", "patch", "update"]
- apiGroups: [""]
  # Patroni's DCS keys: the operator reads the leader lock, writes switchover requests and the
  # dynamic configuration, and grants Patroni the same
  resources: ["endpoints"]
  verbs: ["get", "list", "watch", "create", "update", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]  # Patroni's, in each cluster's namespace
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]  # grown when storage.size grows
  verbs: ["get", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["batch"]
  resources: ["jobs", "cronjobs"]  # Redis' cluster Jobs; PostgreSQL's backup schedule and on-demand backups
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors", "prometheusrules"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
