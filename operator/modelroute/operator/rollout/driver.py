"""Glue between the pure rollout engine and the reconciler: state in, served routes out.

For a ModelRoute with ``spec.strategy`` the sidecars serve its *stable* revision in
``routes`` and the revision being rolled out as a ``CanaryServing``. Both are kept in the
signed RouteBundle (the stable spec as the route, the canary as its ``modelroute.dev/canary``
annotation), so the bundle is the cluster-side record of the stable spec, an operator restart
finds it there, and a sidecar starting from the bundle renders the very config the operator
pushes. ``status.rollout`` holds the rest of the state. Everything here is pure; the
reconciler gathers the inputs (bundle, pods, ``/stats``) and applies the outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelroute.api.config import CanaryServing
from modelroute.api.selection import matches, render_for_pod, with_canary
from modelroute.api.stats import SidecarStats
from modelroute.api.v1alpha1 import ModelRoute
from modelroute.api.v1alpha1.registry import ModelRegistry
from modelroute.api.v1alpha1.strategy import (
    ACTION_ANNOTATION,
    NOT_SERVED,
    GateStatus,
    RolloutPhase,
    RolloutStatus,
    revision_of,
)
from modelroute.operator.pods import SidecarPod
from modelroute.operator.rollout import Decision, Desired, Observations, evidence_from_stats, serving_of, step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteRollout:
    key: str
    decision: Decision
    served: ModelRoute   # what the sidecars serve: the stable spec, with the canary annotation when one is active


def state_of(raw: Mapping[str, Any]) -> RolloutStatus | None:
    """``status.rollout`` as stored in the cluster (None when absent or unreadable)."""
    doc = (raw.get("status") or {}).get("rollout")
    if not isinstance(doc, Mapping) or not doc:
        return None
    try:
        return RolloutStatus.model_validate(doc)
    except ValueError:
        return None


def action_of(raw: Mapping[str, Any]) -> str | None:
    value = ((raw.get("metadata") or {}).get("annotations") or {}).get(ACTION_ANNOTATION)
    return str(value) if value else None


def takes_part(route: ModelRoute, state: RolloutStatus | None) -> bool:
    """Whether the route goes through the rollout engine (it has a strategy, or had a rollout)."""
    return route.spec.strategy is not None or state is not None


def all_acked(route: ModelRoute, previous: Iterable[ModelRoute] | None, pods: Iterable[SidecarPod],
              served: Mapping[str, str], registry: ModelRegistry | None = None) -> bool:
    """Every reachable pod the route selects serves what the last bundle renders for it.

    The bundle is written before every push with what that push serves, so it is the
    serving of the input state; ``served`` (pod uid -> hash) holds fresh acks.
    """
    if previous is None:
        return False
    previous = list(previous)
    for pod in pods:
        if not pod.reachable or not matches(route.spec.selector, pod.labels):
            continue
        have = served.get(pod.uid, pod.served_hash)
        if have != render_for_pod(previous, pod.labels, registry).config.hash:
            return False
    return True


def needs_evidence(state: RolloutStatus | None, route: ModelRoute) -> str | None:
    """The run id whose evidence the next step judges (None: no analysis would read it)."""
    strategy = route.spec.strategy
    if state is None or state.canary_revision is None or state.phase is RolloutPhase.DEGRADED or state.stable_revision is None:
        return None
    if strategy is None or strategy.canary is None or strategy.canary.analysis is None:
        return None
    return serving_of(state, strategy).run_id


def decide(
    raw: Mapping[str, Any], route: ModelRoute, state: RolloutStatus | None, previous: ModelRoute | None,
    acked: bool, stats: Mapping[str, SidecarStats], now: datetime, gate: GateStatus | None = None,
) -> RouteRollout:
    """One step of the route's rollout and the route the sidecars must serve after it."""
    desired = Desired(revision_of(route.spec), route.spec.strategy, action_of(raw))
    stable_ev, canary_ev = evidence_from_stats(stats, route.spec.route, run) if (run := needs_evidence(state, route)) else (None, None)
    obs = Observations(all_acked=acked, gate=gate) if stable_ev is None or canary_ev is None else \
        Observations(all_acked=acked, stable=stable_ev, canary=canary_ev, gate=gate)
    decision = step(state, desired, obs, now)
    return RouteRollout(key=route.key, decision=decision, served=served_route(route, decision, previous))


def served_route(route: ModelRoute, decision: Decision, previous: ModelRoute | None) -> ModelRoute:
    """The stable revision's spec (with this route's selector and strategy) plus the active canary."""
    serving = decision.serving
    base = route
    if serving.stable_revision != revision_of(route.spec):
        if previous is not None and revision_of(previous.spec) == serving.stable_revision:
            spec = previous.spec.model_copy(update={f: getattr(route.spec, f) for f in NOT_SERVED})
            base = route.model_copy(update={"spec": spec})
        else:
            log.warning("%s: the spec of stable revision %s is not in the route bundle; serving the current spec",
                        route.key, serving.stable_revision)
    canary = None
    if serving.canary_revision is not None and serving.run_id is not None and serving.canary_revision == revision_of(route.spec):
        canary = CanaryServing(
            route=route.spec.route, revision=serving.canary_revision, run_id=serving.run_id,
            spec=route.spec.model_copy(update=dict.fromkeys(NOT_SERVED)),
            weight=serving.weights.canary, mirror=serving.weights.mirror, sticky_header=serving.sticky_header,
        )
    return with_canary(base, canary)
