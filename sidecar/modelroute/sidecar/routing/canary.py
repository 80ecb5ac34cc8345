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

from modelroute.api.v1alpha1.strategy import variant_for

if TYPE_CHECKING:
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
