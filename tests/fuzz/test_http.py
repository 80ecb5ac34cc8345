"""The inbound listener under generated bodies, over real HTTP, in front of the provider emulators.

For every endpoint (OpenAI chat and Responses, Anthropic Messages, Gemini generateContent and its stream,
classify, extract), near-valid bodies (``strategies``), sometimes compressed, sometimes
damaged on the wire. Invariants checked on every case:

* no 5xx unless the request reached an upstream (the emulator's request log grew);
* every error is in the envelope of the API the request came in on;
and after each endpoint's run (``Watched.check_clean``): nothing fetched (the trap server got no
hit; ``$ref``s in the generated schemas point at it), no file opened and no connection made but
to the emulator on the sidecar's thread, no breaker open, ``/healthz`` answering.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from .conftest import FUZZ, Watched
from .strategies import (
    JSON,
    ROUTES,
    anthropic_bodies,
    chat_bodies,
    classify_bodies,
    extract_bodies,
    gemini_bodies,
    responses_bodies,
)

Json = dict[str, Any]
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def check_envelope(api: str, status: int, text: str) -> None:
    """The body of an error answer is the envelope of ``api``, with a message."""
    body = json.loads(text)
    if api == "anthropic":
        assert body["type"] == "error" and isinstance(body["error"]["type"], str), body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    elif api == "gemini":
        err = body["error"]
        assert err["code"] == status and isinstance(err["status"], str) and err["message"], body
    else:
        err = body["error"]
        assert isinstance(err["message"], str) and err["message"] and isinstance(err["type"], str), body


def wire(raw: bytes, how: str) -> tuple[bytes, dict[str, str]]:
    """The body as sent: plain, compressed, or damaged."""
    if how == "gzip":
        return gzip.compress(raw), {"Content-Encoding": "gzip"}
    if how == "deflate":
        return zlib.compress(raw), {"Content-Encoding": "deflate"}
    if how == "fake-gzip":
        return raw, {"Content-Encoding": "gzip"}
    if how == "truncated":
        return raw[: len(raw) // 2], {}
    if how == "nan":
        return raw.replace(b"0.", b"NaN", 1).replace(b'"hi"', b'"\\ud800"', 1), {}
    return raw, {}


HOW = st.sampled_from(["plain"] * 6 + ["gzip", "deflate", "fake-gzip", "truncated", "nan"])


def exercise(watched: Watched, session: requests.Session, name: str, api: str, path: str, body: Any, how: str) -> None:
    raw, headers = wire(json.dumps(body).encode(), how)
    before = watched.upstream_count()
    r = session.post(watched.url + path, data=raw, headers={"Content-Type": "application/json", **headers}, timeout=30)
    reached = watched.upstream_count() > before
    COUNTS[name] = COUNTS.get(name, 0) + 1
    if r.status_code >= 500:
        assert reached, f"{r.status_code} without reaching an upstream: {r.text[:500]}"
    if r.status_code >= 400:
        check_envelope(api, r.status_code, r.text)


def after_run(watched: Watched, session: requests.Session) -> None:
    watched.check_clean()
    assert watched.breakers_open() == []
    assert session.get(watched.sidecar.admin_url + "/healthz", timeout=5).status_code == 200


def gemini_path(route: str, stream: bool) -> str:
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"/v1beta/models/{quote(route, safe='')}:{method}"


BODIES: dict[str, tuple[str, str, Callable[[str], st.SearchStrategy[Any]]]] = {
    "chat": ("openai", "/v1/chat/completions", chat_bodies),
    "messages": ("anthropic", "/v1/messages", anthropic_bodies),
    "responses": ("openai", "/v1/responses", responses_bodies),
    "classify": ("openai", "/v1/classify", lambda trap: classify_bodies()),
    "extract": ("openai", "/v1/extract", extract_bodies),
}


@pytest.mark.parametrize("name", list(BODIES))
def test_inbound_endpoint(watched: Watched, session: requests.Session, name: str) -> None:
    api, path, make = BODIES[name]

    @FUZZ
    @given(body=st.one_of(make(watched.trap_url), make(watched.trap_url), JSON), how=HOW)
    def run(body: Any, how: str) -> None:
        exercise(watched, session, name, api, path, body, how)

    run()
    after_run(watched, session)


def test_gemini_endpoints(watched: Watched, session: requests.Session) -> None:
    @FUZZ
    @given(body=st.one_of(gemini_bodies(watched.trap_url), gemini_bodies(watched.trap_url), JSON), how=HOW,
           route=st.one_of(st.sampled_from(ROUTES), st.text(min_size=1, max_size=12)), stream=st.booleans())
    def run(body: Any, how: str, route: str, stream: bool) -> None:
        exercise(watched, session, "gemini", "gemini", gemini_path(route, stream), body, how)

    run()
    after_run(watched, session)


def test_report_case_counts(watched: Watched) -> None:
    """Prints how many cases each endpoint ran (``-s`` shows it; hack/fuzz reports it)."""
    print("\nfuzz cases per endpoint:", json.dumps(COUNTS, sort_keys=True))
    assert not COUNTS or all(n > 0 for n in COUNTS.values())
