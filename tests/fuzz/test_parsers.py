"""Properties of every inbound parser and translator: any input gives a result or the one 4xx exception.

* ``body.parse_json`` / ``decode_content``: a value or ``BodyError`` for any bytes; an accepted value
  is encodable by the strict encoder the adapters use (no NaN, no lone surrogate) at any depth;
* the Anthropic, Gemini and Responses inbound translators: a chat request or ``TranslationError``;
* the task parsers and contracts: a task or ``TaskError`` / ``InvalidSchema``; a compiled schema
  validates anything without fetching (the audit hook watches this thread);
* the full build of each provider's request (translator, SDK, encoder): built, or a CLIENT
  ``UpstreamError`` (never a failure counted against the target).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelroute.api.v1alpha1.spec import Target
from modelroute.sidecar.errors import FailureKind, UpstreamError
from modelroute.sidecar.output import InvalidSchema, TaskError, parse_classify, parse_extract, task_contract
from modelroute.sidecar.output.schema import compile_validator, schema_errors
from modelroute.sidecar.providers.build_send import SdkBuiltAdapter, dumps
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.server.body import BodyError, decode_content, parse_json
from modelroute.sidecar.translate import cachemarks
from modelroute.sidecar.translate.anthropic_inbound import anthropic_to_chat_request
from modelroute.sidecar.translate.errors import TranslationError
from modelroute.sidecar.translate.gemini_inbound import gemini_to_chat_request
from modelroute.sidecar.translate.responses_inbound import responses_to_chat_request

from .conftest import AUDIT, FUZZ
from .strategies import (
    JSON,
    anthropic_bodies,
    chat_bodies,
    classify_bodies,
    extract_bodies,
    gemini_bodies,
    responses_bodies,
    schemas,
)

Json = dict[str, Any]

JSONISH = st.one_of(
    JSON.map(lambda v: json.dumps(v)),
    st.lists(st.sampled_from(['{', '}', '[', ']', ',', ':', '"a"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"',
                              'NaN', '-Infinity', '1e999', '9' * 5000, '0', 'true', 'null', '"x"']), max_size=60).map("".join),
)


def outcome(fn: Any, *args: Any, refused: tuple[type[Exception], ...], **kw: Any) -> tuple[Any, Exception | None]:
    """(result, None), or (None, the exception) when ``fn`` raised one of ``refused``; anything else propagates."""
    try:
        return fn(*args, **kw), None
    except refused as e:
        return None, e


@FUZZ
@given(st.one_of(st.binary(max_size=300), JSONISH.map(str.encode), st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n)))
def test_parse_json_gives_a_value_or_a_body_error(raw: bytes) -> None:
    value, e = outcome(parse_json, raw, refused=(BodyError,))
    if e is not None:
        assert isinstance(e, BodyError) and e.status == 400 and e.message
        return
    dumps({"v": value})  # what the adapters send: strict (no NaN), UTF-8 (no lone surrogate)


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["gzip", "deflate", "x-gzip", "identity", "", "br", "GZIP", "gzip, br"]),
       st.booleans())
def test_decode_content_gives_bytes_or_a_body_error(raw: bytes, encoding: str, compress: bool) -> None:
    if compress and encoding.lower() in ("gzip", "x-gzip"):
        raw = gzip.compress(raw)
    elif compress and encoding == "deflate":
        raw = zlib.compress(raw)
    out, e = outcome(decode_content, raw, encoding, 100, refused=(BodyError,))
    if e is not None:
        assert isinstance(e, BodyError) and e.status in (400, 413, 415)
        return
    assert len(out) <= max(100, len(raw)) or encoding.lower() in ("", "identity")


def _translated(fn: Any, body: Any, **kw: Any) -> None:
    out, e = outcome(fn, body, refused=(TranslationError,), **kw)
    if e is not None:
        assert str(e)
        return
    assert isinstance(out, dict) and isinstance(out["messages"], list)
    dumps(out)


@FUZZ
@given(st.one_of(anthropic_bodies(), JSON))
def test_anthropic_inbound_translates_or_refuses(body: Any) -> None:
    _translated(anthropic_to_chat_request, body)


@FUZZ
@given(st.one_of(responses_bodies(), JSON))
def test_responses_inbound_translates_or_refuses(body: Any) -> None:
    _translated(responses_to_chat_request, body)


@FUZZ
@given(st.one_of(gemini_bodies(), JSON), st.booleans())
def test_gemini_inbound_translates_or_refuses(body: Any, stream: bool) -> None:
    _translated(gemini_to_chat_request, body, route="fz-gemini", stream=stream)


@pytest.fixture
def audited() -> Iterator[None]:
    """Record what this thread opens or connects to."""
    AUDIT.thread, AUDIT.active = threading.get_ident(), True
    AUDIT.opened.clear()
    AUDIT.connected.clear()
    try:
        yield
    finally:
        AUDIT.active = False
    assert AUDIT.connected == [] and AUDIT.foreign_opens() == []


@FUZZ
@given(st.one_of(classify_bodies(), extract_bodies(), JSON), st.sampled_from(["classify", "extract"]), JSON)
def test_tasks_parse_or_refuse_and_never_fetch(audited: None, body: Any, kind: str, answer: Any) -> None:
    def parse() -> Any:
        task = parse_classify(body) if kind == "classify" else parse_extract(body)
        return task_contract(task, None, kind=kind)

    contract, e = outcome(parse, refused=(TaskError, InvalidSchema))
    if e is not None:
        assert str(e)
        return
    if contract.validator is not None:
        assert isinstance(schema_errors(contract.validator, answer), list)


@FUZZ
@given(schemas(), JSON)
def test_compiled_schemas_validate_without_fetching(audited: None, schema: Json, value: Any) -> None:
    try:
        validator = compile_validator(schema)
    except InvalidSchema:
        return
    assert isinstance(schema_errors(validator, value), list)


ADAPTERS: dict[str, SdkBuiltAdapter] = {}


def _adapter(provider: str) -> SdkBuiltAdapter:
    if provider not in ADAPTERS:
        model = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}[provider]
        target = Target(name=provider, provider=provider, model=model, base_url="http://127.0.0.1:9", api_key={"env": "K"})
        adapter = build_adapter(target, lambda: "sk-fuzz-key")
        assert isinstance(adapter, SdkBuiltAdapter)
        ADAPTERS[provider] = adapter
    return ADAPTERS[provider]


@FUZZ
@given(chat_bodies(), st.sampled_from(["openai", "anthropic", "gemini"]), st.booleans())
def test_building_a_request_succeeds_or_is_the_clients_fault(body: Json, provider: str, stream: bool) -> None:
    """Build only (nothing is sent): what the inbound check lets through is built, or refused as a 400."""
    if not isinstance(body.get("messages"), list) or not all(isinstance(m, dict) and isinstance(m.get("role"), str)
                                                              for m in body["messages"]):
        return  # the inbound check refuses these before any adapter sees them
    _, e = outcome(asyncio.run, _adapter(provider)._build(body, stream), refused=(UpstreamError,))
    if e is not None:
        assert isinstance(e, UpstreamError) and e.kind is FailureKind.CLIENT and e.status == 400, e


@FUZZ
@given(anthropic_bodies(), st.sampled_from(["openai", "anthropic", "gemini"]),
       st.one_of(st.none(), st.sampled_from(["all", "system", "tools,messages", "ttl=1h,messages", "nope", ""])))
def test_cache_marks_reach_a_request_or_a_400(body: Json, provider: str, header: str | None) -> None:
    """Anthropic marks (and the prompt-cache header's) through the pivot: every adapter builds the request, or
    the translation refuses it with a 400 naming the field; no other target ever gets a mark."""
    chat, e = outcome(anthropic_to_chat_request, body, refused=(TranslationError,))
    if e is not None:
        return
    if header is not None:
        chat, e = outcome(lambda b: cachemarks.mark(b, *cachemarks.parse_header(header)), chat, refused=(TranslationError,))
        if e is not None:
            assert getattr(e, "param", None) == cachemarks.HEADER
            return
    built, e = outcome(asyncio.run, _adapter(provider)._build(chat, False), refused=(UpstreamError,))
    if e is not None:
        assert isinstance(e, UpstreamError) and e.kind is FailureKind.CLIENT and e.status == 400, e
        return
    if provider != "anthropic":
        assert "cache_control" not in repr(built)
