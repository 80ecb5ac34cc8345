"""The JSONPatch (RFC 6902) that turns a pod into an injected pod.

Only ``add`` operations, each valid against the pod as the apiserver sent it: a missing
map or list is added whole, an existing one is extended. The sidecar goes first in
``initContainers`` so it is up before any other init container or app container starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.operator.injection import names, sidecar
from modelroute.operator.injection.settings import InjectionSettings

JSONPatchOp = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    ops: list[JSONPatchOp] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def escape(key: str) -> str:
    """A map key as a JSON Pointer segment (``/`` and ``~`` escaped)."""
    return key.replace("~", "~0").replace("/", "~1")


def _add_to_map(ops: list[JSONPatchOp], current: Mapping[str, Any] | None, path: str, items: dict[str, Any]) -> None:
    if not items:
        return
    if current is None:
        ops.append({"op": "add", "path": path, "value": items})
        return
    for k, v in items.items():
        ops.append({"op": "add", "path": f"{path}/{escape(k)}", "value": v})


def _append_to_list(ops: list[JSONPatchOp], current: list[Any] | None, path: str, items: list[Any]) -> None:
    if not items:
        return
    if current is None:
        ops.append({"op": "add", "path": path, "value": items})
        return
    ops.extend({"op": "add", "path": f"{path}/-", "value": item} for item in items)


def env_ops(pod: Mapping[str, Any], listen_port: int) -> list[JSONPatchOp]:
    """``*_BASE_URL`` env for every app container, keeping values the app already sets."""
    ops: list[JSONPatchOp] = []
    wanted = names.base_url_env(listen_port)
    spec = pod.get("spec", {})
    for key in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(key) or []):
            if c.get("name") == names.CONTAINER:
                continue
            env = c.get("env")
            have = {e.get("name") for e in env or []}
            missing = [{"name": n, "value": v} for n, v in wanted.items() if n not in have]
            _append_to_list(ops, env, f"/spec/{key}/{i}/env", missing)
    return ops


def _wants_env(pod: Mapping[str, Any]) -> bool:
    ann: Mapping[str, str] = pod.get("metadata", {}).get("annotations") or {}
    return ann.get(names.INJECT_ENV, "").strip().lower() == "true"


def plan(pod: Mapping[str, Any], settings: InjectionSettings) -> Plan:
    """Patch and warnings for injecting ``pod`` (call only when ``decide`` said inject)."""
    warnings = sidecar.Warnings()
    listen, admin = sidecar.ports(pod, settings, warnings)
    res = sidecar.resources(pod, settings, warnings)
    secrets = sidecar.credential_secrets(pod, warnings)
    meta = pod.get("metadata", {})
    spec = pod.get("spec", {})
    ops: list[JSONPatchOp] = []

    _add_to_map(ops, meta.get("labels"), "/metadata/labels", {names.SIDECAR_LABEL: "true"})
    ann = meta.get("annotations")
    _add_to_map(ops, ann, "/metadata/annotations", {
        names.ADMIN_PORT: str(admin),  # "add" on an existing member replaces it (RFC 6902)
        names.OPERATOR_PUBLIC_KEY: settings.operator_public_key_pem,
    })

    # Env first: its paths index initContainers as they are before the sidecar is inserted.
    if _wants_env(pod):
        ops += env_ops(pod, listen)

    container = sidecar.container(settings, listen=listen, admin=admin, res=res, secrets=secrets)
    if spec.get("initContainers") is None:
        ops.append({"op": "add", "path": "/spec/initContainers", "value": [container]})
    else:
        ops.append({"op": "add", "path": "/spec/initContainers/0", "value": container})
    _append_to_list(ops, spec.get("volumes"), "/spec/volumes", sidecar.volumes(secrets))
    return Plan(ops=ops, warnings=warnings.items)


def patch(pod: Mapping[str, Any], settings: InjectionSettings) -> list[JSONPatchOp]:
    """The JSONPatch ops that inject the sidecar into ``pod``."""
    return plan(pod, settings).ops


def reinvocation_plan(pod: Mapping[str, Any], settings: InjectionSettings) -> Plan:
    """For a pod that already has the sidecar: only env for app containers added since (by
    another webhook), so a reinvocation never adds a second sidecar."""
    if not _wants_env(pod):
        return Plan()
    warnings = sidecar.Warnings()
    listen, _ = sidecar.ports(pod, settings, warnings)
    return Plan(ops=env_ops(pod, listen), warnings=warnings.items)
