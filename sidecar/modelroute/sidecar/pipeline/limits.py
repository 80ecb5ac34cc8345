"""Token-aware rate limits per target: requests and tokens per minute, never overshot.

Why a sliding window with reservations: gateways that check a counter and *then* call
the provider let every concurrent request pass the check before any of them is counted,
and send several times the limit. Here admission and counting are one synchronous step
(no ``await`` in between, so asyncio tasks cannot interleave): a request is either
admitted now, or given a reserved slot at the earliest instant the window has room (and
sleeps until then), or refused at once when that instant is further away than its
bounded wait, so the router can fall back without waiting at all.

Guarantee: at most ``requests_per_minute`` admissions, and at most ``tokens_per_minute``
estimated tokens, in any window of ``window`` seconds (reservations are inserted in time
order, so checking the window that ends at the new admission suffices).

Tokens: the input is estimated before the call (``estimate_tokens``: characters / 4, a
cheap over-estimate for English and code) and corrected from the reported usage after it
(``settle``), counted as the provider counts them (Anthropic leaves prompt-cache reads out of its
input-token limit, OpenAI and Gemini count cached tokens: ``usage_tokens``). Providers' own headers (``ProviderSpec.rate_limit_headers``: ``x-ratelimit-*``, ``anthropic-ratelimit-*``;
``retry-after``) teach the limiter limits it was not told, quota used by other clients of
the same key (``remaining``), and when to stop sending at all.

A ProviderQuota's lease (``quotas.QuotaBook``) lowers the limits further: ``set_lease`` swaps two
numbers, ``limit()`` reads min(configured, lease) precomputed, so a lease costs no work per request.

At ``pressure_threshold`` (80%) of any quota, ``on_pressure(name, dimension, utilisation)``
is called once per crossing (re-armed when utilisation falls 10 points below); the
utilisation is also readable any time for gauges (``utilisation()``, ``snapshot()``).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from modelroute.api.v1alpha1 import Target
from modelroute.api.v1alpha1.providers import PROVIDERS, HeaderTriple, Price
from modelroute.api.v1alpha1.quotaterms import QuotaTerms
from modelroute.sidecar.pipeline.cost import cost_of
from modelroute.sidecar.providers.errors import retry_after_seconds

if TYPE_CHECKING:  # built on the first /stats, not at start (bench/README.md, session 6 `models`)
    from modelroute.api.stats import LimiterSnapshot

Json = dict[str, Any]

WINDOW = 60.0
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4          # tokens per message for role and framing (OpenAI's rule of thumb)
PRESSURE = 0.8
REARM = 0.1


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def wall(self) -> float: ...
    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class RateLimited(Exception):
    """Refused by a local limit: fall back to the next target (``FailureKind.RATE_LIMITED``, no upstream call).

    ``dimension`` is ``requests``, ``tokens``, ``blocked`` (the provider said stop) or
    ``too_large`` (one request above the whole tokens-per-minute limit);
    ``retry_after`` is when this target could take it, in seconds.
    """

    def __init__(self, target: str, dimension: str, retry_after: float) -> None:
        super().__init__(f"{target}: local {dimension} limit reached (room in {retry_after:.1f}s)")
        self.target = target
        self.dimension = dimension
        self.retry_after = retry_after


@dataclass(slots=True, eq=False)
class Ticket:
    """One admission. ``settle`` or ``cancel`` it exactly once."""

    at: float
    tokens: int
    estimated: int
    done: bool = False


def estimate_tokens(request: Json) -> int:
    """Cheap upper-ish estimate of a chat request's input tokens: characters / 4 plus framing.

    Counts message text, tool call arguments and tool definitions; image parts count a
    flat 1000 tokens. Microseconds for a typical request (no tokenizer, no JSON dump of messages).
    """
    chars = 0
    images = 0
    messages = request.get("messages") or ()
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if part.get("type") == "text":
                    chars += len(part.get("text") or "")
                else:
                    images += 1
        for call in m.get("tool_calls") or ():
            chars += len((call.get("function") or {}).get("arguments") or "") + 16
    tools = request.get("tools")
    if tools:
        chars += len(repr(tools))
    return chars // CHARS_PER_TOKEN + MESSAGE_OVERHEAD * len(messages) + 1000 * images + 1


def usage_tokens(usage: Json | None, *, cache_reads: bool = True) -> int | None:
    """Tokens a provider counts against its token limit for a reported usage (OpenAI or Anthropic shape).

    ``cache_reads=False`` leaves out the input tokens read from the prompt cache (Anthropic's
    cache-aware ITPM, ``ProviderSpec.cache_reads_limited``); cache writes always count, and so
    do cached tokens on OpenAI and Gemini."""
    if not usage:
        return None
    if "total_tokens" in usage:
        total = int(usage.get("total_tokens") or 0)
        if not cache_reads:
            details = usage.get("prompt_tokens_details")
            total -= int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
        return total
    if "input_tokens" in usage:
        return int((usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
                   + (usage.get("cache_read_input_tokens") or 0 if cache_reads else 0)
                   + (usage.get("cache_creation_input_tokens") or 0))
    return None


@dataclass(slots=True)
class _Remote:
    """What the provider's headers last said about one dimension (shared with other clients of the key)."""

    remaining: float = math.inf
    reset_at: float = -math.inf
    used_since: float = 0.0       # what we admitted since the header (counts against ``remaining``)


@dataclass
class TargetLimiter:
    """Requests- and tokens-per-minute limits of one target (one provider key + model).

    ``None`` limits are unlimited until a provider header says otherwise. ``max_wait`` is
    the default bound on waiting for room, in seconds. Not thread-safe; asyncio-safe.
    """

    name: str
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_wait: float = 1.0
    window: float = WINDOW
    clock: Clock = SYSTEM_CLOCK
    on_pressure: Callable[[str, str, float], None] | None = None
    pressure_threshold: float = PRESSURE
    _entries: deque[Ticket] = field(default_factory=deque, repr=False)
    _tokens: int = field(default=0, repr=False)
    _blocked_until: float = field(default=-math.inf, repr=False)
    _remote: dict[str, _Remote] = field(default_factory=lambda: {"requests": _Remote(), "tokens": _Remote()}, repr=False)
    _learned: dict[str, float] = field(default_factory=dict, repr=False)
    _pressed: set[str] = field(default_factory=set, repr=False)
    admitted: int = 0
    refused: int = 0
    tokens_admitted: int = 0   # since start, corrected from usage (daily budgets are summed from it)
    price: Price | None = None  # the target's price (set when compiled): the usage's cost adds to ``cost_usd``
    cost_usd: float = 0.0      # since start (daily cost budgets are summed from it)
    refused_by: dict[str, int] = field(default_factory=dict, repr=False)   # reason -> refusals (metrics)
    lease_requests: float | None = field(default=None, repr=False)         # a quota lease's share (None: no lease)
    lease_tokens: float | None = field(default=None, repr=False)
    _rpm: float | None = field(default=None, repr=False)                   # min(configured, lease): what limit() reads
    _tpm: float | None = field(default=None, repr=False)
    cache_reads_limited: bool = field(default=True, repr=False)               # cache reads count (ProviderSpec)

    def __post_init__(self) -> None:
        self._effective()

    def _effective(self) -> None:
        self._rpm = _min(self.requests_per_minute, self.lease_requests)
        self._tpm = _min(self.tokens_per_minute, self.lease_tokens)

    def configure(self, requests_per_minute: float | None, tokens_per_minute: float | None, max_wait: float) -> None:
        """New configured limits (a config swap); the window, learned limits and any lease are kept."""
        self.requests_per_minute, self.tokens_per_minute, self.max_wait = requests_per_minute, tokens_per_minute, max_wait
        self._effective()

    def set_lease(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        """The quota lease's share (None: no lease on that dimension): the limits become min(configured, lease).

        A swap of two numbers: requests in flight keep their tickets, the window is kept, and the next
        admission is checked against the new limits (no per-request lookup of the lease).
        """
        self.lease_requests, self.lease_tokens = requests_per_minute, tokens_per_minute
        self._effective()

    # ---- limits ------------------------------------------------------------------------

    def limit(self, dimension: str) -> float | None:
        """The effective limit: the configured one, lowered by what the provider reported."""
        configured = self._rpm if dimension == "requests" else self._tpm
        learned = self._learned.get(dimension)
        if configured is None:
            return learned
        return configured if learned is None else min(configured, learned)

    # ---- admission ---------------------------------------------------------------------

    def _prune(self, now: float) -> None:
        entries = self._entries
        horizon = now - self.window
        while entries and entries[0].at <= horizon:
            self._tokens -= entries.popleft().tokens

    def _earliest(self, now: float, tokens: int) -> tuple[float, str]:
        """Earliest instant >= now (and >= the last reservation) with room for one request of ``tokens``."""
        entries = self._entries
        at = max(now, self._blocked_until, entries[-1].at if entries else now)
        why = "blocked" if self._blocked_until > now else "requests"
        rpm = self.limit("requests")
        if rpm is not None:
            n = int(rpm)
            if n < 1:
                return math.inf, "requests"
            if len(entries) >= n:
                # The n-th most recent admission must leave the window first.
                t = entries[len(entries) - n].at + self.window
                if t > at:
                    at, why = t, "requests"
        tpm = self.limit("tokens")
        if tpm is not None:
            if tokens > tpm:
                return math.inf, "too_large"
            excess = self._tokens + tokens - tpm
            if excess > 0:
                freed = 0
                for e in entries:
                    freed += e.tokens
                    if freed >= excess:
                        t = e.at + self.window
                        if t > at:
                            at, why = t, "tokens"
                        break
        for dimension, cost in (("requests", 1), ("tokens", tokens)):
            remote = self._remote[dimension]
            if remote.reset_at > now and remote.used_since + cost > remote.remaining and remote.reset_at > at:
                at, why = remote.reset_at, "blocked"
        return at, why

    def try_acquire(self, tokens: int) -> Ticket | float:
        """Admit now (a ``Ticket``) or say in how many seconds there would be room (nothing reserved)."""
        now = self.clock.monotonic()
        self._prune(now)
        at, _ = self._earliest(now, tokens)
        if at <= now:
            return self._admit(now, tokens)
        return at - now

    async def acquire(self, tokens: int, *, max_wait: float | None = None) -> Ticket:
        """Admit a request of about ``tokens`` tokens, waiting at most ``max_wait`` seconds.

        Raises ``RateLimited`` at once when the earliest room is further away than the
        bound (no time is wasted before the fallback). A cancelled wait gives its slot back.
        """
        now = self.clock.monotonic()
        self._prune(now)
        at, why = self._earliest(now, tokens)
        if at <= now:
            return self._admit(now, tokens)
        bound = self.max_wait if max_wait is None else max_wait
        if at - now > bound:
            self.refused += 1
            reason = self._reason(why)
            self.refused_by[reason] = self.refused_by.get(reason, 0) + 1
            raise RateLimited(self.name, why, at - now)
        ticket = self._admit(at, tokens)  # the reservation: counted from now on
        try:
            await self.clock.sleep(at - now)
        except BaseException:
            self.cancel(ticket)
            raise
        return ticket

    def _reason(self, why: str) -> str:
        """A refusal's reason for metrics: ``lease`` when a quota lease is what binds, else the dimension."""
        lease = self.lease_requests if why == "requests" else self.lease_tokens if why in ("tokens", "too_large") else None
        configured = self.requests_per_minute if why == "requests" else self.tokens_per_minute
        if lease is not None and (configured is None or lease < configured):
            return "lease"
        return why

    def _admit(self, at: float, tokens: int) -> Ticket:
        ticket = Ticket(at, tokens, tokens)
        self._entries.append(ticket)
        self._tokens += tokens
        self.admitted += 1
        self.tokens_admitted += tokens
        for dimension, cost in (("requests", 1), ("tokens", tokens)):
            remote = self._remote[dimension]
            if remote.reset_at > at:
                remote.used_since += cost
        if self.on_pressure is not None:
            self._check_pressure()
        return ticket

    def settle(self, ticket: Ticket, usage: Json | None) -> None:
        """Correct the ticket's tokens from the provider's reported usage (None: keep the estimate)."""
        if ticket.done:
            return
        ticket.done = True
        if self.price is not None and usage:
            self.cost_usd += cost_of(self.price, usage)
        actual = usage_tokens(usage, cache_reads=self.cache_reads_limited)
        if actual is None or actual == ticket.tokens:
            return
        now = self.clock.monotonic()
        self._prune(now)
        if ticket.at > now - self.window:  # still in the window (pruning removes exactly the older ones)
            self._tokens += actual - ticket.tokens
        self.tokens_admitted += actual - ticket.tokens
        ticket.tokens = actual
        if self.on_pressure is not None:
            self._check_pressure()

    def cancel(self, ticket: Ticket) -> None:
        """The request was never sent (cancelled, or failed before the call): free its slot."""
        if ticket.done:
            return
        ticket.done = True
        try:
            self._entries.remove(ticket)
        except ValueError:
            return
        self._tokens -= ticket.tokens
        self.admitted -= 1
        self.tokens_admitted -= ticket.tokens

    # ---- provider headers --------------------------------------------------------------

    def blocked_for(self, seconds: float) -> None:
        """The provider asked for a pause (``retry-after``): admit nothing for ``seconds`` from now."""
        self._blocked_until = max(self._blocked_until, self.clock.monotonic() + seconds)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Learn from a provider response's headers (any status; case-insensitive names)."""
        h = {k.lower(): v for k, v in headers.items() if k[:1] in "xXaArR"}
        now = self.clock.monotonic()
        wall = self.clock.wall()
        retry = retry_after_seconds(h, wall)
        if retry is not None:
            self.blocked_for(retry)
        for dimension, prefixes in _HEADER_FAMILIES.items():
            seen: _Remote | None = None  # the most restrictive family of this response
            learned = math.inf
            for limit_key, remaining_key, reset_key in prefixes:
                limit = _number(h.get(limit_key))
                remaining = _number(h.get(remaining_key))
                if limit is not None and limit > 0:
                    learned = min(learned, limit)
                if remaining is not None and (seen is None or remaining < seen.remaining):
                    reset = parse_reset(h.get(reset_key), wall)
                    seen = _Remote(remaining, now + (reset if reset is not None else self.window))
            if learned != math.inf:
                self._learned[dimension] = learned  # the provider's current limit (it may rise again)
            if seen is not None:
                self._remote[dimension] = seen
        if self.on_pressure is not None:
            self._check_pressure()

    # ---- utilisation -------------------------------------------------------------------

    def utilisation(self) -> dict[str, float]:
        """Fraction of each quota in use: the window's own count, or the provider's view if higher."""
        self._prune(self.clock.monotonic())
        now = self.clock.monotonic()
        out: dict[str, float] = {}
        for dimension, used in (("requests", float(len(self._entries))), ("tokens", float(self._tokens))):
            limit = self.limit(dimension)
            value = used / limit if limit else 0.0
            remote = self._remote[dimension]
            if limit and remote.reset_at > now and remote.remaining != math.inf:
                value = max(value, 1.0 - (remote.remaining - remote.used_since) / limit)
            out[dimension] = min(max(value, 0.0), 1.0)
        return out

    def _check_pressure(self) -> None:
        assert self.on_pressure is not None
        for dimension, value in self.utilisation().items():
            if value >= self.pressure_threshold and dimension not in self._pressed:
                self._pressed.add(dimension)
                self.on_pressure(self.name, dimension, value)
            elif value < self.pressure_threshold - REARM:
                self._pressed.discard(dimension)

    def remaining(self) -> dict[str, float]:
        """What the provider's latest headers say is left in its window, by dimension (only while that window lasts)."""
        now = self.clock.monotonic()
        return {d: max(0.0, r.remaining - r.used_since) for d, r in self._remote.items()
                if r.reset_at > now and r.remaining != math.inf}

    def snapshot(self) -> LimiterSnapshot:
        """For ``/stats``: limits, window usage, utilisation, admitted/refused counters."""
        from modelroute.api.stats import LimiterSnapshot
        use = self.utilisation()
        return LimiterSnapshot(
            requests_per_minute=self.limit("requests"), tokens_per_minute=self.limit("tokens"),
            window_requests=len(self._entries), window_tokens=self._tokens,
            utilisation=use, pressure=max(use.values()) >= self.pressure_threshold,
            admitted=self.admitted, refused=self.refused,
            blocked_for_seconds=max(0.0, self._blocked_until - self.clock.monotonic()),
        )


def _min(a: float | None, b: float | None) -> float | None:
    return a if b is None else b if a is None else min(a, b)


# ---- header parsing ------------------------------------------------------------------

def _families() -> dict[str, tuple[HeaderTriple, ...]]:
    """Every provider's rate-limit headers per dimension (``ProviderSpec.rate_limit_headers``), each group once."""
    out: dict[str, tuple[HeaderTriple, ...]] = {"requests": (), "tokens": ()}
    for spec in PROVIDERS.values():
        h = spec.rate_limit_headers
        for dimension, groups in (("requests", h.requests), ("tokens", h.tokens)):
            out[dimension] += tuple(g for g in groups if g not in out[dimension])
    return out


_HEADER_FAMILIES = _families()
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def parse_duration(text: str) -> float | None:
    """OpenAI reset durations: ``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``, or plain seconds."""
    plain = _number(text)
    if plain is not None:
        return plain
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    return sum(float(n) * _UNITS[u] for n, u in parts)


def parse_reset(value: str | None, wall: float) -> float | None:
    """Seconds until a reset given as a duration (OpenAI) or an RFC 3339 time (Anthropic)."""
    if not value:
        return None
    seconds = parse_duration(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, when.timestamp() - wall)


# ---- registry ------------------------------------------------------------------------


class Limiters:
    """The limiters of a sidecar, by key, kept across config swaps (a push must not reset the window).

    Key targets by what the provider limits: provider, endpoint, model and key source
    (two routes using the same model with the same key share one quota).

    Quota leases (``quotas.QuotaBook``) cap the limiters of the targets a ProviderQuota governs:
    ``set_quota`` gives a quota's current cap, split evenly over the limiters it governs in this
    sidecar (a limiter under two quotas takes the smaller). A limiter created later (config swap)
    takes its cap when it is created, before any request can reach it.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, on_pressure: Callable[[str, str, float], None] | None = None) -> None:
        self.clock = clock
        self.on_pressure = on_pressure
        self._by_key: dict[str, TargetLimiter] = {}
        self._quotas: dict[str, tuple[QuotaTerms, float | None, float | None]] = {}  # quota -> terms, rpm cap, tpm cap
        self._governed: dict[str, list[str]] = {}                                    # quota -> limiter keys (ever seen)
        self._targets: dict[str, Target] = {}                                         # limiter key -> a target using it

    def get(self, key: str, *, requests_per_minute: float | None, tokens_per_minute: float | None, max_wait: float,
            target: Target | None = None) -> TargetLimiter:
        """The limiter for ``key``, created or re-configured (its window and learned state kept).

        ``target``: the target it serves, so the quotas governing it cap it.
        """
        limiter = self._by_key.get(key)
        if limiter is None:
            limiter = self._by_key[key] = TargetLimiter(key, requests_per_minute, tokens_per_minute, max_wait,
                                                        clock=self.clock, on_pressure=self.on_pressure)
        else:
            limiter.configure(requests_per_minute, tokens_per_minute, max_wait)
        if target is not None and key not in self._targets:
            limiter.cache_reads_limited = PROVIDERS[target.provider].cache_reads_limited(target.model)
            self._targets[key] = target
            for quota, (terms, _, _) in self._quotas.items():
                if _governs(terms, target) and key not in self._governed.setdefault(quota, []):
                    self._governed[quota].append(key)
                    self._recap(quota)
        return limiter

    def governed(self, target: Target) -> bool:
        """Whether a known quota governs ``target`` (it needs a limiter even without ``limits``)."""
        return any(_governs(terms, target) for terms, _, _ in self._quotas.values())

    def set_quota(self, terms: QuotaTerms, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        """The quota's cap for this whole sidecar now (None: no cap on that dimension)."""
        self._quotas[terms.quota] = (terms, requests_per_minute, tokens_per_minute)
        keys = self._governed.setdefault(terms.quota, [])
        for key, target in self._targets.items():
            if key not in keys and _governs(terms, target):
                keys.append(key)
        self._recap(terms.quota)

    def all(self) -> list[TargetLimiter]:
        return list(self._by_key.values())

    def governing(self, quota: str) -> list[TargetLimiter]:
        """The limiters a quota caps in this sidecar."""
        return [self._by_key[k] for k in self._governed.get(quota, ()) if k in self._by_key]

    def _recap(self, quota: str) -> None:
        for key in self._governed.get(quota, ()):
            caps: list[tuple[float | None, float | None]] = []
            for q, (_, rpm, tpm) in self._quotas.items():
                n = len(self._governed.get(q, ()))
                if key in self._governed.get(q, ()):
                    caps.append((None if rpm is None else rpm / n, None if tpm is None else tpm / n))
            rpm_cap = min((c[0] for c in caps if c[0] is not None), default=None)
            tpm_cap = min((c[1] for c in caps if c[1] is not None), default=None)
            self._by_key[key].set_lease(rpm_cap, tpm_cap)

    def snapshot(self) -> dict[str, LimiterSnapshot]:
        return {key: limiter.snapshot() for key, limiter in sorted(self._by_key.items())}


def _governs(terms: QuotaTerms, target: Target) -> bool:
    return terms.governs(target.provider.value, target.api_key, target.model)
