"""Quota pressure seen in the sidecars' ``/stats``, turned into Events on the ModelRoute (pure).

A sidecar reports, per route and target with ``limits``, the fraction of each per-minute quota
in use (``limits.utilisation``) and a ``pressure`` flag at 80% (see the sidecar's ``limits.py``).
The operator polls the selected sidecars (``quotawatch.py``); this module decides what to say:
one ``QuotaPressure`` Warning per ModelRoute for the targets that *crossed* 80% on some pod
since the last poll. A (route, target, pod) stays "reported" while it is under pressure, and is
forgotten once it is not (or its pod is gone), so the next crossing is announced again. The
reported set lives in memory: after an operator restart a pressure still in force is
announced once more, which is acceptable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from modelroute.api.stats import SidecarStats
from modelroute.operator.events import Notice
from modelroute.operator.status import MAX_LISTED

THRESHOLD = 0.8
REASON = "QuotaPressure"

Key = tuple[str, str, str]  # (ModelRoute key "ns/name", target, pod name)


@dataclass(frozen=True)
class Pressure:
    """One target of one ModelRoute at or above 80% of a quota on one pod."""

    route_key: str
    target: str
    pod: str
    dimension: str       # requests or tokens: the most used quota
    utilisation: float   # 0..1

    @property
    def key(self) -> Key:
        return (self.route_key, self.target, self.pod)


def has_limits(raw_route: Mapping[str, Any]) -> bool:
    """Whether any target of a ModelRoute (raw object) declares ``limits``: only those are polled."""
    targets = (raw_route.get("spec") or {}).get("targets") or []
    return any(isinstance(t, Mapping) and t.get("limits") for t in targets)


def pressures(route_key: str, route: str, pod: str, stats: SidecarStats) -> list[Pressure]:
    """The targets of ``route`` (its ``spec.route``) under pressure in one pod's ``/stats``."""
    doc = stats.routes.get(route)
    if doc is None:
        return []
    out = []
    for target, t in sorted(doc.targets.items()):
        limits = t.limits
        if limits is None or not limits.utilisation:
            continue
        use = limits.utilisation
        dimension = max(sorted(use), key=lambda d: use[d])
        if limits.pressure or use[dimension] >= THRESHOLD:
            out.append(Pressure(route_key, target, pod, dimension, use[dimension]))
    return out


def decide(
    observed: Iterable[Pressure], reported: frozenset[Key], *, answered: Iterable[str], present: Iterable[str],
) -> tuple[dict[str, Notice], frozenset[Key]]:
    """Events to post (ModelRoute key -> one notice) and the new reported set.

    ``observed``: the pressures in this poll; ``answered``: the pods whose ``/stats`` answered;
    ``present``: every sidecar pod of the namespace. What was reported for a pod that did not
    answer is kept (a flaky pod does not repeat itself) unless the pod is gone.
    """
    ok, alive = set(answered), set(present)
    now = {p.key: p for p in observed}
    fresh: dict[str, list[Pressure]] = {}
    for key, p in sorted(now.items()):
        if key not in reported:
            fresh.setdefault(p.route_key, []).append(p)
    out = {}
    for route_key, items in fresh.items():
        listed = "; ".join(f"target {p.target} on pod {p.pod}: {p.dimension} at {round(100 * p.utilisation)}%"
                           for p in items[:MAX_LISTED])
        more = f" (and {len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
        out[route_key] = Notice("Warning", REASON, f"Quota at or above {round(100 * THRESHOLD)}% of its per-minute "
                                                   f"limit: {listed}{more}.")
    kept = {k for k in reported if k[2] not in ok and k[2] in alive}
    return out, frozenset(kept | set(now))
