{{/*
Expand the name of the chart.
*/}}
{{- define "thinkfl-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name, at most 57 characters so that "<fullname>-vllm" still
fits the 63 characters of a DNS label. If the release name contains the chart name, it is used
as the full name.
*/}}
{{- define "thinkfl-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 57 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 57 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The namespace of the namespaced resources.
*/}}
{{- define "thinkfl-operator.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version as used by the chart label.
*/}}
{{- define "thinkfl-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "thinkfl-operator.labels" -}}
helm.sh/chart: {{ include "thinkfl-operator.chart" . }}
{{ include "thinkfl-operator.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: thinkfl
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels (a component label is added per workload: operator or vllm).
*/}}
{{- define "thinkfl-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "thinkfl-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The name of the operator's ServiceAccount.
*/}}
{{- define "thinkfl-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "thinkfl-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The operator image: registry/repository, then @digest or :tag (default: appVersion).
*/}}
{{- define "thinkfl-operator.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The vLLM image.
*/}}
{{- define "thinkfl-operator.vllm.image" -}}
{{- $image := .Values.vllm.image }}
{{- if $image.registry }}
{{- printf "%s/%s:%s" $image.registry $image.repository $image.tag }}
{{- else }}
{{- printf "%s:%s" $image.repository $image.tag }}
{{- end }}
{{- end }}

{{/*
The name of the vLLM Deployment and Service.
*/}}
{{- define "thinkfl-operator.vllm.fullname" -}}
{{- printf "%s-vllm" (include "thinkfl-operator.fullname" .) }}
{{- end }}

{{/*
The operator's default engine: engine, else auto with the in-chart vLLM, else heuristic.
*/}}
{{- define "thinkfl-operator.engine" -}}
{{- if .Values.engine }}
{{- .Values.engine }}
{{- else if .Values.vllm.enabled }}
{{- "auto" }}
{{- else }}
{{- "heuristic" }}
{{- end }}
{{- end }}

{{/*
The operator's LLM base URL: llm.baseUrl, else the in-chart vLLM Service, else empty.
*/}}
{{- define "thinkfl-operator.llmBaseUrl" -}}
{{- if .Values.llm.baseUrl }}
{{- .Values.llm.baseUrl }}
{{- else if .Values.vllm.enabled }}
{{- printf "http://%s:%d/v1" (include "thinkfl-operator.vllm.fullname" .) (int .Values.vllm.service.port) }}
{{- end }}
{{- end }}

{{/*
The operator's model name: llm.model, else vllm.servedModelName.
*/}}
{{- define "thinkfl-operator.llmModel" -}}
{{- default .Values.vllm.servedModelName .Values.llm.model }}
{{- end }}

{{/*
The name of the ClusterRole and ClusterRoleBinding (cluster-scoped) and of the Roles and
RoleBindings in the watched namespaces: the full name and the release namespace, so that two
releases of the same name in different namespaces do not collide. At most 57 + 1 + 63 = 121
characters, within the 253 of an RBAC object's name.
*/}}
{{- define "thinkfl-operator.rbacName" -}}
{{- printf "%s-%s" (include "thinkfl-operator.fullname" .) (include "thinkfl-operator.namespace" .) }}
{{- end }}

{{/*
The namespace the Alertmanager webhook creates incidents in: alerts.namespace, else the first
watched namespace, else the release namespace. With watchNamespaces set, it must be one of them:
the operator may create incidents only there (the Roles) and diagnoses only those.
*/}}
{{- define "thinkfl-operator.alertsNamespace" -}}
{{- $watched := .Values.watchNamespaces | default list }}
{{- with .Values.alerts.namespace }}
{{- if and $watched (not (has . $watched)) }}
{{- fail (printf "alerts.namespace %q is not among watchNamespaces %v: the operator could neither create nor diagnose its incidents there; add it to watchNamespaces or leave alerts.namespace empty (default: %s)" . $watched (first $watched)) }}
{{- end }}
{{- . }}
{{- else }}
{{- if $watched }}
{{- first $watched }}
{{- else }}
{{- include "thinkfl-operator.namespace" . }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The operator Service's in-cluster URL (http://<fullname>.<namespace>:<port>; https with
alerts.tls.secretName).
*/}}
{{- define "thinkfl-operator.serviceUrl" -}}
{{- printf "%s://%s.%s:%d" (ternary "https" "http" (not (empty .Values.alerts.tls.secretName))) (include "thinkfl-operator.fullname" .) (include "thinkfl-operator.namespace" .) (int .Values.service.port) }}
{{- end }}

{{/*
The Secret holding the webhook's bearer token.
*/}}
{{- define "thinkfl-operator.webhookSecret" -}}
{{- .Values.alerts.token.secretName | default (printf "%s-webhook" (include "thinkfl-operator.fullname" .)) }}
{{- end }}

{{/*
The Secret holding the LLM API key: llm.apiKey.secretName, else (vLLM in the chart, its key
created) <fullname>-llm; empty when there is none.
*/}}
{{- define "thinkfl-operator.llmKeySecret" -}}
{{- if .Values.llm.apiKey.secretName }}
{{- .Values.llm.apiKey.secretName }}
{{- else if and .Values.vllm.enabled .Values.vllm.apiKey.create }}
{{- printf "%s-llm" (include "thinkfl-operator.fullname" .) }}
{{- end }}
{{- end }}

{{/*
"true" when a CA bundle for the backends is configured (tls.caBundle.configMap or .secret).
*/}}
{{- define "thinkfl-operator.backendCA" -}}
{{- if or .Values.tls.caBundle.configMap .Values.tls.caBundle.secret }}true{{- end }}
{{- end }}
