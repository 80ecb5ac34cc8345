"""Lease arithmetic: split one quota limit into per-pod shares that never sum above it (pure).

The operator cannot know, at any instant, which lease a pod enforces: a push may be in flight,
lost, or applied with its answer lost. So it keeps, per pod, every lease the pod *may* be
enforcing (``PodLedger.candidates``: the last one the pod acknowledged and every newer one sent
since), and takes as the pod's claim at time t the largest cap among them (``modelroute.api.leases.cap``:
the share, then min(share, limit / podCount) after expiry, then limit / podCount). The claim is an
upper bound of what the pod enforces, now and in the future, whatever the pushes do, the operator
included: when it stops, the pods follow ``cap`` alone.

Invariant (I): for every t from now on, the sum of the claims is at most the limit.

A round (``plan``) keeps (I). It adds a new lease to a pod only if, at every future instant, the sum of
the claims stays within the limit; at an instant where it is already above (a pod joined and the others
have not acknowledged their smaller shares yet), only a lease no larger than each of the pod's
candidates, so whatever the pod holds, applying it never raises what the pod sends. Claims are step functions that
change only at the candidates' expiry and fallback instants, so checking those instants suffices,
and the largest admissible share has a closed form per instant (``_room``). Consequences:

- two phases: a lower share does not lower a claim until the pod acknowledges it (``acknowledge``
  drops the older candidates), so capacity taken from one pod reaches another only a round later;
- a pod that leaves releases its claim when it is gone (its containers stopped);
- a pod that joins claims nothing for ``joinWait`` seconds, then limit / podCount of the bundle
  (``joining``), which the operator plans around like any other lease;
- renewals with an unchanged share keep (I): the later expiry only extends the same share;
- the fallback shares are limit / podCount with the pods the operator sees, so they sum to the limit.

A join the operator does not see (operator down) adds limit / podCount on top: documented in
docs/quota.md. Shares are whole numbers (floors): rounding only lowers the sum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from modelroute.api.leases import cap


@dataclass(frozen=True)
class Grant:
    """One lease of one dimension (requests or tokens per minute) of one quota to one pod."""

    generation: int
    share: float
    fallback: float         # limit / pod count the lease carries
    expires: float          # seconds, wall clock
    fallback_at: float

    def cap(self, t: float) -> float:
        return cap(self.share, self.fallback, self.expires, self.fallback_at, t)


@dataclass(frozen=True)
class PodLedger:
    """The leases one pod may be enforcing: the acknowledged one and every newer one sent."""

    candidates: tuple[Grant, ...]
    acked: int = 0

    def claim(self, t: float) -> float:
        return max((g.cap(t) for g in self.candidates), default=0.0)


@dataclass(frozen=True)
class Terms:
    """The quota's side of a round: limit, lease length and the grace before the fallback share."""

    limit: float
    lease_seconds: float = 30.0
    grace_seconds: float = 30.0
    idle_share: float = 0.1


@dataclass(frozen=True)
class Round:
    """What one round decided: the grants to push (pod -> grant) and the pessimistic peak after it."""

    grants: dict[str, Grant] = field(default_factory=dict)
    ledgers: dict[str, PodLedger] = field(default_factory=dict)
    peak: float = 0.0


def joining(now: float, join_wait: float, share: float) -> PodLedger:
    """A pod that has no lease yet: nothing for ``join_wait`` seconds, then ``share`` (limit / podCount of the bundle)."""
    return PodLedger((Grant(0, 0.0, share, now + join_wait, now + join_wait),))


def unknown(now: float, terms: Terms, pods: int) -> PodLedger:
    """A pod whose lease the operator does not know (it just started, the pod did not say): the whole limit
    until any lease it holds must have run out, then limit / pods."""
    end = now + terms.lease_seconds + terms.grace_seconds
    return PodLedger((Grant(0, terms.limit, terms.limit / max(pods, 1), end, end),))


def acknowledge(ledger: PodLedger, generation: int) -> PodLedger:
    """The pod applied ``generation``: it never enforces an older lease again (the sidecar ignores older ones)."""
    if generation <= ledger.acked:
        return ledger
    kept = tuple(g for g in ledger.candidates if g.generation >= generation)
    return PodLedger(kept or ledger.candidates[-1:], generation)


def peak(ledgers: Iterable[PodLedger], now: float) -> float:
    """The largest sum of claims at any instant from ``now`` on."""
    ledgers = list(ledgers)
    return max((sum(lg.claim(t) for lg in ledgers) for t in _instants(ledgers, now)), default=0.0)


def _instants(ledgers: Iterable[PodLedger], now: float, extra: Iterable[float] = ()) -> list[float]:
    points = {now, *extra}
    for lg in ledgers:
        for g in lg.candidates:
            points.update(x for x in (g.expires, g.fallback_at) if x > now)
    return sorted(points)


def targets(limit: float, demands: Mapping[str, float], idle_share: float = 0.1) -> dict[str, float]:
    """The shares the operator aims at: a floor for every pod, the rest in proportion to demand.

    A pod with demand gets at least limit / (2N), or twice its demand when that is less (it is served
    and has room to grow; the rest is not kept idle); one without gets ``idle_share`` * limit / N (room
    to start). The rest is split in proportion to demand (evenly when no pod has any). Sum <= limit.
    """
    n = len(demands)
    if n == 0:
        return {}
    busy, idle = limit / (2 * n), min(idle_share, 0.5) * limit / n
    base = {p: max(idle, min(busy, 2 * d)) if d > 0 else idle for p, d in demands.items()}
    rest = max(0.0, limit - sum(base.values()))
    total = sum(d for d in demands.values() if d > 0)
    out = {}
    for p, d in demands.items():
        extra = rest * d / total if total > 0 else rest / n
        out[p] = float(math.floor(base[p] + (extra if d > 0 or total == 0 else 0.0)))
    return out


def plan(terms: Terms, ledgers: Mapping[str, PodLedger], wanted: Mapping[str, float], now: float, generation: int) -> Round:
    """One round: new leases for the pods in ``wanted`` (pod -> share), as close to it as (I) allows.

    ``ledgers`` must hold every pod that may send (joining pods included). Shrinking pods are
    served first; a share is cut to what the peak allows, and a pod whose fallback alone would
    break it gets nothing this round.
    """
    pods = len(ledgers)
    fallback = terms.limit / max(pods, 1)
    expires = now + terms.lease_seconds
    fallback_at = expires + terms.grace_seconds
    current = dict(ledgers)
    instants = _instants(current.values(), now, (expires, fallback_at))
    sums = [sum(lg.claim(t) for lg in current.values()) for t in instants]
    grants: dict[str, Grant] = {}
    for pod in sorted(wanted, key=lambda p: (wanted[p] - current[p].claim(now), p)):
        lg = current[pod]
        share = _room(lg, wanted[pod], fallback, expires, fallback_at, instants, sums, terms.limit)
        if share is None:
            continue
        grant = Grant(generation, float(math.floor(share)), fallback, expires, fallback_at)
        new = PodLedger((*lg.candidates, grant), lg.acked)
        sums = [s - lg.claim(t) + new.claim(t) for s, t in zip(sums, instants, strict=True)]
        current[pod] = new
        grants[pod] = grant
    return Round(grants, current, max(sums, default=0.0))


def _room(lg: PodLedger, want: float, fallback: float, expires: float, fallback_at: float,
          instants: list[float], sums: list[float], limit: float) -> float | None:
    """The largest share <= ``want`` a new lease may carry at every instant.

    Where the claims sum to at most the limit, the pod may claim what the others leave. Where they
    sum to more (pods joined that the operator has not shrunk room for yet), the new lease may not
    exceed the smallest candidate: whichever lease the pod holds, applying this one cannot raise it.
    """
    share = max(0.0, want)
    for t, s in zip(instants, sums, strict=True):
        free = lg.claim(t) + limit - s if s <= limit + 1e-9 else min(g.cap(t) for g in lg.candidates)
        if t >= fallback_at:
            if fallback > free + 1e-9:
                return None
        elif t >= expires:
            if fallback > free + 1e-9:
                share = min(share, max(free, 0.0))
        else:
            share = min(share, max(free, 0.0))
    return share


def wanted(terms: Terms, ledgers: Mapping[str, PodLedger], demands: Mapping[str, float], now: float) -> dict[str, float]:
    """The shares to aim at this round: ``targets``, with room left for pods that never acknowledged a lease.

    Such a pod (just joined, or unknown after an operator restart) may take its whole pending claim
    (limit / podCount of the bundle) whatever the operator does, so the others share what is left;
    the pod itself aims at its ordinary target, and is planned like the others once it acknowledges.
    """
    pinned = {p: max(lg.claim(t) for t in _instants([lg], now)) for p, lg in ledgers.items() if lg.acked == 0}
    free = max(0.0, terms.limit - sum(pinned.values()))
    out = targets(free, {p: demands.get(p, 0.0) for p in ledgers if p not in pinned}, terms.idle_share)
    full = targets(terms.limit, {p: demands.get(p, 0.0) for p in ledgers}, terms.idle_share)
    out.update({p: full[p] for p in pinned})
    return out


def prune(ledger: PodLedger, now: float) -> PodLedger:
    """``ledger`` without candidates a newer one covers at every instant from ``now`` on (claims unchanged).

    Only a newer one: acknowledging a generation drops the older candidates, and the cover must stay.
    """
    gs = ledger.candidates
    points = _instants([ledger], now)

    def covers(h: Grant, g: Grant) -> bool:
        return all(h.cap(t) >= g.cap(t) for t in points)

    kept = [g for i, g in enumerate(gs)
            if not any(j != i and h.generation >= g.generation and covers(h, g) and (not covers(g, h) or j > i)
                       for j, h in enumerate(gs))]
    return PodLedger(tuple(kept), ledger.acked)


def commit(ledgers: Mapping[str, PodLedger], grants: Mapping[str, Grant]) -> dict[str, PodLedger]:
    """``ledgers`` with ``grants`` (a subset of a round's) added as candidates."""
    out = dict(ledgers)
    for pod, g in grants.items():
        lg = out[pod]
        out[pod] = replace(lg, candidates=(*lg.candidates, g))
    return out
