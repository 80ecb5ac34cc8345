"""Prompt caching, emulated: which prefix of a request the provider has already seen.

Deterministic and simple, so tests can predict every count (tokens are whitespace words, as
everywhere in the emulator; ``model.count_tokens``):

* A request is a sequence of blocks in prompt order (tools, system, messages; Anthropic: every
  content block). Each block boundary is a *cache point*: a hash of provider, model and every
  block so far (``cache_control`` left out), and the tokens so far.
* **Anthropic** (explicit): only the blocks with ``cache_control`` (or the last block, for the
  top-level ``cache_control``) are breakpoints. ``cache_read_input_tokens`` is the longest
  earlier-written prefix found at any boundary (the real API looks back from each breakpoint);
  ``cache_creation_input_tokens`` is what the last breakpoint adds beyond it when that prefix is
  new and at least ``MIN_TOKENS`` long (``cache_creation`` says it under that breakpoint's ``ttl``);
  ``input_tokens`` is the rest. A request without marks
  reads and writes nothing.
* **OpenAI** (chat and Responses, automatic): every message boundary of at least ``MIN_TOKENS``
  is written; ``cached_tokens`` is the longest earlier-seen one, rounded down to 1024 plus a
  multiple of 128 (as the API reports), and is part of ``prompt_tokens``/``input_tokens``.
* **Gemini** (implicit caching): as OpenAI without the rounding, reported as
  ``cachedContentTokenCount`` (part of ``promptTokenCount``).

``MIN_TOKENS`` is 1024 for every model (the real minimums are 1024 to 4096 by model). Nothing
expires; ``EmulatorState.reset`` forgets everything; the book keeps the newest ``size`` prefixes.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MIN_TOKENS = 1024
OPENAI_STEP = 128
MARK = "cache_control"


@dataclass(frozen=True, slots=True)
class CachePoint:
    """A block boundary: the prefix's hash, its tokens, and whether the prefix is written to the cache."""

    key: str
    tokens: int
    write: bool
    ttl: str = "5m"  # the breakpoint's cache_control ttl (Anthropic)


class Prefixes:
    """Builds a request's cache points: ``add`` each block in prompt order."""

    __slots__ = ("_hash", "points", "tokens")

    def __init__(self, provider: str, model: str) -> None:
        self._hash = hashlib.sha256(f"{provider}\0{model}".encode())
        self.tokens = 0
        self.points: list[CachePoint] = []

    def add(self, block: Any, tokens: int, *, write: bool = True, ttl: str = "5m") -> None:
        if isinstance(block, dict) and MARK in block:
            block = {k: v for k, v in block.items() if k != MARK}
        self._hash.update(json.dumps(block, sort_keys=True, separators=(",", ":"), default=str).encode())
        self.tokens += tokens
        self.points.append(CachePoint(self._hash.copy().hexdigest(), self.tokens, write, ttl))


class PromptCacheBook:
    """The prefixes one emulator has written (bounded, oldest forgotten first)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def clear(self) -> None:
        self._seen.clear()

    def use(self, points: Sequence[CachePoint], *, explicit: bool, step: int = 1) -> tuple[int, int]:
        """(tokens read from the cache, tokens written to it) for one request; remembers its prefixes."""
        writes = [p for p in points if p.write]
        if not writes:
            return 0, 0
        upto = points[: points.index(writes[-1]) + 1]  # a hit is looked for back from the last breakpoint
        read = max((p.tokens for p in upto if p.key in self._seen), default=0)
        if step > 1 and read:
            read = MIN_TOKENS + (read - MIN_TOKENS) // step * step
        last = writes[-1]
        written = last.tokens - read if explicit and last.tokens >= MIN_TOKENS and last.key not in self._seen else 0
        for p in writes:
            if p.tokens >= MIN_TOKENS:
                self._seen[p.key] = None
                self._seen.move_to_end(p.key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return read, max(0, written)
