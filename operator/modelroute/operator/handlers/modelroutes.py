"""ModelRoute events: keep the per-namespace index and mark the namespace dirty."""

from typing import Any

import kopf

from modelroute.api.v1alpha1 import GROUP, PLURAL, VERSION
from modelroute.operator.handlers.registry import registry
from modelroute.operator.validation import snapshot


@kopf.index(GROUP, VERSION, PLURAL, registry=registry)
async def modelroutes_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str | None, dict[str, Any]]:
    return {namespace: snapshot(body)}


@kopf.on.event(GROUP, VERSION, PLURAL, registry=registry)
async def modelroute_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.route_event(type, body)
