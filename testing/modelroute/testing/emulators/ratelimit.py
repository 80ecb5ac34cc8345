"""The provider's own rate limit, emulated: a sliding 60-s window of requests and tokens per API key.

Why: a test of shared quotas (issue 13) must send its traffic to something that behaves like the
real provider, which counts every key's requests and tokens over a minute and answers 429 with
``retry-after`` beyond it, whatever the pods believe. Tokens are the answer's usage (input +
output, the emulator's whitespace words), charged when the request arrives; a request that does
not fit is refused and charges nothing. Every answer of a limited key carries OpenAI's
``x-ratelimit-*`` headers (limit, remaining, reset), which the sidecar's limiters learn from.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RateLimit:
    """Per API key: requests and tokens per ``window`` seconds (None: that dimension is unlimited)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    window: float = 60.0


@dataclass
class Verdict:
    """One request's fate: admitted or not, and the headers to send either way."""

    admitted: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass
class RateWindow:
    """One key's window. Not thread-safe (the emulator's event loop is its only user)."""

    limit: RateLimit
    clock: Callable[[], float] = time.monotonic
    _entries: deque[tuple[float, int]] = field(default_factory=deque)
    _tokens: int = 0
    refused: int = 0

    def _prune(self, now: float) -> None:
        while self._entries and self._entries[0][0] <= now - self.limit.window:
            self._tokens -= self._entries.popleft()[1]

    def _wait(self, now: float, tokens: int) -> float:
        """Seconds until a request of ``tokens`` fits (0: now; inf: never)."""
        lim, entries = self.limit, self._entries
        at = now
        if lim.requests_per_minute is not None and len(entries) >= lim.requests_per_minute:
            at = max(at, entries[len(entries) - lim.requests_per_minute][0] + lim.window)
        if lim.tokens_per_minute is not None:
            if tokens > lim.tokens_per_minute:
                return math.inf
            excess, freed = self._tokens + tokens - lim.tokens_per_minute, 0
            for t, n in entries:
                if excess <= freed:
                    break
                freed += n
                at = max(at, t + lim.window)
        return at - now

    def admit(self, tokens: int) -> Verdict:
        now = self.clock()
        self._prune(now)
        wait = self._wait(now, tokens)
        if wait <= 0:
            self._entries.append((now, tokens))
            self._tokens += tokens
        else:
            self.refused += 1
        return Verdict(wait <= 0, self._headers(now), wait)

    def _headers(self, now: float) -> dict[str, str]:
        lim, out = self.limit, {}
        reset = f"{max(0.0, self._entries[0][0] + lim.window - now):.3f}s" if self._entries else "0s"
        for name, limit, used in (("requests", lim.requests_per_minute, len(self._entries)),
                                  ("tokens", lim.tokens_per_minute, self._tokens)):
            if limit is not None:
                out[f"x-ratelimit-limit-{name}"] = str(limit)
                out[f"x-ratelimit-remaining-{name}"] = str(max(0, limit - used))
                out[f"x-ratelimit-reset-{name}"] = reset
        return out


@dataclass
class RateLimits:
    """Every key's window under one ``RateLimit`` (keys are the credentials' fingerprints)."""

    limit: RateLimit
    clock: Callable[[], float] = time.monotonic
    windows: dict[str, RateWindow] = field(default_factory=dict)

    def admit(self, key: str, tokens: int) -> Verdict:
        window = self.windows.get(key)
        if window is None:
            window = self.windows[key] = RateWindow(self.limit, self.clock)
        return window.admit(tokens)

    def refused(self) -> int:
        return sum(w.refused for w in self.windows.values())
