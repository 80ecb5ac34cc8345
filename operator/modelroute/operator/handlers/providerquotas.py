"""ProviderQuota events: keep the per-namespace index; the rebalance loop reads it every few seconds."""

from typing import Any

import kopf

from modelroute.api.v1alpha1 import GROUP, VERSION
from modelroute.api.v1alpha1.providerquota import QUOTA_PLURAL
from modelroute.operator.handlers.registry import registry
from modelroute.operator.validation import snapshot


@kopf.index(GROUP, VERSION, QUOTA_PLURAL, registry=registry)
async def providerquotas_by_namespace(namespace: str | None, body: kopf.Body, **_: Any) -> dict[str | None, dict[str, Any]]:
    return {namespace: snapshot(body)}


@kopf.on.event(GROUP, VERSION, QUOTA_PLURAL, registry=registry)
async def providerquota_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.quota_event()
