"""The one seam between the adapters and the network: a target's aiohttp connection pool.

Each provider's official SDK builds the request (``Prepared``: the URL, its authentication
and its own headers, and for Gemini the body too); this module sends it. Sending used to go
through the SDKs' own request pipelines (httpx2 request and response objects over their
aiohttp transport), which cost ~1.5 ms of CPU per call on this project's 2-core benchmark
machine against ~0.3 ms for the same exchange on a bare ``aiohttp.ClientSession``: more than
the whole latency budget of the sidecar (bench/README.md has the figures). So the SDK
prepares the headers once per key (``openai_anthropic.prepare``, ``gemini._Connection``) and the
request goes out here, on one pool per target.

Everything the network can do wrong leaves as ``UpstreamError``: an HTTP error status is
classified by ``errors.from_status`` exactly as for the SDK exceptions before; refused,
reset and cut connections are CONNECTION, timeouts TIMEOUT. Observers registered with
``observe_headers`` see the headers of every answer (the local rate limiter learns from
them), errors and streams included, before the body is read.

Proxies: like the SDKs' own clients, the pool honours ``HTTPS_PROXY``/``HTTP_PROXY``/
``NO_PROXY``, resolved once per target instead of once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx2
from aiohttp import hdrs
from aiohttp.helpers import get_env_proxy_for_url
from aiohttp.typedefs import LooseHeaders
from multidict import CIMultiDict
from yarl import URL

from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.providers.errors import bad_response, from_status, parse_body
from modelroute.sidecar.providers.idle import IdleWatch

HeaderObserver = Callable[[Mapping[str, str]], None]

MAX_CONNECTIONS = 1000  # per target, as the SDKs' own pools
_NEVER = float("inf")  # aiohttp's ceil_threshold: deadlines are kept to the moment, never rounded up to the second

# Headers of an SDK-built request that belong to its own HTTP client, not to the API call.
_TRANSPORT_HEADERS = frozenset({
    "host", "connection", "content-length", "transfer-encoding", "accept-encoding",
    "x-stainless-read-timeout", "x-stainless-timeout", "x-stainless-raw-response",
})


@dataclass(frozen=True)
class Prepared:
    """What an SDK built for one endpoint and key: where to send and with which headers.

    ``secrets`` are the credentials inside ``headers``; error messages are scrubbed of them.
    """

    url: str
    headers: Mapping[str, str]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    wire: CIMultiDict[str] = field(init=False, repr=False, compare=False)
    """``headers`` as aiohttp keeps them, built once: handed over as they are (``_Request``)."""
    skip: tuple[str, ...] | None = field(init=False, repr=False, compare=False)
    """What aiohttp must not add: its own User-Agent, unless the SDK set one (None: nothing to skip)."""

    def __post_init__(self) -> None:
        wire = CIMultiDict(self.headers)
        object.__setattr__(self, "wire", wire)
        object.__setattr__(self, "skip", None if hdrs.USER_AGENT in wire else (hdrs.USER_AGENT,))

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Prepared({self.url!r})"


def tls_context() -> ssl.SSLContext:
    """The process's verifying TLS context: aiohttp's own default, shared.

    The SDK clients that only build requests get it too (an SSL context with the CA bundle
    loaded costs ~2 MB, and every SDK client would otherwise make its own).
    """
    global _tls
    if _tls is None:
        shared = getattr(aiohttp.connector, "_SSL_CONTEXT_VERIFIED", None)
        _tls = shared if isinstance(shared, ssl.SSLContext) else ssl.create_default_context()
    return _tls


_tls: ssl.SSLContext | None = None


class Unsent(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """The transport of the SDKs' builder clients (httpx2), which build requests and never send them.

    Given a transport, an httpx2 client makes no connection pool of its own: ``httpcore2``, ``h11``
    and the rest of its sending stack (~60 modules, ~30 ms of CPU at every start) are never imported.
    """

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raise RuntimeError(f"an SDK builder client tried to send {request.method} {request.url}: requests go through Transport")

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self.handle_request(request)


def api_headers(items: Any) -> dict[str, str]:
    """An SDK-built header list without what its HTTP client would add or manage itself."""
    return {str(k): str(v) for k, v in items if str(k).lower() not in _TRANSPORT_HEADERS}


def env_proxy(url: str) -> tuple[URL, aiohttp.BasicAuth | None] | None:
    """The proxy the environment asks for ``url`` (``*_PROXY``/``NO_PROXY``), as aiohttp's ``trust_env`` would."""
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:
        return None


class _Request(aiohttp.ClientRequest):
    """aiohttp's client request, taking the prepared headers in one ``extend`` rather than one by one.

    ``ClientRequest.update_headers`` adds a request's headers after ``Host`` one at a time in a
    Python loop, each checked for being a ``Host`` header; ``Prepared`` headers never hold one
    (``api_headers`` drops it), and then one ``extend`` gives the same headers in the same order:
    the same bytes on the wire (``tests/unit/sidecar/test_transport.py`` compares them).
    """

    def update_headers(self, headers: LooseHeaders | None) -> None:
        if not isinstance(headers, CIMultiDict) or hdrs.HOST in headers:
            super().update_headers(headers)
            return
        host = self.url.host_port_subcomponent
        assert host is not None  # absolute URLs only (aiohttp asserts the same)
        self.headers = CIMultiDict(((hdrs.HOST, host),))
        self.headers.extend(headers)


class Transport:
    """One target's pool: ``send`` for whole answers, ``stream`` for SSE. Created per adapter, shared by its views."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._observers: dict[str, HeaderObserver] = {}
        self._proxies: dict[str, tuple[URL, aiohttp.BasicAuth | None] | None] = {}

    def observe_headers(self, key: str, observer: HeaderObserver) -> bool:
        """Call ``observer`` with the headers of every answer; one observer per ``key`` (False if taken)."""
        if key in self._observers:
            return False
        self._observers[key] = observer
        return True

    @property
    def observers(self) -> tuple[str, ...]:
        return tuple(self._observers)

    def _pool(self) -> aiohttp.ClientSession:
        if self._closed:  # a late retry after the owner closed: no new pool that nobody would close
            raise UpstreamError(FailureKind.CONNECTION, f"{self.provider}: the target's connection pool is closed")
        if self._session is None:  # needs a running loop, hence on first use
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, ttl_dns_cache=60, ssl=tls_context()),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,  # resolved once per URL below instead of a thread hop per request
                raise_for_status=False,
                request_class=_Request,
            )
        return self._session

    def proxy_for(self, url: str) -> tuple[URL, aiohttp.BasicAuth | None] | None:
        """The proxy for ``url`` from the environment, looked up once per URL (``*_PROXY``/``NO_PROXY``)."""
        try:
            return self._proxies[url]
        except KeyError:
            if len(self._proxies) > 64:
                self._proxies.clear()
            proxy = self._proxies[url] = env_proxy(url)
            return proxy

    async def _open(self, req: Prepared, body: bytes, limits: aiohttp.ClientTimeout,
                    total: float | None = None) -> aiohttp.ClientResponse:
        proxy = self.proxy_for(req.url)
        try:
            resp = await self._pool().post(req.url, data=body, headers=req.wire, skip_auto_headers=req.skip, timeout=limits,
                                           allow_redirects=False, proxy=proxy[0] if proxy else None,
                                           proxy_auth=proxy[1] if proxy else None)
        except Exception as exc:
            raise self.failure(exc, total) from None
        for observer in self._observers.values():
            with contextlib.suppress(Exception):  # a strange header must never fail the request
                observer(resp.headers)
        if resp.status >= 300:
            try:
                raw = await resp.read()
            except Exception:
                raw = b""
            finally:
                resp.release()
            raise from_status(resp.status, resp.headers, parse_body(raw), provider=self.provider, secrets=req.secrets)
        return resp

    async def send(self, req: Prepared, body: bytes, *, timeout: float) -> bytes:  # noqa: ASYNC109
        """POST ``body``; the 2xx answer's body, or ``UpstreamError``. ``timeout`` bounds the whole
        exchange to the moment (no rounding up), a TIMEOUT saying so as the attempt loop would."""
        resp = await self._open(req, body, aiohttp.ClientTimeout(total=timeout, ceil_threshold=_NEVER), timeout)
        try:
            return await resp.read()
        except Exception as exc:
            raise self.failure(exc, timeout) from None
        finally:
            resp.release()

    async def stream(self, req: Prepared, body: bytes, *, timeout: float) -> AsyncGenerator[list[str], None]:  # noqa: ASYNC109
        """POST ``body`` and yield, per read of the 2xx answer, the ``data`` of the server-sent
        events it completed (a list: one item, or several when they arrived together; never empty).

        ``timeout`` bounds connecting and each read (the router bounds the whole stream).
        Closing the generator drops the connection.
        """
        from modelroute.sidecar.providers.sse import SseReader

        # Each wait (for the answer's headers, then each read) is bounded by one IdleWatch, not
        # by aiohttp's sock_read, which cancels and re-arms a loop timer on every read.
        watch = IdleWatch(timeout)
        watch.arm()
        try:
            resp = await self._open(req, body, aiohttp.ClientTimeout(total=None, sock_connect=timeout))
        except BaseException as exc:
            watch.close()
            if isinstance(exc, asyncio.CancelledError) and watch.expired():
                raise UpstreamError(FailureKind.TIMEOUT, f"{self.provider}: timed out") from None
            raise
        complete = False
        try:
            reader = SseReader()
            content = resp.content
            while True:
                watch.arm()
                try:
                    data = await content.readany()
                except asyncio.CancelledError:
                    if watch.expired():
                        raise UpstreamError(FailureKind.TIMEOUT, f"{self.provider}: timed out") from None
                    raise
                watch.disarm()
                if not data:
                    break
                events = reader.feed(data)
                if events:
                    yield events
            if events := reader.end():
                yield events
            complete = True
        except UpstreamError:
            raise
        except Exception as exc:
            raise self.failure(exc) from None
        finally:
            watch.close()
            if not complete:  # the reader stopped at its end marker ([DONE]): take what already arrived
                with contextlib.suppress(Exception):
                    resp.content.read_nowait()
            if resp.content.at_eof():
                resp.release()  # read to the end: the connection goes back to the pool
            else:
                resp.close()  # stopped early or broken: drop the connection

    def failure(self, exc: BaseException, timeout: float | None = None) -> UpstreamError:
        """A transport exception as TIMEOUT or CONNECTION (messages never carry request details)."""
        if isinstance(exc, UpstreamError):
            return exc
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            if timeout is not None:  # the whole exchange's deadline (``send``)
                return UpstreamError(FailureKind.TIMEOUT, f"no answer within {timeout:.3g}s")
            return UpstreamError(FailureKind.TIMEOUT, f"{self.provider}: timed out")
        if isinstance(exc, aiohttp.ClientPayloadError):
            return UpstreamError(FailureKind.CONNECTION, f"{self.provider}: connection lost mid-answer")
        if isinstance(exc, (aiohttp.ClientError, OSError, EOFError)):
            return UpstreamError(FailureKind.CONNECTION, f"{self.provider}: connection failed")
        if isinstance(exc, UnicodeDecodeError):
            return bad_response(self.provider, "stream is not UTF-8")
        if isinstance(exc, ValueError):  # aiohttp's own checks on a malformed URL or header
            return UpstreamError(FailureKind.CONNECTION, f"{self.provider}: request could not be sent")
        return UpstreamError(FailureKind.BAD_RESPONSE, f"{self.provider}: {type(exc).__name__}")

    async def aclose(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def closed(self) -> bool:
        return self._closed
