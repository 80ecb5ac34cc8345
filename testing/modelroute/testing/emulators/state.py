"""Everything one emulator remembers: faults, script, request log, models, accepted keys."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from typing import TypedDict, Unpack

from modelroute.api.v1alpha1.registry import ModelRegistry

from .faults import FaultBook
from .model import PROVIDERS, Provider
from .promptcache import PromptCacheBook
from .ratelimit import RateLimit, RateLimits
from .reqlog import RequestLog
from .script import Script

DEFAULT_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4o"],
    "anthropic": ["claude-haiku-4-5", "claude-sonnet-4-6"],
    "gemini": ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"],
}


class EmulatorOptions(TypedDict, total=False):
    """How one emulator behaves (``EmulatorState`` and ``EmulatorServer`` take these keywords).

    providers:     which path families are served (others answer 404); default all.
    seed:          seed of the fault book's random draws (default 0).
    log_size:      how many requests the log keeps (default 10,000).
    models:        per provider, the listed models (merged over ``DEFAULT_MODELS``).
    strict_models: other models than the listed ones get 404 (default False).
    api_keys:      per provider, the accepted keys; a provider without an entry accepts any key.
    strict:        validate every request body against its provider's published request schema
                   (default True); False accepts any body the dialect can parse.
    registry:      the model registry whose context windows are enforced in strict mode (default: the
                   built-in table, the sidecar's; ``windows.py``).
    rate_limit:    the provider's own per-key limits (``ratelimit.py``): 429 with ``retry-after`` beyond
                   them, ``x-ratelimit-*`` headers on every chat answer; default none.
    stream_words:  streamed text replies (no script rule, no tool call, no JSON mode) are this many
                   words, one content chunk each (default None: the usual echo); for benchmarks.
    """

    providers: Iterable[Provider]
    seed: int | None
    log_size: int
    models: Mapping[str, list[str]] | None
    strict_models: bool
    api_keys: Mapping[str, Collection[str]] | None
    strict: bool
    registry: ModelRegistry | None
    rate_limit: RateLimit | None
    stream_words: int | None


class EmulatorState:
    """Shared by the HTTP handlers and the Python API of one emulator (options: ``EmulatorOptions``)."""

    def __init__(self, **options: Unpack[EmulatorOptions]) -> None:
        self.providers: frozenset[str] = frozenset(options.get("providers", PROVIDERS))
        unknown = self.providers - set(PROVIDERS)
        if unknown:
            raise ValueError(f"unknown provider(s): {', '.join(sorted(unknown))}")
        self.faults = FaultBook(options.get("seed", 0))
        self.script = Script()
        self.log = RequestLog(options.get("log_size", 10_000))
        self.prompt_cache = PromptCacheBook()
        self.models: dict[str, list[str]] = {**DEFAULT_MODELS, **(options.get("models") or {})}
        self.strict_models = options.get("strict_models", False)
        self.strict = options.get("strict", True)
        self.registry = options.get("registry") or ModelRegistry()
        self.stream_words = options.get("stream_words")
        self.api_keys: dict[str, frozenset[str]] = {p: frozenset(k) for p, k in (options.get("api_keys") or {}).items()}
        limit = options.get("rate_limit")
        self.rate_limits = RateLimits(limit) if limit is not None else None
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def reset(self) -> None:
        """Forget faults, script, the request log and the prompt cache (models and keys stay)."""
        self.faults.clear()
        self.prompt_cache.clear()
        self.script.clear()
        self.log.clear()
