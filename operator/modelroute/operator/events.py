"""Which Kubernetes Events to post for one ModelRoute after a reconcile round (pure).

Events say what changed (a config was pushed, the route became ready) and what failed
(invalid spec, route-name conflict, push failures, a model with an announced shutdown). A failure is announced when its message
changes, not on every retry, so a broken pod does not flood ``kubectl describe``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelroute.api.v1alpha1 import ModelRouteStatus, Phase
from modelroute.operator.status import MAX_LISTED


@dataclass(frozen=True)
class Notice:
    type: str  # Normal or Warning
    reason: str
    message: str


def _message(status: ModelRouteStatus | None, type_: str) -> str | None:
    for c in status.conditions if status else []:
        if c.type == type_ and c.status.value == "True":
            return c.message
    return None


def _ready_message(status: ModelRouteStatus | None) -> str | None:
    for c in status.conditions if status else []:
        if c.type == "Ready":
            return c.message
    return None


def notices(previous: ModelRouteStatus | None, new: ModelRouteStatus, pushed: Sequence[str]) -> list[Notice]:
    """Events for the transition ``previous`` -> ``new``; ``pushed``: pods that took a push now."""
    out: list[Notice] = []
    if pushed:
        names = ", ".join(sorted(pushed)[:MAX_LISTED]) + (" ..." if len(pushed) > MAX_LISTED else "")
        out.append(Notice("Normal", "ConfigPushed", f"Pushed {new.config_hash} to {len(pushed)} pods ({names})."))
    if new.phase is Phase.INVALID and _ready_message(previous) != _ready_message(new):
        out.append(Notice("Warning", "InvalidSpec", _ready_message(new) or "invalid spec"))
    conflict = _message(new, "Conflict")
    if conflict and conflict != _message(previous, "Conflict"):
        out.append(Notice("Warning", "RouteNameConflict", conflict))
    deprecated = _message(new, "ModelDeprecated")
    if deprecated and deprecated != _message(previous, "ModelDeprecated"):
        out.append(Notice("Warning", "ModelDeprecated", deprecated))
    degraded = _message(new, "Degraded")
    if degraded and degraded != _message(previous, "Degraded"):
        out.append(Notice("Warning", "PushFailed", degraded))
    if new.phase is Phase.READY and (previous is None or previous.phase is not Phase.READY):
        out.append(Notice("Normal", "Ready", _ready_message(new) or "ready"))
    return out
