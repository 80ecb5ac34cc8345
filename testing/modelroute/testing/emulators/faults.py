"""Programmable faults: which misbehaviour the next matching requests get.

A `Fault` matches on provider, model and streaming, applies `times` times (or forever)
and with `probability` (a seeded RNG makes fractions repeatable). Latency from every
applying fault adds up; the first applying fault of another kind decides the outcome.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

FaultKind = Literal["latency", "status", "reset", "garbage", "stream_cut", "stream_error"]
KINDS: tuple[str, ...] = ("latency", "status", "reset", "garbage", "stream_cut", "stream_error")


@dataclass
class Fault:
    """One programmable fault.

    kind:
      latency       only delay (`latency_ms` before the response, `chunk_latency_ms` between
                    stream chunks); every kind honours these two fields too
      status        answer `status` with the provider's error envelope (+ retry-after headers)
      reset         abort the TCP connection (RST) before any response byte
      garbage       200 with a non-JSON body (`body`), or non-JSON SSE data when streaming
      stream_cut    send `after_chunks` SSE frames then close the connection without ending
                    the chunked body (non-streaming: half the JSON body, then close)
      stream_error  send `after_chunks` frames then an in-protocol error event for `status`
    """

    kind: FaultKind = "status"
    provider: str | None = None  # None: any provider
    model: str | None = None  # None: any model
    stream: bool | None = None  # None: streaming and non-streaming requests
    status: int = 503
    message: str | None = None
    error_type: str | None = None  # override the envelope's type/status string
    retry_after: float | None = None  # seconds -> `retry-after`
    retry_after_ms: int | None = None  # -> `retry-after-ms`
    latency_ms: float = 0.0
    chunk_latency_ms: float = 0.0
    after_chunks: int = 1
    body: str = "<html><body>502 Bad Gateway (emulated garbage)</body></html>"
    content_type: str = "application/json"  # of the garbage body
    times: int | None = None  # apply to the next N matching requests, None: forever
    probability: float = 1.0
    id: int = 0  # assigned by FaultBook.add
    applied: int = field(default=0)  # how many requests this fault has hit

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0")

    @staticmethod
    def from_json(data: dict[str, Any]) -> Fault:
        known = {f.name for f in fields(Fault)} - {"id", "applied"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return Fault(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def matches(self, provider: str, model: str, stream: bool) -> bool:
        return (
            (self.provider is None or self.provider == provider)
            and (self.model is None or self.model == model)
            and (self.stream is None or self.stream == stream)
        )


@dataclass(frozen=True)
class Decision:
    """What to do with one request: total delay, the deciding fault (if any)."""

    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    fault: Fault | None = None


NO_FAULT = Decision()


class FaultBook:
    """The active faults of one emulator, in insertion order."""

    def __init__(self, seed: int | None = 0) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)

    def seed(self, seed: int | None) -> None:
        self._rng = random.Random(seed)

    def add(self, fault: Fault | None = None, /, **kwargs: Any) -> Fault:
        """Add a fault (an instance, or Fault's keyword fields) and return it with its id."""
        f = fault if fault is not None else Fault(**kwargs)
        f.id = next(self._ids)
        self._faults.append(f)
        return f

    def remove(self, fault_id: int) -> bool:
        before = len(self._faults)
        self._faults = [f for f in self._faults if f.id != fault_id]
        return len(self._faults) != before

    def clear(self) -> None:
        self._faults = []

    def list(self) -> list[Fault]:
        return list(self._faults)

    def __len__(self) -> int:
        return len(self._faults)

    def decide(self, provider: str, model: str, stream: bool) -> Decision:
        if not self._faults:  # the hot path when no fault is set
            return NO_FAULT
        delay = chunk_delay = 0.0
        chosen: Fault | None = None
        spent = False
        for f in self._faults:
            if not f.matches(provider, model, stream):
                continue
            if f.kind != "latency" and chosen is not None:
                continue  # an outcome is decided; later outcome faults are not consumed
            if f.probability < 1.0 and self._rng.random() >= f.probability:
                continue
            f.applied += 1
            if f.times is not None:
                f.times -= 1
                spent = spent or f.times <= 0
            delay += f.latency_ms / 1000.0
            chunk_delay += f.chunk_latency_ms / 1000.0
            if f.kind != "latency":
                chosen = f
        if spent:
            self._faults = [f for f in self._faults if f.times is None or f.times > 0]
        if chosen is None and delay == 0.0 and chunk_delay == 0.0:
            return NO_FAULT
        return Decision(delay, chunk_delay, chosen)
