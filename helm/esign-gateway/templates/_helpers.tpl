{{- define "esign-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "esign-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "esign-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "esign-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "esign-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "esign-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "esign-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "esign-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "esign-gateway.secretName" -}}
{{- default (printf "%s-credentials" (include "esign-gateway.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{/* Drain plus grace plus a margin, so the kubelet never kills a draining pod. */}}
{{- define "esign-gateway.terminationGrace" -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add .Values.gateway.drainSeconds .Values.gateway.shutdownGraceSeconds 5 }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Whether a shared Redis is configured. */}}
{{- define "esign-gateway.redisEnabled" -}}
{{- $r := .Values.gateway.redis -}}
{{- if or $r.url $r.urlSecret.name $r.clusterUrls -}}true{{- end -}}
{{- end -}}

{{/*
The container's memory limit: an explicit resources.limits.memory, else
baseline + payload budget + headroom (see values.yaml).
*/}}
{{- define "esign-gateway.memoryLimit" -}}
{{- $limits := .Values.resources.limits | default dict -}}
{{- if $limits.memory -}}
{{- $limits.memory -}}
{{- else -}}
{{- $budgetMi := div (.Values.gateway.maxInflightBytes | int64) 1048576 -}}
{{- printf "%dMi" (add .Values.memory.baselineMi $budgetMi .Values.memory.headroomMi) -}}
{{- end -}}
{{- end }}
