"""Which ModelRoutes a pod gets: label selection and route-name conflict resolution.

Pure functions shared by the operator (rendering, status) and the sidecar (start-up from
the persisted bundle), so both always agree on the result and its hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import ValidationError

from modelroute.api.config import CanaryServing, SidecarConfig
from modelroute.api.v1alpha1 import LabelSelector, ModelRoute, SelectorOperator
from modelroute.api.v1alpha1.registry import ModelRegistry

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

CANARY_ANNOTATION = "modelroute.dev/canary"
"""On a route in the operator's RouteBundle: the JSON ``CanaryServing`` of a rollout in progress.

The bundle keeps each route's *stable* revision in ``routes``; a rollout's canary rides on its
route as this annotation, so every reader of the bundle (the operator's pushes, a sidecar that
starts from the bundle) renders the same config, canary included, with ``render_for_pod``.
"""


def with_canary(route: ModelRoute, canary: CanaryServing | None) -> ModelRoute:
    """``route`` carrying ``canary`` (None: carrying none) as its canary annotation."""
    annotations = {k: v for k, v in route.metadata.annotations.items() if k != CANARY_ANNOTATION}
    if canary is not None:
        annotations[CANARY_ANNOTATION] = canary.model_dump_json(by_alias=True, exclude_none=True)
    if annotations == route.metadata.annotations:
        return route
    return route.model_copy(update={"metadata": route.metadata.model_copy(update={"annotations": annotations})})


def canary_of(route: ModelRoute) -> CanaryServing | None:
    """The canary a bundle route carries (None: none, or an unreadable annotation)."""
    text = route.metadata.annotations.get(CANARY_ANNOTATION)
    if not text:
        return None
    try:
        return CanaryServing.model_validate_json(text)
    except ValidationError:
        return None


def matches(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; ``None`` selects everything."""
    if selector is None:
        return True
    for k, v in selector.match_labels.items():
        if labels.get(k) != v:
            return False
    for req in selector.match_expressions:
        present = req.key in labels
        if req.operator is SelectorOperator.IN and (not present or labels[req.key] not in req.values):
            return False
        if req.operator is SelectorOperator.NOT_IN and present and labels[req.key] in req.values:
            return False
        if req.operator is SelectorOperator.EXISTS and not present:
            return False
        if req.operator is SelectorOperator.DOES_NOT_EXIST and present:
            return False
    return True


def precedence(route: ModelRoute) -> tuple[datetime, str]:
    """Older ModelRoutes win a route-name conflict; the name breaks ties."""
    created = route.metadata.creation_timestamp or _EPOCH
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (created, route.key)


class Conflict(NamedTuple):
    """``loser`` claims the same route name as ``winner`` for at least one pod."""

    route: str
    winner: str
    loser: str


class Rendering(NamedTuple):
    config: SidecarConfig
    conflicts: list[Conflict]


def render_for_pod(routes: Iterable[ModelRoute], labels: Mapping[str, str], registry: ModelRegistry | None = None) -> Rendering:
    """The config for a pod with ``labels``: every selecting route, the oldest per route name.

    ``registry`` (the operator's, carried by the bundle) rides along in the config, so the
    sidecar checks windows and model ids against it; None: the built-in registry.
    """
    chosen: dict[str, ModelRoute] = {}
    conflicts: list[Conflict] = []
    for r in sorted((r for r in routes if matches(r.spec.selector, labels)), key=precedence):
        winner = chosen.get(r.spec.route)
        if winner is None:
            chosen[r.spec.route] = r
        else:
            conflicts.append(Conflict(route=r.spec.route, winner=winner.key, loser=r.key))
    ordered = [chosen[name] for name in sorted(chosen)]
    canaries = [c for r in ordered if (c := canary_of(r)) is not None and c.route == r.spec.route]
    routes = [with_canary(r, None) for r in ordered]
    return Rendering(config=SidecarConfig(routes=routes, canaries=canaries, model_registry=registry), conflicts=conflicts)
