"""A canary revision served beside a route's stable one: which variant answers a request.

The operator pushes each route's stable revision in ``SidecarConfig.routes`` and, while a
rollout runs, a ``CanaryServing`` beside it. ``Runtime.build`` compiles the canary's spec
into two extra ``RouteRuntime``s sharing one set of adapters: ``route`` answers live
traffic (weight) and ``mirror_route`` serves shadow copies (mirror), whose attempts are not
inbound requests and so are not counted in the route's ``/stats``.

Choice per request (pure, cheap; a route without a canary never gets here):

* sticky: with the ``stickyBy`` header present, ``variant_for(value, canary revision,
  weight)``, the same answer on every pod and process;
* otherwise a random draw by weight; mirroring is a second random draw, for requests
  answered by stable only.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from modelroute.api.config import SidecarConfig
from modelroute.api.v1alpha1.strategy import variant_for

if TYPE_CHECKING:
    from modelroute.sidecar.config.secrets import KeyResolver
    from modelroute.sidecar.routing.runtime import RouteRuntime

STABLE: Literal["stable"] = "stable"
CANARY: Literal["canary"] = "canary"
MIRROR: Literal["mirror"] = "mirror"
Variant = Literal["stable", "canary", "mirror"]


@dataclass(eq=False)
class Canary:
    """The compiled canary of one route."""

    revision: str
    run_id: str
    weight: int                     # percent of live requests answered by the canary
    mirror: int                     # percent of stable-answered requests copied to the canary
    sticky_header: str | None       # as pushed (aiohttp header lookups are case-insensitive)
    route: RouteRuntime             # answers live traffic (variant "canary")
    mirror_route: RouteRuntime      # answers shadow copies (variant "mirror")

    def pick(self, headers: Mapping[str, str], draw: Callable[[], float] = random.random) -> Literal["stable", "canary"]:
        """Which revision answers a request with these headers."""
        w = self.weight
        if w <= 0:
            return STABLE
        if w >= 100:
            return CANARY
        if self.sticky_header is not None:
            key = headers.get(self.sticky_header)
            if key:
                return variant_for(key, self.revision, w)
        return CANARY if draw() * 100.0 < w else STABLE

    def mirrors(self, draw: Callable[[], float] = random.random) -> bool:
        """Whether a request answered by stable is also copied to the canary."""
        m = self.mirror
        return m > 0 and (m >= 100 or draw() * 100.0 < m)


def canary_problems(config: SidecarConfig, keys: KeyResolver | None) -> list[str]:
    """Semantic problems of ``config.canaries`` (one per line, like ``configfile.problems``)."""
    problems: list[str] = []
    routes = {r.spec.route for r in config.routes}
    seen: set[str] = set()
    for i, c in enumerate(config.canaries):
        where = f"canaries[{i}] ({c.route})"
        if c.route not in routes:
            problems.append(f"{where}: route: no route {c.route!r} in this config to add a canary to")
        if c.spec.route != c.route:
            problems.append(f"{where}: spec.route: is {c.spec.route!r}, expected the canary's route {c.route!r}")
        if c.route in seen:
            problems.append(f"{where}: route: route {c.route!r} already has a canary")
        seen.add(c.route)
        if keys is None:
            continue
        for ti, t in enumerate(c.spec.targets):
            p = keys.problem(t)
            if p is not None:
                assert t.api_key is not None
                which = "env" if t.api_key.env is not None else "file" if t.api_key.file is not None else "secretKeyRef"
                problems.append(f"{where}: spec.targets[{ti}].apiKey.{which}: {p}")
    return problems
