"""ModelRouteEval events (``kubectl modelroute eval``): the runtime starts a run for each new request."""

from typing import Any

import kopf

from modelroute.api.v1alpha1 import GROUP, VERSION
from modelroute.api.v1alpha1.modelrouteeval import EVAL_PLURAL
from modelroute.operator.handlers.registry import registry


@kopf.on.event(GROUP, VERSION, EVAL_PLURAL, registry=registry)
async def modelrouteeval_changed(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.runtime.eval_event(type, body)
