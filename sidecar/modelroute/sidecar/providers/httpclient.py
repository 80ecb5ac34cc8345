"""A leaner ``httpx2.AsyncClient`` for the Stainless SDKs' ``http_client`` slot.

Both ``openai`` and ``anthropic`` accept any ``httpx2.AsyncClient`` as ``http_client``; we
give them their own aiohttp-backed ``DefaultAioHttpClient`` with ``LeanRequests`` mixed in.
The SDK still builds, authenticates, sends and error-checks every request; only
``build_request`` takes a shorter path for what the SDK always hands it (an absolute URL, a
complete header list, a body, a timeout): it skips httpx2's generic merging of base URL,
cookies and query params, and reuses one parsed ``httpx2.URL`` per endpoint instead of
parsing the same string on every request. Anything else (params, cookies, files, form
data, a relative URL) goes through httpx2's own ``build_request`` unchanged.

Measured (bench/latency.py, openai route, sidecar CPU per request): see bench/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import httpx2
from httpx2._client import UseClientDefault
from httpx2._types import (
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestExtensions,
    RequestFiles,
)

_MAX_URLS = 64  # a target talks to one or two endpoints; this only bounds a misuse


class LeanRequests(httpx2.AsyncClient):
    """Mix in before an SDK's ``httpx2.AsyncClient`` subclass (``class C(LeanRequests, DefaultAioHttpClient)``)."""

    _lean_urls: dict[str, httpx2.URL]
    _lean_src: httpx2.Headers | None = None
    _lean_defaults: list[tuple[str, str]]

    def _lean_default_headers(self) -> list[tuple[str, str]]:
        # The client's own defaults (Accept-Encoding, Connection, ...), recomputed only if the
        # headers object is replaced (``client.headers = ...``).
        src = self.headers
        if src is not self._lean_src:
            self._lean_defaults = src.multi_items()
            self._lean_src = src
        return self._lean_defaults

    def _lean_url(self, url: str) -> httpx2.URL:
        try:
            urls = self._lean_urls
        except AttributeError:
            urls = self._lean_urls = {}
        parsed = urls.get(url)
        if parsed is None:
            if len(urls) >= _MAX_URLS:
                urls.clear()
            parsed = urls[url] = httpx2.URL(url)
        return parsed

    def build_request(
        self,
        method: str,
        url: httpx2.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: Any | None = None,
        timeout: Any = httpx2.USE_CLIENT_DEFAULT,
        extensions: RequestExtensions | None = None,
    ) -> httpx2.Request:
        simple = (
            data is None and files is None and json is None and not params and not cookies and extensions is None
            and isinstance(url, str) and url.startswith(("http://", "https://"))
            and not self.cookies and not self.params and not isinstance(headers, httpx2.Headers)
        )
        if not simple:
            return super().build_request(
                method, url, content=content, data=data, files=files, json=json, params=params, headers=headers,
                cookies=cookies, timeout=timeout, extensions=extensions,
            )
        assert isinstance(url, str)
        given: list[tuple[str | bytes, str | bytes]] = []
        if headers is not None:
            given = list(headers.items() if isinstance(headers, Mapping) else headers)
        # httpx2's merge: the client's defaults that the request does not set, then the request's own.
        overridden = {_key(k) for k, _ in given}
        merged: list[tuple[str | bytes, str | bytes]] = [
            (k, v) for k, v in self._lean_default_headers() if k.lower() not in overridden
        ]
        merged += given
        to = self.timeout if isinstance(timeout, UseClientDefault) else httpx2.Timeout(timeout)
        return httpx2.Request(method, self._lean_url(url), content=content, headers=cast(HeaderTypes, merged),
                              extensions={"timeout": to.as_dict()})


def _key(k: str | bytes) -> str:
    return (k if isinstance(k, str) else k.decode("latin-1")).lower()


def endpoint(base_url: httpx2.URL, path: str) -> str:
    """The absolute URL the SDK would build for ``path`` on ``base_url`` (its ``_prepare_url``), once."""
    return str(base_url.copy_with(raw_path=base_url.raw_path + path.lstrip("/").encode()))
