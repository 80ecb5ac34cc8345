"""Everything one emulator remembers: faults, script, request log, models, accepted keys."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping

from .faults import FaultBook
from .model import PROVIDERS, Provider
from .reqlog import RequestLog
from .script import Script

DEFAULT_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano"],
    "anthropic": ["claude-haiku-4-5", "claude-sonnet-4-5"],
    "gemini": ["gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.0-flash"],
}


class EmulatorState:
    """Shared by the HTTP handlers and the Python API of one emulator.

    providers: which path families are served (others answer 404).
    models:    per provider, the listed models; with `strict_models` other models get 404.
    strict:    validate every request body against its provider's published request schema
               (the default); False accepts any body the dialect can parse.
    api_keys:  per provider, the accepted keys; a provider without an entry accepts any key.
    """

    def __init__(
        self,
        *,
        providers: Iterable[Provider] = PROVIDERS,
        seed: int | None = 0,
        log_size: int = 10_000,
        models: Mapping[str, list[str]] | None = None,
        strict_models: bool = False,
        api_keys: Mapping[str, Collection[str]] | None = None,
        strict: bool = True,
    ) -> None:
        self.providers: frozenset[str] = frozenset(providers)
        unknown = self.providers - set(PROVIDERS)
        if unknown:
            raise ValueError(f"unknown provider(s): {', '.join(sorted(unknown))}")
        self.faults = FaultBook(seed)
        self.script = Script()
        self.log = RequestLog(log_size)
        self.models: dict[str, list[str]] = {**DEFAULT_MODELS, **(models or {})}
        self.strict_models = strict_models
        self.strict = strict
        self.api_keys: dict[str, frozenset[str]] = {p: frozenset(k) for p, k in (api_keys or {}).items()}
        self._ids = itertools.count(1)

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def reset(self) -> None:
        """Forget faults, script and the request log (models and keys stay)."""
        self.faults.clear()
        self.script.clear()
        self.log.clear()
