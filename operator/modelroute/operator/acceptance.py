"""Which version of each ModelRoute the sidecars should serve.

A valid ModelRoute's current spec is accepted. An invalid one keeps its last accepted
version (read back from the persisted bundle), so nothing is half-applied and sidecars keep
their last good config. A route deleted from the cluster is gone from the result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelroute.api.v1alpha1 import ModelRoute
from modelroute.operator.validation import Validation


def accept(validations: Iterable[Validation], previous: Mapping[str, ModelRoute]) -> dict[str, ModelRoute]:
    """route key -> accepted route, for every ModelRoute that exists now."""
    accepted: dict[str, ModelRoute] = {}
    for v in validations:
        if v.valid and v.route is not None:
            accepted[v.key] = v.route
            continue
        last = previous.get(v.key)
        # A deleted and re-created object with the same name is a different route.
        if last is not None and (v.uid is None or last.metadata.uid in (None, v.uid)):
            accepted[v.key] = last
    return accepted


def by_key(routes: Iterable[ModelRoute]) -> dict[str, ModelRoute]:
    return {r.key: r for r in routes}
