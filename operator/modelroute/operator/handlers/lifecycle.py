"""Operator lifecycle: log in with the operator's own connection, hand the indexes to the runtime."""

from typing import Any

import kopf

from modelroute.operator.handlers.registry import registry


@kopf.on.login(registry=registry)
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    return memo.runtime.connection.kopf_info()  # type: ignore[no-any-return]


@kopf.on.startup(registry=registry)
async def attach_indexes(memo: Any, **indexes: Any) -> None:
    memo.runtime.attach(indexes["modelroutes_by_namespace"], indexes["sidecar_pods_by_namespace"],
                        indexes["providerquotas_by_namespace"])


@kopf.on.cleanup(registry=registry)
async def stop_reconcilers(memo: kopf.Memo, **_: Any) -> None:
    await memo.runtime.scheduler.close()
    await memo.runtime.evals.close()
