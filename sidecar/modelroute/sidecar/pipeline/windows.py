"""Context windows: the input-size estimate and the per-target step that skips a request before the call.

A request longer than a model's window fails upstream with a 400; a route that sends long
documents to a long-context target wants that decided before any call. ``WindowStep`` is the
first attempt step of a target with a known window (``ModelRegistry.window``) or a ``when``
rule; routes without either never run it. It skips the target with ``FailureKind.CONTEXT_WINDOW``
(estimated input + requested output above the window, or requested output above the model's
maximum output tokens) or ``FailureKind.INPUT_SIZE`` (outside
``when``): a fallback with no upstream call that leaves the breaker alone.

The estimate (no tokenizer: tiktoken's encodings are fetched at run time, not bundled, and
Anthropic's and Gemini's are not public): UTF-8 bytes of the text / 3, rounded up, plus
``MESSAGE_OVERHEAD`` per message and ``REPLY_OVERHEAD``, and ``IMAGE_TOKENS`` per non-text part.
BPE tokenizers average about 4 bytes per token on English and code and about 3 bytes per CJK
character (one token or less each), so bytes/3 overestimates ordinary text; runs of one-letter
words or symbols can still tokenize denser (``docs/context-windows.md``). Computed once per
request (``Call.input_tokens``), in time linear in the message count: ``str.isascii`` is O(1), so
ASCII text is never encoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from modelroute.api.v1alpha1.providers import Window
from modelroute.api.v1alpha1.spec import InputSize
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.routing.call import Call, Step
from modelroute.sidecar.translate.chat import max_tokens_of

Json = dict[str, Any]

BYTES_PER_TOKEN = 3
MESSAGE_OVERHEAD = 4     # role and framing tokens of one message (OpenAI documents 3-4)
REPLY_OVERHEAD = 3       # the assistant reply's priming
IMAGE_TOKENS = 1600      # one image or file part: Anthropic's ~1,600 for a full-size image, above OpenAI's tiles


def text_bytes(text: str) -> int:
    """UTF-8 length of ``text`` without encoding ASCII (``isascii`` is a flag check)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _ceil_div(n: int) -> int:
    return -(-n // BYTES_PER_TOKEN)


def estimate_text(text: str | None) -> int:
    """Tokens of one text (a system prompt) by the same rule, without message overhead."""
    return _ceil_div(text_bytes(text)) if text else 0


def estimate_input(request: Json) -> int:
    """Conservative estimate of a chat request's input tokens (see the module docstring)."""
    size = 0
    parts = 0
    messages = request.get("messages")
    if not isinstance(messages, list):  # the inbound parsers refuse it; never crash on it here
        messages = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str):
            size += text_bytes(content)
        elif isinstance(content, list):
            for part in content:
                text = part.get("text") if isinstance(part, dict) else None
                if isinstance(text, str):
                    size += text_bytes(text)
                else:
                    parts += 1
        calls = m.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                size += text_bytes(str(fn.get("arguments") or "")) + text_bytes(str(fn.get("name") or ""))
    tools = request.get("tools")
    if tools:
        size += text_bytes(repr(tools))
    return _ceil_div(size) + MESSAGE_OVERHEAD * len(messages) + REPLY_OVERHEAD + IMAGE_TOKENS * parts


def requested_output(request: Json, cap: int | None) -> int:
    """Output tokens the request asks for, clamped by the params' ``maxTokens`` (none asked: the cap, else 0)."""
    asked = max_tokens_of(request)
    if asked is None:
        return cap or 0
    return min(asked, cap) if cap is not None else asked


class WindowStep:
    """A target's pre-check: its ``when`` rule and its window, before its limiter and its call."""

    __slots__ = ("extra", "inner", "label", "output_cap", "self_bounded", "when", "window")

    def __init__(self, inner: Step, *, label: str, window: Window | None, when: InputSize | None,
                 extra: int = 0, output_cap: int | None = None) -> None:
        self.inner = inner
        self.self_bounded: bool = getattr(inner, "self_bounded", False)  # the check never waits (router._attempts)
        self.label = label              # the model id, for the reason
        self.window = window
        self.when = when
        self.extra = extra              # tokens the route adds (its system prompt)
        self.output_cap = output_cap    # the params' maxTokens

    def check(self, call: Call, request: Json) -> None:
        """Raise ``UpstreamError`` (INPUT_SIZE or CONTEXT_WINDOW, no status) when the target must be skipped."""
        tokens = call.input_tokens
        if tokens is None:
            tokens = call.input_tokens = estimate_input(request)
        tokens += self.extra
        when = self.when
        if when is not None and not when.admits(tokens):
            raise UpstreamError(FailureKind.INPUT_SIZE, f"input of ~{tokens} tokens is outside this target's when "
                                f"[{when.min_input_tokens or 0}, {when.max_input_tokens or 'any'}]")
        window = self.window
        if window is not None:
            out = requested_output(request, self.output_cap)
            if out > window.max_output:
                raise UpstreamError(FailureKind.CONTEXT_WINDOW, f"{out} requested output tokens exceed the "
                                    f"{window.max_output} maximum output tokens of {self.label}")
            if tokens + out > window.context:
                raise UpstreamError(FailureKind.CONTEXT_WINDOW, f"~{tokens} input + {out} output tokens exceed the "
                                    f"{window.context}-token context window of {self.label}")

    async def complete(self, call: Call, request: Json, timeout: float) -> Json:  # noqa: ASYNC109
        self.check(call, request)
        return await self.inner.complete(call, request, timeout)

    def stream(self, call: Call, request: Json, timeout: float) -> AsyncIterator[Json]:
        self.check(call, request)
        return self.inner.stream(call, request, timeout)

