{{/* Names and labels shared by every template. */}}

{{- define "modelroute.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "modelroute.fullname" -}}
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

{{- define "modelroute.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "modelroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelroute
{{- end -}}

{{/* Every pod of the release (operator and webhook): the metrics Service selects these. */}}
{{- define "modelroute.instanceLabels" -}}
app.kubernetes.io/name: {{ include "modelroute.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "modelroute.selectorLabels" -}}
{{ include "modelroute.instanceLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "modelroute.webhookSelectorLabels" -}}
{{ include "modelroute.instanceLabels" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "modelroute.webhookServiceAccountName" -}}
{{- if .Values.webhook.serviceAccount.create -}}
{{- default (printf "%s-webhook" (include "modelroute.fullname" .)) .Values.webhook.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.webhook.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelroute.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "modelroute.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "modelroute.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "modelroute.sidecarImage" -}}
{{- $repo := default .Values.image.repository .Values.sidecar.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}

{{- define "modelroute.signingSecretName" -}}
{{- default (printf "%s-signing-key" (include "modelroute.fullname" .)) .Values.signingKey.existingSecret -}}
{{- end -}}

{{- define "modelroute.webhookServiceName" -}}
{{- printf "%s-webhook" (include "modelroute.fullname" .) -}}
{{- end -}}

{{- define "modelroute.webhookTlsSecretName" -}}
{{- if eq .Values.webhook.tls.mode "secret" -}}
{{- .Values.webhook.tls.existingSecret -}}
{{- else -}}
{{- default (printf "%s-webhook-tls" (include "modelroute.fullname" .)) .Values.webhook.tls.managedSecretName -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the webhook never sees: system namespaces, the release's own, and extra ones. */}}
{{- define "modelroute.excludedNamespaces" -}}
{{- $ns := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- range .Values.webhook.excludedNamespaces }}{{ $ns = append $ns . }}{{ end -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{/* Settings shared by both webhook entries. */}}
{{- define "modelroute.webhookCommon" -}}
admissionReviewVersions: ["v1"]
# The webhook only adds to the pod it is given; dry-run requests are safe.
sideEffects: None
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
reinvocationPolicy: {{ .Values.webhook.reinvocationPolicy }}
matchPolicy: Equivalent
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE"]
    resources: ["pods"]
    scope: Namespaced
objectSelector:
  # A pod can always opt out with this label too (the annotation works as well).
  matchExpressions:
    - key: modelroute.dev/inject
      operator: NotIn
      values: ["false", "disabled"]
{{- end -}}
