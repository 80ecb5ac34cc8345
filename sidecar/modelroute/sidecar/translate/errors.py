"""Exceptions raised by the translators.

Two ways translation can fail, and the adapters map them differently:

* ``TranslationError``: the app's request cannot be expressed for this provider
  (``n > 1`` for Anthropic, an audio part, a custom tool). The request itself is at fault:
  map it to ``FailureKind.CLIENT`` (400), or fall back if another target could serve it.
* ``StreamError``: the upstream stream reported an error event, or ended before it was
  complete. Map it to ``FailureKind.BAD_RESPONSE`` / ``SERVER`` (``kind`` says which);
  after the first chunk reached the app the server must end the app's stream with an error.
"""

from __future__ import annotations

from typing import Any


class TranslationError(ValueError):
    """The request cannot be translated for the target provider. ``str(e)`` is safe to show.

    ``param`` names the offending request field when the translator knows it (the OpenAI
    error envelope's ``param``).
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class StreamError(Exception):
    """An upstream stream failed mid-way.

    ``error_type`` is the provider's error type when it sent one (``overloaded_error``,
    ``rate_limit_error``, ...), ``"incomplete_stream"`` when the stream ended without its
    terminal event, ``"bad_event"`` when an event had an impossible shape.
    """

    def __init__(self, message: str, *, error_type: str = "stream_error", body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_type = error_type
        self.body = body

    @property
    def retryable(self) -> bool:
        """True when the provider said the failure was on its side (overload, rate limit, 5xx)."""
        return self.error_type in _RETRYABLE

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"


_RETRYABLE = frozenset({
    "overloaded_error", "rate_limit_error", "api_error", "incomplete_stream",
    "UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "DEADLINE_EXCEEDED",
})
