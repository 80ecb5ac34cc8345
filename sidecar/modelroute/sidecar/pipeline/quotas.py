"""Quota leases in the sidecar: which cap each ProviderQuota puts on its governed targets, now.

The operator pushes leases (``PUT /leases``); the route bundle carries the quotas' terms for a pod
that has none. What a lease allows over time is ``modelroute.api.leases.cap``, the definition the
operator plans with. This book turns it into the two numbers of each governed limiter
(``Limiters.set_quota``) whenever something changes: a lease arrives, or one of its instants passes
(``refresh`` says when the next one is; the server sets a timer). Nothing here runs per request.

Without a lease, a pod takes nothing for ``join_wait`` seconds (the operator makes room and sends one),
then limit / (podCount + 1) of the bundle: the bundle's count was taken before this pod existed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from modelroute.api.v1alpha1.quotaterms import QuotaTerms, cap
from modelroute.sidecar.metrics.families import counter, gauge
from modelroute.sidecar.metrics.prom import Metric
from modelroute.sidecar.pipeline.limits import Limiters

if TYPE_CHECKING:  # leases arrive with PUT /leases, reports go out on /stats: neither at start
    from modelroute.api.leases import QuotaLease
    from modelroute.api.stats import QuotaReport

JOIN_WAIT = 5.0


def _dimension(share: float | None, limit: int | None, pods: int, lease: QuotaLease, t: float) -> float | None:
    if limit is None:
        return None
    fallback = limit / pods
    return cap(fallback if share is None else share, fallback, lease.expires_at.timestamp(), lease.fallback_at.timestamp(), t)


class QuotaBook:
    def __init__(self, limiters: Limiters, *, wall: Callable[[], float] = time.time, join_wait: float = JOIN_WAIT) -> None:
        self.limiters = limiters
        self.wall = wall
        self.started = wall()
        self.join_wait = join_wait
        self.terms: dict[str, QuotaTerms] = {}      # from the bundle
        self.leases: dict[str, QuotaLease] = {}     # from the operator, newest generation per quota

    def known(self) -> set[str]:
        return set(self.terms) | set(self.leases)

    def set_terms(self, terms: Iterable[QuotaTerms]) -> bool:
        """The bundle's quotas. True when one is new here (governed targets may need a limiter: recompile)."""
        before = self.known()
        self.terms.update({t.quota: t for t in terms})
        return self.known() != before

    def apply(self, leases: Iterable[QuotaLease]) -> bool:
        """Take every lease newer than the one held for its quota; True when a quota is new here."""
        before = self.known()
        for lease in leases:
            held = self.leases.get(lease.quota)
            if held is None or lease.generation > held.generation:
                self.leases[lease.quota] = lease
        return self.known() != before

    def cap(self, quota: str, t: float) -> tuple[float | None, float | None, str]:
        """(rpm, tpm, state) this sidecar may send on the quota's targets at ``t``."""
        lease = self.leases.get(quota)
        if lease is not None:
            n = lease.pod_count
            rpm = _dimension(lease.share_requests_per_minute, lease.requests_per_minute, n, lease, t)
            tpm = _dimension(lease.share_tokens_per_minute, lease.tokens_per_minute, n, lease, t)
            state = "lease" if t < lease.expires_at.timestamp() else "shrunk" if t < lease.fallback_at.timestamp() else "fallback"
            return rpm, tpm, state
        terms = self.terms[quota]
        if t < self.started + self.join_wait:
            return (None if terms.requests_per_minute is None else 0.0, None if terms.tokens_per_minute is None else 0.0, "joining")
        n = terms.pod_count + 1
        return (None if terms.requests_per_minute is None else terms.requests_per_minute / n,
                None if terms.tokens_per_minute is None else terms.tokens_per_minute / n, "conservative")

    def refresh(self, t: float | None = None) -> float | None:
        """Set every governed limiter's cap for ``t`` (default now); returns the next instant a cap changes."""
        t = self.wall() if t is None else t
        following = math.inf
        for quota in sorted(self.known()):
            rpm, tpm, _ = self.cap(quota, t)
            lease = self.leases.get(quota)
            terms: QuotaTerms = lease if lease is not None else self.terms[quota]
            self.limiters.set_quota(terms, rpm, tpm)
            instants = ((lease.expires_at.timestamp(), lease.fallback_at.timestamp()) if lease is not None
                        else (self.started + self.join_wait,))
            following = min([following, *(x for x in instants if x > t)])
        return None if following == math.inf else following

    def report(self, t: float | None = None) -> dict[str, QuotaReport]:
        """For ``/stats``: per quota, the lease, the cap now and what the governed targets used."""
        from modelroute.api.stats import QuotaReport
        t = self.wall() if t is None else t
        out = {}
        for quota in sorted(self.known()):
            rpm, tpm, state = self.cap(quota, t)
            lease = self.leases.get(quota)
            snaps = [lim.snapshot() for lim in self.limiters.governing(quota)]
            remote = [lim.remaining() for lim in self.limiters.governing(quota)]
            out[quota] = QuotaReport(
                generation=lease.generation if lease is not None else 0, state=state,
                requests_per_minute=rpm, tokens_per_minute=tpm, expires_at=lease.expires_at if lease is not None else None,
                window_requests=sum(s.window_requests for s in snaps), window_tokens=sum(s.window_tokens for s in snaps),
                refused=sum(s.refused for s in snaps),
                tokens_total=max(0, sum(lim.tokens_admitted for lim in self.limiters.governing(quota))),
                cost_total_usd=max(0.0, sum(lim.cost_usd for lim in self.limiters.governing(quota))),
                remaining_requests=min((r["requests"] for r in remote if "requests" in r), default=None),
                remaining_tokens=min((r["tokens"] for r in remote if "tokens" in r), default=None),
            )
        return out

    def collect(self) -> Iterator[Metric]:
        """Quota metric families at scrape time (a prometheus-client collector)."""
        report = self.report()
        yield gauge("modelroute_quota_lease", "The cap a ProviderQuota's lease puts on this sidecar now, per dimension (per minute).",
                    ("quota", "dimension", "state"),
                    (((q, d, r.state), v) for q, r in report.items()
                     for d, v in (("requests", r.requests_per_minute), ("tokens", r.tokens_per_minute)) if v is not None))
        yield gauge("modelroute_quota_used", "What this sidecar sent on a ProviderQuota's targets in the last minute, per dimension.",
                    ("quota", "dimension"),
                    (((q, d), v) for q, r in report.items() for d, v in (("requests", r.window_requests), ("tokens", r.window_tokens))))
        reasons: dict[str, int] = {}
        for limiter in self.limiters.all():
            for reason, n in limiter.refused_by.items():
                reasons[reason] = reasons.get(reason, 0) + n
        yield counter("modelroute_quota_denials", "Requests a local limit refused, by reason: lease (a quota lease binds), "
                                                  "requests, tokens (the target's own limits), blocked (the provider said wait), too_large.",
                      ("reason",), (((r,), n) for r, n in sorted(reasons.items())))
