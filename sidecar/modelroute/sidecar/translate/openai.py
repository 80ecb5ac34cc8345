"""Chat request -> OpenAI (and OpenAI-compatible) Chat Completions, for one target.

The pivot format *is* this wire format, so the work is small: the model name, the route's
params and system prompt, ``stream_options.include_usage`` forced on when streaming (so
usage is always known, for stats and limits), and request fields the SDK's ``create()``
has no keyword for moved into ``extra_body`` (so a field newer than the SDK still reaches
the provider instead of raising ``TypeError``).

Responses pass through: ``chat_response`` only makes sure ``model`` is set.
``OpenAIStreamToChat`` gives streaming the same ``feed``/``finish``/``usage`` interface as the
other providers, and drops the usage-only chunk the app did not ask for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelroute.api.v1alpha1 import Params
from modelroute.sidecar.translate import cachemarks
from modelroute.sidecar.translate.accepts import ParamFilter
from modelroute.sidecar.translate.chat import RawChunk, raw_chunk, with_usage
from modelroute.sidecar.translate.chunktext import Template, learn, string_at
from modelroute.sidecar.translate.errors import StreamError
from modelroute.sidecar.translate.params import apply_params

Json = dict[str, Any]

# Keyword parameters of AsyncOpenAI().chat.completions.create (openai 3.x), besides messages/model.
CREATE_KWARGS = frozenset({
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n",
    "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_options", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options",
    "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options",
})
# Never forwarded: they are the SDK's own knobs, not body fields an app may set.
_SDK_ONLY = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})


def chat_to_openai_request(
    request: Json,
    *,
    model: str,
    params: Params | None = None,
    system: str | None = None,
    max_tokens_field: str = "max_completion_tokens",
    accepts: ParamFilter | None = None,
) -> Json:
    """Keyword arguments for ``AsyncOpenAI().chat.completions.create(**kwargs)``.

    ``request`` is the chat request as the app sent it (``model`` = route name); it is not
    mutated. ``params`` are the target's effective params (``effective_params``), ``system``
    the route prompt's system text. Use ``max_tokens_field="max_tokens"`` for
    openai-compatible servers that predate ``max_completion_tokens``.
    Unknown body fields are returned under ``extra_body``. ``accepts`` (the target's compiled
    ``ParamFilter``, e.g. for reasoning models) drops the params the model refuses first.
    """
    if accepts is not None:
        request, params = accepts.strip(request)
    body = cachemarks.strip(apply_params(request, params, system, max_tokens_field=max_tokens_field))
    if max_tokens_field == "max_completion_tokens" and body.get("max_tokens") is not None:
        # OpenAI deprecated max_tokens, and its reasoning models refuse it: send the one they all take.
        limit = body.pop("max_tokens")
        if body.get("max_completion_tokens") is None:
            body["max_completion_tokens"] = limit
    kwargs: Json = {"model": model, "messages": body.get("messages") or []}
    extra: Json | None = None
    for key, value in body.items():
        if key in ("model", "messages") or key in _SDK_ONLY:
            continue
        if key in CREATE_KWARGS:
            kwargs[key] = value
        else:
            if extra is None:
                extra = {}
            extra[key] = value
    if extra:
        kwargs["extra_body"] = extra
    return with_usage(kwargs) if kwargs.get("stream") else kwargs


def chat_response(response: Json, *, model: str) -> Json:
    """The provider's ``chat.completion`` dict, with ``model`` set if the provider left it out.

    ``model`` stays the provider's model id (what actually answered). Mutates and returns
    ``response`` (it is the adapter's own dict; no copy on the hot path).
    """
    if not response.get("model"):
        response["model"] = model
    return response


def stamp_route(obj: Json, *, route: str, target: str, prompt_version: str | None = None) -> Json:
    """Add a ``modelroute`` object (route, target, prompt version) to a response or chunk.

    Optional: headers carry the same facts. The OpenAI SDK keeps unknown fields, so apps
    can read it as ``response.model_extra["modelroute"]``. Mutates and returns ``obj``.
    """
    info: Json = {"route": route, "target": target}
    if prompt_version is not None:
        info["prompt_version"] = prompt_version
    obj["modelroute"] = info
    return obj


class OpenAIStreamToChat:
    """OpenAI stream chunks (``chunk.model_dump()`` or wire JSON dicts) -> chunks for the app.

    Chunks pass through unchanged, except the usage-only chunk (``choices == []``), which
    is kept in ``usage`` and forwarded only when ``include_usage`` (the app asked for it).
    ``finish()`` raises ``StreamError`` if no chunk carried a ``finish_reason``: a stream
    that stopped early must not look complete.
    """

    __slots__ = ("_learns", "_tpl", "finish_reason", "include_usage", "model", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.usage: Json | None = None
        self.finish_reason: str | None = None
        self._tpl: Template | None = None  # the shape of this stream's content chunks (``chunktext``)
        self._learns = _LEARNS

    def feed(self, chunk: Json) -> list[Json]:
        if "error" in chunk and "choices" not in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise StreamError(str(err.get("message", "upstream error")), error_type=str(err.get("type") or "api_error"), body=chunk)
        if not chunk.get("model"):
            chunk["model"] = self.model
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return [chunk] if (self.include_usage and usage) else []
        for c in choices:
            reason = c.get("finish_reason")
            if reason:
                self.finish_reason = reason
        if usage and not self.include_usage:
            chunk["usage"] = None
        return [chunk]

    def feed_raw(self, chunk: Json, text: str) -> list[Json]:
        """``feed``, for a chunk parsed from ``text``: a chunk passed on unchanged keeps its text
        (``chat.RawChunk``), so the OpenAI wire writes it as it came instead of serializing it again."""
        choices = chunk.get("choices")
        if choices and not chunk.get("usage") and chunk.get("model") and "\n" not in text:
            # The common chunk (content, no usage): what ``feed`` would do to it, without its other cases.
            for c in choices:
                reason = c.get("finish_reason")
                if reason:
                    self.finish_reason = reason
            return [raw_chunk(chunk, text)]
        intact = bool(chunk.get("model")) and not (chunk.get("usage") and not self.include_usage) and "\n" not in text
        out = self.feed(chunk)
        if intact and len(out) == 1 and out[0] is chunk:
            return [RawChunk(chunk, text)]
        return out

    def feed_events(self, items: list[str], out: list[Json], parse: Callable[[str], Json]) -> bool:
        """``feed_raw(parse(item), item)`` for the events of one read, in one loop, into ``out``; True at
        ``[DONE]`` (nothing after it is read). A failure is raised with the chunks before it in ``out``.

        A content chunk of the stream's template (``chunktext``) is built from its text alone."""
        tpl = self._tpl
        if tpl is not None:
            prefix, suffix, start, tail, top, choice, mid, skip, content_first = tpl
        for item in items:
            if tpl is not None and item.startswith(prefix) and item.endswith(suffix):
                end = len(item) - tail
                if mid is None:  # one hole: the content string
                    text = item[start:end]
                    content = text if '"' not in text and "\\" not in text and text.isprintable() else string_at(
                        item, start, end)  # no escapes, no control characters: the string is its text
                    if content is not None and end >= start:  # ``chunktext.build``, inline: once per chunk
                        chunk: RawChunk = _new_dict(RawChunk)
                        _fill(chunk, top)
                        _set(chunk, "choices", [{**choice, "delta": {"content": content}}])
                        chunk.raw = item
                        out.append(chunk)
                        continue
                else:  # two: the content and the ``obfuscation`` string, either order, ``mid`` between them
                    cut = item.find(mid, start, end)
                    if cut >= 0:
                        one = item[start:cut]
                        two = item[cut + skip:end]
                        first = one if '"' not in one and "\\" not in one and one.isprintable() else string_at(item, start, cut)
                        second = two if '"' not in two and "\\" not in two and two.isprintable() else string_at(
                            item, cut + skip, end)
                        if first is not None and second is not None:
                            chunk = _new_dict(RawChunk)
                            _fill(chunk, top)
                            _set(chunk, "choices", [{**choice, "delta": {"content": first if content_first else second}}])
                            _set(chunk, "obfuscation", second if content_first else first)
                            chunk.raw = item
                            out.append(chunk)
                            continue
            if item == "[DONE]":
                return True
            parsed = parse(item)
            got = self.feed_raw(parsed, item)
            out += got
            if self._learns and len(got) == 1 and got[0].__class__ is RawChunk:
                shaped, new = learn(item, parsed, parse)
                if shaped:  # a content chunk that did not fit the template: this one's, if it has one
                    self._learns -= 1  # a stream whose chunks never fit one template stops trying
                    if new is not None:
                        tpl = self._tpl = new
                        prefix, suffix, start, tail, top, choice, mid, skip, content_first = tpl
        return False

    def finish(self) -> list[Json]:
        if self.finish_reason is None:
            raise StreamError("stream ended before a finish_reason", error_type="incomplete_stream")
        return []


_LEARNS = 3  # templates a stream may learn (one is the rule; a chunk id that changes, a field that varies)
_new_dict = dict.__new__
_fill = dict.update
_set = dict.__setitem__
