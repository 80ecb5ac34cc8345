"""The adapter skeleton every provider shares: its SDK builds each request, the transport sends it.

``SdkBuiltAdapter`` owns what does not depend on the provider: one ``transport.Transport``
(the target's pool) shared with its ``bound`` views, the non-streaming and streaming call
around it, JSON reading, and the mapping of any failure to ``UpstreamError``. A provider
module supplies ``build`` (the SDK turns the translated request into URL, headers and body),
``answer`` (the 200 body to a ``chat.completion``) and ``stream_translator``; providers with an
embeddings API also ``build_embed`` and ``embed_answer`` (``embed``: the same send and failure mapping).

Building is the app's business, sending the target's: a request that cannot be built (the
translator refuses it, the SDK's types refuse it, a NaN or a lone surrogate cannot be encoded)
is a CLIENT failure (400: no breaker verdict, no fallback, ``build_failure``); only what happens
from the send on counts against the target (``failure``).

Why the SDK builds but does not send: its own send pipeline cost more CPU per call than the
whole exchange on a bare aiohttp session (``transport``'s docstring, bench/README.md).
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any, Protocol, TypeVar, cast

from modelroute.api.v1alpha1.spec import Params, Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.chunkstream import ChunkStream
from modelroute.sidecar.providers.errors import bad_response, client_error, scrub
from modelroute.sidecar.providers.transport import Prepared, Transport
from modelroute.sidecar.translate.errors import StreamError, TranslationError

Json = dict[str, Any]
T = TypeVar("T")

WARM_REQUEST: Json = {"model": "warm-up", "messages": [{"role": "user", "content": "warm-up"}], "max_tokens": 1}
"""What ``warm`` builds (and never sends): the smallest chat request every provider translates."""

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def dumps(body: Json) -> bytes:
    """A request body as the SDKs serialize it (compact UTF-8 JSON), with one reused encoder."""
    return _encode(body).encode()


class StreamTranslator(Protocol):
    def feed(self, event: Json) -> list[Json]: ...
    def finish(self) -> list[Json]: ...


class SdkBuiltAdapter:
    """One target: ``target``, translation params and system prompt, and the pool (shared with ``bound`` views).

    ``complete`` keeps to its ``timeout`` on its own (building never waits; the transport's deadline
    covers the exchange), so the attempt loop adds no timer around it (``bounds_timeout``)."""

    bounds_timeout = True

    def __init__(self, target: Target, *, params: Params | None, system: str | None) -> None:
        self.target = target
        self._params = params
        self._system = system
        self._owner = True  # False on a ``bound`` view: the pool is closed by the adapter it came from
        self._provider = target.provider.value
        self._transport = Transport(self._provider)

    # ---- provider specifics -------------------------------------------------------------

    async def build(self, request: Json, stream: bool) -> tuple[Prepared, bytes]:
        """Where and what to send for the app's chat ``request``, built by the SDK."""
        raise NotImplementedError

    def answer(self, data: Json) -> Json:
        """The provider's 200 body -> a ``chat.completion`` dict (or ``UpstreamError``)."""
        raise NotImplementedError

    def stream_translator(self, request: Json) -> StreamTranslator:
        raise NotImplementedError

    async def build_embed(self, request: Json) -> tuple[Prepared, bytes]:
        """Where and what to send for a canonical embeddings request (providers with an embeddings API)."""
        raise client_error(400, f"{self._provider}: this provider has no embeddings API")

    def embed_answer(self, data: Json, request: Json) -> Json:
        """The provider's 200 embeddings body -> the canonical answer."""
        raise NotImplementedError

    def failure(self, exc: BaseException) -> UpstreamError:
        """Any exception of a call, from the send on, that is not already an ``UpstreamError``."""
        return map_failure(exc, self._provider)

    def build_failure(self, exc: Exception) -> UpstreamError:
        """Why the app's request could not be built for this target: the request's fault (CLIENT, 400)."""
        if isinstance(exc, TranslationError):
            return client_error(400, scrub(str(exc)))
        if isinstance(exc, RecursionError):
            return client_error(400, f"{self._provider}: the request nests too deeply to be encoded")
        if isinstance(exc, UnicodeError):
            return client_error(400, f"{self._provider}: the request holds a string that is not valid Unicode "
                                     "(a lone UTF-16 surrogate?) and cannot be encoded")
        if isinstance(exc, (ValueError, TypeError, KeyError, AttributeError, IndexError)):
            what = "a number is NaN or infinite" if "JSON compliant" in str(exc) else f"{type(exc).__name__}: {exc}"
            return client_error(400, scrub(f"{self._provider}: the request cannot be encoded for this target: {what}"))
        return map_failure(exc, self._provider)  # e.g. a key that cannot be read: the target's side

    async def _build(self, request: Json, stream: bool) -> tuple[Prepared, bytes]:
        try:
            return await self.build(request, stream)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.build_failure(exc) from None

    def warm(self) -> bool:
        """Pay now, when the config is applied, what the first request would pay; True if all of it was.

        That is the SDK's prepared URL and headers (``_Builder.prepare``), types the SDK builds on
        first use (google-genai's pydantic schemas: ~30 ms), the proxy lookup for the URL. Runs
        ``build`` on ``WARM_REQUEST`` (plain and streaming; nothing is sent) to completion only when
        it finishes without waiting (no I/O), since config applies are synchronous. Never raises:
        what could not be warmed is done by the first request, as before (bench/podstart.py).
        """
        try:
            for stream in (False, True):
                built = _run_now(self.build(WARM_REQUEST, stream))
                if built is None:
                    return False
                self._transport.proxy_for(built[0].url)
        except Exception:  # e.g. a key that cannot be read yet: the first request reports it
            return False
        return True

    # ---- the adapter ------------------------------------------------------------------------

    @property
    def transport(self) -> Transport:
        return self._transport

    async def complete(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        prepared, body = await self._build(request, False)
        try:
            return self.answer_body(await self._transport.send(prepared, body, timeout=timeout))
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.failure(exc) from None

    def answer_body(self, raw: bytes) -> Json:
        """The provider's 200 body (bytes) -> a ``chat.completion`` dict (``answer`` of its JSON)."""
        return self.answer(loads_object(raw, self._provider))

    async def embed(self, request: Json, *, timeout: float) -> Json:  # noqa: ASYNC109
        """A canonical embeddings request (``translate.embeddings``) -> the canonical answer."""
        try:
            prepared, body = await self.build_embed(request)
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.build_failure(exc) from None
        return await self._exchange(prepared, body, timeout, lambda data: self.embed_answer(data, request))

    async def _exchange(self, prepared: Prepared, body: bytes, timeout: float, answer: Callable[[Json], Json]) -> Json:  # noqa: ASYNC109
        try:
            raw = await self._transport.send(prepared, body, timeout=timeout)
            return answer(loads_object(raw, self._provider))
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.failure(exc) from None

    def stream(self, request: Json, *, timeout: float) -> ChunkStream:
        """The answer's chunks, by one or as they arrived together (``ChunkStream``)."""
        return ChunkStream(self._stream(request, timeout))

    async def _stream(self, request: Json, timeout: float) -> AsyncGenerator[list[Json], None]:  # noqa: ASYNC109
        """Per read of the answer, the chunks its events translate to (when there are any)."""
        events: AsyncGenerator[list[str], None] | None = None
        try:
            prepared, body = await self._build(request, True)
            events = self._transport.stream(prepared, body, timeout=timeout)
            tr = self.stream_translator(request)
            feed = tr.feed
            feed_events = getattr(tr, "feed_events", None)  # a translator that reads a read's event texts itself
            done = False
            async for batch in events:  # the events of one read, parsed here: no generator per event
                out: list[Json] = []
                failed: Exception | None = None
                if feed_events is not None:
                    try:
                        done = feed_events(batch, out, json_event)
                    except Exception as exc:  # the chunks before it are in ``out``: they still go out first
                        failed = exc
                else:
                    for item in batch:
                        if item == "[DONE]":
                            done = True
                            break
                        try:
                            out += feed(json_event(item))
                        except Exception as exc:  # the chunks before it still go out first, as they came
                            failed = exc
                            break
                if out:
                    yield out
                if failed is not None:
                    raise failed
                if done:
                    break
            tail = tr.finish()
            if tail:
                yield tail
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.failure(exc) from None
        finally:
            if events is not None:
                await events.aclose()

    def bound(self, params: Params | None, system: str | None) -> Any:
        """A view with other params and system prompt sharing this SDK client and pool."""
        view = copy.copy(self)
        view._params, view._system, view._owner = params, system, False
        return view

    async def aclose(self) -> None:
        if self._owner:
            await self._transport.aclose()
            await self.close_sdk()

    async def close_sdk(self) -> None:
        """Release what the SDK client holds (nothing, unless a provider says otherwise)."""


def _run_now(coro: Coroutine[Any, Any, T]) -> T | None:
    """``coro``'s result if it completes without suspending; else None (and it is closed, not run further)."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    return None


def map_failure(exc: BaseException, provider: str) -> UpstreamError:
    """A failure raised outside the transport (translation, our reading of the body)."""
    if isinstance(exc, UpstreamError):
        return exc
    if isinstance(exc, TranslationError):
        return client_error(400, str(exc))
    if isinstance(exc, StreamError):
        return stream_error(exc, provider)
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return bad_response(provider, "body is not JSON")
    return UpstreamError(FailureKind.BAD_RESPONSE, f"{provider}: {type(exc).__name__}")


def stream_error(exc: StreamError, provider: str) -> UpstreamError:
    """A failure reported inside a stream (error event, cut stream, impossible event)."""
    t = exc.error_type
    msg = scrub(f"{provider} stream: {exc}")
    if t in ("overloaded_error",):
        return UpstreamError(FailureKind.OVERLOADED, msg, status=529)
    if t in ("rate_limit_error", "RESOURCE_EXHAUSTED"):
        return UpstreamError(FailureKind.RATE_LIMITED, msg, status=429)
    if t == "incomplete_stream":
        return UpstreamError(FailureKind.CONNECTION, msg)
    if t == "DEADLINE_EXCEEDED":
        return UpstreamError(FailureKind.TIMEOUT, msg)
    if t == "bad_event":
        return UpstreamError(FailureKind.BAD_RESPONSE, msg, status=502)
    if t in _REQUEST_FAULTS:
        return client_error(400, msg, t, exc.body if isinstance(exc.body, dict) else None)
    return UpstreamError(FailureKind.SERVER, msg, status=500)  # api_error, server_error, UNAVAILABLE, ...


_REQUEST_FAULTS = frozenset({
    "invalid_request_error", "request_too_large", "INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE",
})


_decoder = json.JSONDecoder()
_decode = _decoder.decode
_scan: Callable[[str, int], tuple[Any, int]] = _decoder.scan_once  # type: ignore[attr-defined]  # what ``decode`` calls, without its whitespace matches and frames


def json_event(item: str) -> Json:
    """One SSE event's ``data`` parsed as a JSON object (or BAD_RESPONSE)."""
    try:
        event, end = _scan(item, 0)  # an event is one compact value: no whitespace around it
        if end != len(item):
            raise ValueError  # then ``decode`` says whether it is JSON with whitespace or not JSON
    except (StopIteration, ValueError):
        try:
            event = _decode(item)
        except ValueError:
            raise bad_response("stream", "event is not JSON") from None
    if event.__class__ is not dict:
        raise bad_response("stream", "event is not an object")
    return event  # type: ignore[no-any-return]


def loads_object(content: bytes | str, provider: str) -> Json:
    """The JSON object of a 200 body (bytes, or its text), or BAD_RESPONSE."""
    try:
        value = _decode(content if content.__class__ is str else content.decode())  # type: ignore[union-attr]
    except ValueError:  # not UTF-8 (or a BOM): json.loads detects the encoding, as before
        try:
            value = json.loads(content.encode() if isinstance(content, str) else content)
        except ValueError:
            raise bad_response(provider, "body is not JSON") from None
    if not isinstance(value, dict):
        raise bad_response(provider, "body is not a JSON object")
    return value
