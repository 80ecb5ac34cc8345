"""Response cache for deterministic requests: a cache hit costs no upstream call.

A request is cacheable when its answer should not change from one call to the next:
effective temperature 0 (the route's params win over the app's), one choice, or the
route's cache policy says so. The key is the route name, the route revision (a config
change that alters the answer invalidates every entry without a flush) and the canonical
JSON of the request fields that shape the answer (``stream``, ``user``, ``metadata`` and
other transport fields are left out, so a streamed and a non-streamed request share an
entry). An entry holds the ``chat.completion`` and, when it came from a stream, the chunk
list: either form is rebuilt from the other (``completion_to_chunks`` /
``chunks_to_completion``), so a streaming request can be replayed from a cached answer.

Bounded LRU with TTL, injectable clock; hits, misses and evictions for ``/stats``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelroute.sidecar.translate import chat

Json = dict[str, Any]

# Request fields that never change the answer (transport, accounting, tracing).
IGNORED_FIELDS = frozenset({
    "stream", "stream_options", "user", "metadata", "safety_identifier", "store", "service_tier",
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "extra_headers", "timeout",
})


def is_cacheable(request: Json, *, route_temperature: float | None = None, policy: bool = False) -> bool:
    """True when the request may be answered from cache.

    ``policy`` is the route's cache setting (cache even when sampling); otherwise the
    effective temperature must be 0 and at most one choice asked for. Requests with
    ``logprobs`` are never cached under the temperature rule (they ask for per-call data).
    """
    n = request.get("n")
    if isinstance(n, int) and n > 1:
        return False
    if policy:
        return True
    temperature = route_temperature if route_temperature is not None else request.get("temperature")
    return temperature == 0 and not request.get("logprobs")


def cache_key(route: str, revision: str, request: Json) -> str:
    """Key of a request: route, revision and the canonical JSON of the fields that matter."""
    fields = {k: v for k, v in request.items() if k not in IGNORED_FIELDS}
    fields["model"] = route
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    digest = hashlib.blake2b(body.encode(), digest_size=16).hexdigest()
    return f"{route}@{revision}:{digest}"


@dataclass(slots=True)
class Entry:
    """A cached answer: the completion, the chunks (if it was streamed), who answered it."""

    completion: Json
    chunks: list[Json] | None
    target: str
    expires: float


class ResponseCache:
    """Bounded LRU with TTL. ``ttl`` and ``max_entries`` may differ per route (pass ``ttl`` to ``put``)."""

    def __init__(self, *, max_entries: int = 1024, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Entry | None:
        """The live entry for ``key`` (refreshing its LRU position), or None (a miss)."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self.clock():
            self._entries.move_to_end(key)
            self.hits += 1
            return entry
        if entry is not None:
            del self._entries[key]
        self.misses += 1
        return None

    def put(self, key: str, completion: Json, *, target: str, chunks: list[Json] | None = None, ttl: float | None = None) -> None:
        """Store an answer. Only complete answers belong here: call after a stream finished cleanly."""
        life = self.ttl if ttl is None else ttl
        if life <= 0:
            return
        self._entries[key] = Entry(completion, chunks, target, self.clock() + life)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        self._entries.clear()

    @property
    def hit_ratio(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def snapshot(self) -> Json:
        """For ``/stats``."""
        return {"entries": len(self._entries), "maxEntries": self.max_entries, "hits": self.hits,
                "misses": self.misses, "evictions": self.evictions, "hitRatio": round(self.hit_ratio, 4)}


# ---- replay --------------------------------------------------------------------------


def completion_to_chunks(completion: Json, *, include_usage: bool) -> list[Json]:
    """Chunks that replay a ``chat.completion`` as a stream (role, content, tool calls, finish, usage)."""
    cid: str = completion.get("id") or ""
    created: int = completion.get("created") or 0
    model: str = completion.get("model") or ""
    out: list[Json] = []
    for c in completion.get("choices") or ():
        index = c.get("index", 0)
        message = c.get("message") or {}
        out.append(chat.chunk(id=cid, created=created, model=model, delta={"role": "assistant", "content": ""}, index=index))
        if message.get("content"):
            out.append(chat.chunk(id=cid, created=created, model=model, delta={"content": message["content"]}, index=index))
        calls = [{"index": i, **call} for i, call in enumerate(message.get("tool_calls") or ())]
        if calls:
            out.append(chat.chunk(id=cid, created=created, model=model, delta={"tool_calls": calls}, index=index))
        out.append(chat.chunk(id=cid, created=created, model=model, delta={}, index=index, finish_reason=c.get("finish_reason") or "stop"))
    if include_usage and completion.get("usage"):
        out.append(chat.usage_chunk(id=cid, created=created, model=model, usage=completion["usage"]))
    return out


def chunks_to_completion(chunks: list[Json]) -> Json:
    """The ``chat.completion`` a chunk stream adds up to (for storing a streamed answer)."""
    first = chunks[0] if chunks else {}
    choices: dict[int, Json] = {}
    usage: Json | None = None
    for ch in chunks:
        if ch.get("usage"):
            usage = ch["usage"]
        for c in ch.get("choices") or ():
            state = choices.setdefault(c.get("index", 0), {"content": [], "calls": {}, "finish": None})
            delta = c.get("delta") or {}
            if delta.get("content"):
                state["content"].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = state["calls"].setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = fn.get("name") or slot["name"]
                slot["arguments"] += fn.get("arguments") or ""
            if c.get("finish_reason"):
                state["finish"] = c["finish_reason"]
    out_choices = []
    for index in sorted(choices):
        state = choices[index]
        calls = [chat.tool_call(s["id"], s["name"], s["arguments"]) for _, s in sorted(state["calls"].items())]
        text = "".join(state["content"])
        out_choices.append(chat.choice(index, text if text or not calls else None, calls, state["finish"] or "stop"))
    return chat.completion(id=first.get("id") or "", created=first.get("created") or 0, model=first.get("model") or "",
                           choices=out_choices, usage=usage)
