"""The adapter seam: the only code that talks to providers, one implementation per SDK.

An adapter takes the app's canonical OpenAI Chat Completions request (``model`` = route
name), applies its target's model, params and the route's system prompt while converting it
to its provider's wire format (``modelroute.sidecar.translate``), calls the provider through
the official SDK and converts the answer back.
Every failure leaves an adapter as ``UpstreamError``; SDK exceptions never escape.

``build_adapter`` imports a provider module (and with it the SDK) only when a configured
target needs it, so a sidecar that serves only OpenAI never loads ``anthropic`` or
``google.genai``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from modelroute.api.v1alpha1.spec import OpenAIApi, Params, Provider, Target

KeyFn = Callable[[], str]
"""Returns the target's current API key; cheap, and re-reads rotated key files itself."""


def current_key(key: KeyFn | None, default: str = "") -> str:
    """The key to send now: ``key()``, or ``default`` for a keyless target (or an empty key)."""
    return (key() if key is not None else None) or default


class Adapter(Protocol):
    """One target's client (one SDK client, one connection pool, reused by every request)."""

    target: Target

    async def complete(self, request: dict[str, Any], *, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """One non-streaming call; returns an OpenAI ``chat.completion`` dict."""
        ...

    def stream(self, request: dict[str, Any], *, timeout: float) -> AsyncIterator[dict[str, Any]]:
        """A streaming call; yields OpenAI ``chat.completion.chunk`` dicts.

        Nothing is sent before the first ``__anext__``. Errors (before or after the first
        chunk) are raised as ``UpstreamError`` from ``__anext__``; the iterator should be
        an async generator so the caller can ``aclose()`` it to drop the connection.
        """
        ...

    def bound(self, params: Params | None, system: str | None) -> Adapter:
        """This target with other ``params`` and system prompt, sharing this adapter's SDK client and pool.

        Cheap (no client, no SSL context, no I/O: microseconds), so a params or prompt change
        in a pushed config does not rebuild clients. The view does not own the client: its
        ``aclose`` does nothing, and the adapter ``build_adapter`` returned must outlive it
        (``runtime.Runtime`` refcounts that one).
        """
        ...

    async def aclose(self) -> None:
        """Close the SDK client and its connection pool (a ``bound`` view: nothing to close)."""
        ...


def build_adapter(
    target: Target, key: KeyFn | None, *, params: Params | None = None, system: str | None = None
) -> Adapter:
    """The adapter for ``target``; its SDK is imported here, on first use of a provider.

    ``key`` is called for each request (cheap; the adapters pick up a rotated key without
    rebuilding their connection pool); ``None`` means the endpoint needs no key
    (``openai-compatible`` only). ``params`` are the target's effective params
    (``translate.params.effective_params(route.params, target)``) and ``system`` the route
    prompt's system text; both default to none (the request goes through as sent).
    The returned adapter owns its SDK client; ``adapter.bound(params, system)`` derives
    views for other params and prompts that share it.
    Must be called with a running event loop only if the SDK needs one (none do today).
    """
    if target.provider in (Provider.OPENAI, Provider.OPENAI_COMPATIBLE):
        from modelroute.sidecar.providers.openai import OpenAIAdapter, OpenAIResponsesAdapter

        if target.api is OpenAIApi.RESPONSES:
            return OpenAIResponsesAdapter(target, key, params=params, system=system)
        return OpenAIAdapter(target, key, params=params, system=system)
    if target.provider is Provider.ANTHROPIC:
        from modelroute.sidecar.providers.anthropic import AnthropicAdapter

        return AnthropicAdapter(target, key, params=params, system=system)
    if target.provider is Provider.GEMINI:
        from modelroute.sidecar.providers.gemini import GeminiAdapter

        return GeminiAdapter(target, key, params=params, system=system)
    raise ValueError(f"unknown provider {target.provider!r}")
