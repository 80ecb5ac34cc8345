"""Quota sharing: N sidecars against one provider TPM limit, with leases vs plain per-pod limits.

One process, virtual time (a simulated minute takes milliseconds), real objects: every pod has the
sidecar's own ``TargetLimiter`` and ``QuotaBook``; the operator's round is ``quotaround.plan_round``
(the leasing arithmetic) fed with each pod's ``QuotaReport`` as ``/stats`` gives it; the provider
is an emulated sliding 60-second TPM window that answers 429 beyond the limit. Pushes arrive
``--push-delay`` seconds after a round (the acknowledgement with them).

Modes, same demand:
- ``plain``: what a per-pod limit does today: every pod's limiter set to the organisation's limit;
- ``leases``: the limit split by the operator every ``--rebalance`` seconds.

Scenarios: ``uneven`` (2 hot pods wanting 0.8 x the limit each, 8 idle at 1%), ``all-hot`` (every
pod wants the whole limit). Phases of ``uneven`` with leases: steady, operator killed (leases expire,
then limit / pods), 5 pods added with the operator back.

Reported: overshoot (the tokens the pods sent in the busiest 60-s window / limit), 429s, utilisation (tokens the
provider accepted per minute / limit, while demand exceeds the limit), and the smallest share a pod
with demand got (as a fraction of limit / (2N), the floor the issue asks for).

    .venv/bin/python bench/quota.py            # ~10 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelroute.api.leases import QuotaLease
from modelroute.api.stats import QuotaReport
from modelroute.api.v1alpha1 import ApiKey, Provider, Target
from modelroute.api.v1alpha1.providerquota import ProviderQuota
from modelroute.operator import quotaround
from modelroute.sidecar.pipeline.limits import Limiters, RateLimited, TargetLimiter
from modelroute.sidecar.pipeline.quotas import QuotaBook

RESULTS = Path(__file__).resolve().parent / "results"
QUOTA = "bench/org"
START = 1_800_000_000.0


class Clock:
    """Virtual time for the limiters and the book (monotonic and wall are the same here)."""

    def __init__(self) -> None:
        self.t = START

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class Provider60:
    """The provider: at most ``limit`` tokens in any 60-second window; beyond it, 429."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.window: deque[tuple[float, int]] = deque()
        self.used = 0
        self.peak = 0
        self.accepted = 0
        self.rejected = 0
        self.offered: deque[tuple[float, int]] = deque()   # every call, accepted or not: what the pods sent
        self.offered_used = 0
        self.offered_peak = 0

    def call(self, t: float, tokens: int) -> bool:
        while self.window and self.window[0][0] <= t - 60:
            self.used -= self.window.popleft()[1]
        while self.offered and self.offered[0][0] <= t - 60:
            self.offered_used -= self.offered.popleft()[1]
        self.offered.append((t, tokens))
        self.offered_used += tokens
        self.offered_peak = max(self.offered_peak, self.offered_used)
        if self.used + tokens > self.limit:
            self.rejected += 1
            return False
        self.window.append((t, tokens))
        self.used += tokens
        self.peak = max(self.peak, self.used)
        self.accepted += tokens
        return True


@dataclass
class Pod:
    name: str
    rate: float                  # requests per second wanted
    limiter: TargetLimiter
    book: QuotaBook | None
    credit: float = 0.0
    sent: int = 0                # tokens admitted by the pod
    pending: list[tuple[float, QuotaLease]] = field(default_factory=list)


def quota(limit: int) -> ProviderQuota:
    return ProviderQuota.model_validate({"metadata": {"name": "org", "namespace": "bench", "generation": 1},
                                         "spec": {"provider": "openai", "apiKey": {"env": "KEY"}, "leaseSeconds": 30,
                                                  "limits": {"tokensPerMinute": limit}}})


TARGET = Target(name="t", provider=Provider.OPENAI, model="gpt-4o-mini", api_key=ApiKey(env="KEY"))


class Sim:
    def __init__(self, mode: str, limit: int, tokens: int, push_delay: float, rebalance: float) -> None:
        self.mode, self.limit, self.tokens, self.push_delay, self.rebalance = mode, limit, tokens, push_delay, rebalance
        self.clock = Clock()
        self.provider = Provider60(limit)
        self.pods: list[Pod] = []
        self.quota = quota(limit)
        self.state = quotaround.QuotaState()
        self.operator = mode == "leases"
        self.next_round = START

    def add(self, name: str, share_of_limit: float) -> None:
        limiters = Limiters(clock=self.clock)
        rate = share_of_limit * self.limit / 60 / self.tokens
        if self.mode == "plain":
            lim = limiters.get("k", requests_per_minute=None, tokens_per_minute=self.limit, max_wait=0, target=TARGET)
            self.pods.append(Pod(name, rate, lim, None))
            return
        book = QuotaBook(limiters, wall=self.clock.wall)
        book.set_terms([quotaround.terms_of(self.quota, max(self.state.bundle_pods, 1))])
        book.refresh()
        lim = limiters.get("k", requests_per_minute=None, tokens_per_minute=None, max_wait=0, target=TARGET)
        self.pods.append(Pod(name, rate, lim, book))

    def set_rate(self, name: str, share_of_limit: float) -> None:
        for p in self.pods:
            if p.name == name:
                p.rate = share_of_limit * self.limit / 60 / self.tokens

    def _round(self) -> None:
        t = self.clock.t
        reports: dict[str, QuotaReport | None] = {}
        for p in self.pods:
            assert p.book is not None
            reports[p.name] = p.book.report(t)[QUOTA]
        result = quotaround.plan_round(self.quota, self.state, [p.name for p in self.pods], reports, t)
        for p in self.pods:
            if p.name in result.leases:
                p.pending.append((t + self.push_delay, result.leases[p.name]))
        self.state.bundle_pods = len(self.pods)

    async def run(self, seconds: float, dt: float = 0.05) -> dict[str, Any]:
        start_accepted, start_rejected, start = self.provider.accepted, self.provider.rejected, self.clock.t
        self.provider.peak, self.provider.offered_peak = self.provider.used, self.provider.offered_used
        sent0 = {p.name: p.sent for p in self.pods}
        end = self.clock.t + seconds
        while self.clock.t < end:
            t = self.clock.t
            if self.operator and t >= self.next_round:
                self._round()
                self.next_round = t + self.rebalance
            for p in self.pods:
                if p.book is not None:
                    due = [lease for at, lease in p.pending if at <= t]
                    if due:
                        p.pending = [(at, lease) for at, lease in p.pending if at > t]
                        p.book.apply(due)
                        for lease in due:
                            quotaround.acknowledged(self.state, p.name, lease.generation)
                    p.book.refresh(t)  # the sidecar's timer: a cap changes only at a lease's instants
                p.credit += p.rate * dt
                while p.credit >= 1:
                    p.credit -= 1
                    try:
                        ticket = await p.limiter.acquire(self.tokens, max_wait=0)
                    except RateLimited:
                        continue
                    p.sent += self.tokens
                    if not self.provider.call(t, self.tokens):
                        p.limiter.cancel(ticket)
            self.clock.t += dt
        minutes = (self.clock.t - start) / 60
        shares = {p.name: (p.sent - sent0.get(p.name, 0)) / minutes for p in self.pods}
        busy = [s for p, s in zip(self.pods, shares.values(), strict=True) if p.rate * 60 * self.tokens > self.limit / (2 * len(self.pods))]
        return {
            "overshoot": round(self.provider.offered_peak / self.limit, 3),
            "rejected_429": self.provider.rejected - start_rejected,
            # per minute over the phase; a phase shorter than the window can borrow from the minute before
            "utilisation": round((self.provider.accepted - start_accepted) / minutes / self.limit, 3) if seconds >= 60 else None,
            "min_busy_share_vs_floor": round(min(busy) / (self.limit / (2 * len(self.pods))), 2) if busy else None,
        }


async def scenario(mode: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    sim = Sim(mode, args.limit, args.tokens, args.push_delay, args.rebalance)
    n = args.pods
    hot = n if name == "all-hot" else 2
    for i in range(n):  # all-hot: every pod alone wants the whole limit (the reference: N x without leases)
        sim.add(f"p{i}", (1.0 if name == "all-hot" else 0.8) if i < hot else 0.01)
    await sim.run(60)  # warm-up: the first leases, the first window
    phases = {"steady": await sim.run(args.seconds)}
    if mode == "leases" and name == "uneven":
        sim.operator = False
        phases["operator-killed"] = await sim.run(120)   # leases expire, shrink, then limit / pods
        sim.operator = True
        await sim.run(10)
        for i in range(n, n + 5):
            sim.add(f"p{i}", 0.01)
        sim.set_rate(f"p{n}", 0.8)                          # one of the new pods is hot too
        joined = sim.run(10)
        phases["5-pods-added-first-10s"] = await joined
        phases["5-pods-added-after"] = await sim.run(60)
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=10)
    parser.add_argument("--limit", type=int, default=100_000, help="provider tokens per minute")
    parser.add_argument("--tokens", type=int, default=1000, help="tokens per request")
    parser.add_argument("--seconds", type=float, default=240, help="steady phase, simulated seconds")
    parser.add_argument("--rebalance", type=float, default=2.0, help="seconds between operator rounds")
    parser.add_argument("--push-delay", type=float, default=0.05, help="seconds from a round to the lease arriving")
    args = parser.parse_args()
    started = time.perf_counter()
    out: dict[str, Any] = {"params": vars(args), "at": datetime.now(UTC).isoformat(), "rows": []}
    print(f"{'scenario':<9} {'mode':<7} {'phase':<24} {'overshoot':>9} {'429s':>6} {'utilisation':>11} {'min busy/floor':>14}")
    for name in ("uneven", "all-hot"):
        for mode in ("plain", "leases"):
            for phase, row in asyncio.run(scenario(mode, name, args)).items():
                out["rows"].append({"scenario": name, "mode": mode, "phase": phase, **row})
                use = row["utilisation"] if row["utilisation"] is not None else "-"
                print(f"{name:<9} {mode:<7} {phase:<24} {row['overshoot']:>9} {row['rejected_429']:>6} {use:>11} "
                      f"{row['min_busy_share_vs_floor'] if row['min_busy_share_vs_floor'] is not None else '-':>14}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"quota-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(f"({time.perf_counter() - started:.1f} s; {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
