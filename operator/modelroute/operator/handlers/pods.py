"""Events of pods that carry a modelroute sidecar (label filter; the watch itself is label-selected)."""

from typing import Any

import kopf

from modelroute.operator.handlers.registry import registry
from modelroute.operator.pods import SIDECAR_LABEL, SIDECAR_LABEL_VALUE, snapshot

SIDECARS = {SIDECAR_LABEL: SIDECAR_LABEL_VALUE}


@kopf.index("v1", "pods", labels=SIDECARS, registry=registry)
async def sidecar_pods_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str | None, dict[str, Any]]:
    return {namespace: snapshot(body)}


@kopf.on.event("v1", "pods", labels=SIDECARS, registry=registry)
async def sidecar_pod_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.pod_event(type, body)
