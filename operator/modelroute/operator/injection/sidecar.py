"""The injected objects: the native-sidecar container and the volumes only it mounts.

Pure builders of plain Kubernetes dicts. Per-pod overrides come from annotations; a bad
override is ignored with a warning (returned, shown by ``kubectl`` as an admission warning)
rather than rejecting the pod.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.operator.injection import names
from modelroute.operator.injection.settings import InjectionSettings, Probe, StartGate

# Kubernetes resource.Quantity syntax (apimachinery/pkg/api/resource/quantity.go).
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass
class Warnings:
    """Admission warnings collected while building (shown to the user, never fatal)."""

    items: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.items.append(message)


def _port(annotations: Mapping[str, str], key: str, default: int, warnings: Warnings) -> int:
    raw = annotations.get(key)
    if raw is None:
        return default
    if raw.strip().isdigit() and 1 <= int(raw) <= 65535:
        return int(raw)
    warnings.add(f"{key}={raw!r} is not a port number; using {default}")
    return default


def ports(pod: Mapping[str, Any], settings: InjectionSettings, warnings: Warnings) -> tuple[int, int]:
    """(inbound port, admin port) for this pod: settings, overridable by pod annotation."""
    ann = pod.get("metadata", {}).get("annotations") or {}
    listen = _port(ann, names.LISTEN_PORT, settings.listen_port, warnings)
    admin = _port(ann, names.ADMIN_PORT, settings.admin_port, warnings)
    if listen == admin:
        warnings.add(f"{names.LISTEN_PORT} and {names.ADMIN_PORT} are both {listen}; using the defaults")
        return settings.listen_port, settings.admin_port
    return listen, admin


def resources(pod: Mapping[str, Any], settings: InjectionSettings, warnings: Warnings) -> dict[str, dict[str, str]]:
    """Settings' resources with per-pod annotation overrides; an empty value removes the entry."""
    ann = pod.get("metadata", {}).get("annotations") or {}
    out = settings.resources.as_dict()
    for (kind, res), key in names.RESOURCE_ANNOTATIONS.items():
        if key not in ann:
            continue
        value = ann[key].strip()
        if value == "":
            out.get(kind, {}).pop(res, None)
        elif _QUANTITY.match(value):
            out.setdefault(kind, {})[res] = value
        else:
            warnings.add(f"{key}={ann[key]!r} is not a Kubernetes quantity; using the default")
    return {k: v for k, v in out.items() if v}


def credential_secrets(pod: Mapping[str, Any], warnings: Warnings) -> list[str]:
    """Secret names from the credentials annotation (comma-separated, de-duplicated, in order)."""
    raw = (pod.get("metadata", {}).get("annotations") or {}).get(names.CREDENTIALS, "")
    out: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name or name in out:
            continue
        if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            warnings.add(f"{names.CREDENTIALS}: {name!r} is not a valid Secret name; ignored")
            continue
        out.append(name)
    return out


def _http_probe(path: str, port: int, probe: Probe) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port, "scheme": "HTTP"},
        "periodSeconds": probe.period_seconds,
        "failureThreshold": probe.failure_threshold,
        "timeoutSeconds": probe.timeout_seconds,
    }


# The postStart hook's poller (stdlib only; run with -I -S). One short-lived connection per try;
# Ready = the status line says 200; anything else (503 before the first config, refused) = retry.
_GATE = (
    "import socket,sys,time\n"
    "end=time.monotonic()+{timeout}\n"
    "while time.monotonic()<end:\n"
    " try:\n"
    "  with socket.create_connection(('127.0.0.1',{port}),1) as s:\n"
    "   s.sendall(b'GET /readyz HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nConnection: close\\r\\n\\r\\n')\n"
    "   if s.makefile('rb').readline().split()[1:2]==[b'200']:sys.exit(0)\n"
    " except OSError:pass\n"
    " time.sleep({interval})\n"
    "sys.exit('modelroute-sidecar: /readyz not 200 after {timeout} s')\n"
)


def start_gate(admin: int, gate: StartGate) -> dict[str, Any]:
    """postStart exec hook: returns once the sidecar's ``/readyz`` is 200 (fails after the timeout)."""
    code = _GATE.format(port=admin, timeout=gate.timeout_seconds, interval=gate.poll_interval_ms / 1000)
    return {"exec": {"command": [gate.python, "-I", "-S", "-c", code]}}


def container(
    settings: InjectionSettings, *, listen: int, admin: int, res: dict[str, dict[str, str]], secrets: list[str]
) -> dict[str, Any]:
    """The sidecar as a native sidecar: an init container with ``restartPolicy: Always``."""
    mounts: list[dict[str, Any]] = [
        {"name": names.VOLUME_PODINFO, "mountPath": names.PODINFO_DIR, "readOnly": True},
        {"name": names.VOLUME_BUNDLE, "mountPath": names.BUNDLE_DIR, "readOnly": True},
        {"name": names.VOLUME_TMP, "mountPath": names.TMP_DIR},
        # Shadows the service-account token the apiserver would mount: the sidecar needs none.
        {"name": names.VOLUME_NO_SA_TOKEN, "mountPath": names.SA_TOKEN_DIR, "readOnly": True},
    ]
    mounts += [
        {"name": f"{names.VOLUME_CREDENTIALS_PREFIX}{i}", "mountPath": f"{names.SECRETS_DIR}/{secret}", "readOnly": True}
        for i, secret in enumerate(secrets)
    ]
    c: dict[str, Any] = {
        "name": names.CONTAINER,
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "restartPolicy": "Always",
        "args": [
            "sidecar",
            "--listen", f"127.0.0.1:{listen}",
            "--admin-listen", f"0.0.0.0:{admin}",
            "--operator-public-key", names.PUBLIC_KEY_FILE,
            "--bundle-dir", names.BUNDLE_DIR,
            "--pod-labels-file", names.LABELS_FILE,
        ],
        "env": [
            {"name": names.ENV_POD_NAME, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
            {"name": names.ENV_POD_NAMESPACE, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}},
            {"name": names.ENV_POD_UID, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.uid"}}},
            {"name": names.ENV_STATE_DIR, "value": names.STATE_DIR},
            {"name": names.ENV_SECRETS_DIR, "value": names.SECRETS_DIR},
            # No docstrings or asserts in memory (~5 MB less per pod; the image ships the -OO bytecode).
            {"name": "PYTHONOPTIMIZE", "value": "2"},
        ],
        "ports": [{"name": names.ADMIN_PORT_NAME, "containerPort": admin, "protocol": "TCP"}],
        # No startupProbe: the postStart hook gates the app containers (see settings.StartGate).
        "lifecycle": {"postStart": start_gate(admin, settings.start_gate)},
        "readinessProbe": _http_probe("/readyz", admin, settings.readiness_probe),
        "livenessProbe": _http_probe("/healthz", admin, settings.liveness_probe),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": settings.run_as_user,
            "runAsGroup": settings.run_as_user,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if res:
        c["resources"] = res
    return c


def volumes(secrets: list[str]) -> list[dict[str, Any]]:
    """The pod volumes the sidecar mounts (none of them is mounted into app containers)."""
    vols: list[dict[str, Any]] = [
        {
            "name": names.VOLUME_PODINFO,
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                    {
                        "path": "operator-public-key",
                        "fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{names.OPERATOR_PUBLIC_KEY}']"},
                    },
                ],
            },
        },
        # optional: pods start before the operator has written the namespace's first bundle.
        {"name": names.VOLUME_BUNDLE, "configMap": {"name": names.BUNDLE_CONFIGMAP, "optional": True}},
        {"name": names.VOLUME_TMP, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        {"name": names.VOLUME_NO_SA_TOKEN, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    vols += [
        # Secret volumes follow updates (no subPath), so a rotated key is picked up without a restart.
        {"name": f"{names.VOLUME_CREDENTIALS_PREFIX}{i}", "secret": {"secretName": secret, "defaultMode": 0o444}}
        for i, secret in enumerate(secrets)
    ]
    return vols
