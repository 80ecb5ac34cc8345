"""The log of requests an emulator received, so tests can count and inspect upstream calls.

Secrets never enter the log: credential headers are replaced by a short fingerprint
(`key_fingerprint`), which lets a test check *which* key was used without seeing it.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key", "proxy-authorization"})


def key_fingerprint(secret: str) -> str:
    """What the log shows instead of a credential: `sha256:` + 12 hex digits."""
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def redact_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        low = name.lower()
        if low in SECRET_HEADERS:
            token = value[7:] if low == "authorization" and value.lower().startswith("bearer ") else value
            out[low] = key_fingerprint(token)
        else:
            out[low] = value
    return out


@dataclass
class RecordedRequest:
    """One received request. `status` is 0 while in flight or when the connection was reset;
    `fault` is the kind of fault applied, if any."""

    seq: int
    time: float
    provider: str
    model: str
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    stream: bool
    status: int = 0
    fault: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """A bounded log of recorded requests plus unbounded per-(provider, model) counters."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: deque[RecordedRequest] = deque(maxlen=maxlen)
        self.counts: Counter[tuple[str, str]] = Counter()
        self.seq = 0

    def record(
        self,
        *,
        time: float,
        provider: str,
        model: str,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Iterable[tuple[str, str]],
        body: Any,
        stream: bool,
    ) -> RecordedRequest:
        self.seq += 1
        self.counts[(provider, model)] += 1
        item = RecordedRequest(
            self.seq, time, provider, model, method, path, dict(query), redact_headers(headers), body, stream
        )
        self._items.append(item)
        return item

    def clear(self) -> None:
        self._items.clear()
        self.counts.clear()

    def items(self, provider: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self._items
            if (provider is None or r.provider == provider) and (model is None or r.model == model)
        ]

    def count(self, provider: str | None = None, model: str | None = None) -> int:
        return sum(
            n
            for (p, m), n in self.counts.items()
            if (provider is None or p == provider) and (model is None or m == model)
        )
