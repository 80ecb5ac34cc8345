"""Golden transcripts of the embeddings translators (``translate.embeddings``), and their refusals.

Each file under ``golden_embeddings/`` (apart from ``golden/``: not a chat provider pair) holds ``{"description", "function", "options", "input",
"expected"}``. Inputs of the OpenAI inbound must be what the openai SDK's ``EmbeddingCreateParams``
accepts, and every OpenAI-wire output what its ``CreateEmbeddingResponse`` parses. Refresh the
expected sides with ``UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import CreateEmbeddingResponse
from openai.types.embedding_create_params import EmbeddingCreateParams
from pydantic import TypeAdapter

from modelroute.sidecar.translate.embeddings import (
    decode_base64,
    embeddings_to_gemini,
    embeddings_to_openai,
    embeddings_to_openai_request,
    gemini_batch_to_request,
    gemini_embed_to_request,
    gemini_to_embeddings,
    openai_to_embeddings,
    openai_to_embeddings_request,
)
from modelroute.sidecar.translate.errors import TranslationError

GOLDEN = Path(__file__).parent / "golden_embeddings"


def _openai_in(body: Any) -> Any:
    request, fmt = openai_to_embeddings_request(body)
    return {"request": request, "encoding_format": fmt}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "openai_to_embeddings_request": _openai_in,
    "embeddings_to_openai": embeddings_to_openai,
    "embeddings_to_openai_request": embeddings_to_openai_request,
    "openai_to_embeddings": openai_to_embeddings,
    "gemini_embed_to_request": gemini_embed_to_request,
    "gemini_batch_to_request": gemini_batch_to_request,
    "gemini_to_embeddings": gemini_to_embeddings,
    "embeddings_to_gemini": embeddings_to_gemini,
}


def _cases() -> list[Path]:
    return sorted(GOLDEN.glob("*.json"))


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    fn = FUNCTIONS[case["function"]]
    got = fn(case["input"], **case.get("options", {}))
    if os.environ.get("UPDATE_GOLDEN"):
        case["expected"] = got
        path.write_text(json.dumps(case, indent=1) + "\n")
    assert got == case["expected"]
    if case["function"] == "openai_to_embeddings_request":
        TypeAdapter(EmbeddingCreateParams).validate_python(case["input"])
    if case["function"] in ("embeddings_to_openai", "openai_to_embeddings"):
        if case["options"].get("encoding_format") == "base64":  # the SDK decodes these before parsing
            got = {**got, "data": [{**d, "embedding": decode_base64(d["embedding"])} for d in got["data"]]}
        CreateEmbeddingResponse.model_validate(got)


def test_golden_cover_every_function() -> None:
    used = {json.loads(p.read_text())["function"] for p in _cases()}
    assert used == set(FUNCTIONS)


def test_base64_round_trip() -> None:
    answer = openai_to_embeddings({"data": [{"index": 0, "embedding": [0.5, -0.25]}], "usage": {"prompt_tokens": 2}},
                                  model="m", count=1)
    b64 = embeddings_to_openai(answer, "base64")["data"][0]["embedding"]
    assert decode_base64(b64) == [0.5, -0.25]


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "e"}, "input"),
    ({"model": "e", "input": []}, "input"),
    ({"model": "e", "input": ["a", 3]}, "input[1]"),
    ({"model": "e", "input": [[1, 2]]}, "input[0]"),
    ({"model": "e", "input": ["a", ""]}, "input[1]"),
    ({"model": "e", "input": "a", "dimensions": 0}, "dimensions"),
    ({"model": "e", "input": "a", "dimensions": True}, "dimensions"),
    ({"model": "e", "input": "a", "dimensions": 70000}, "dimensions"),
    ({"model": "e", "input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "e", "input": "a", "bogus": 1}, "bogus"),
    ({"input": "a"}, "model"),
])
def test_openai_refusals_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(TranslationError) as e:
        openai_to_embeddings_request(body)
    assert e.value.param == param


@pytest.mark.parametrize(("body", "param"), [
    ({"content": {"parts": [{"text": "a"}]}, "bogus": 1}, "bogus"),
    ({"content": {"parts": [{"inlineData": {}}]}}, "the request body.content"),
    ({"content": {"parts": [{"text": "a"}]}, "outputDimensionality": -1}, "the request body.outputDimensionality"),
])
def test_gemini_refusals_name_the_field(body: Any, param: str) -> None:
    with pytest.raises(TranslationError) as e:
        gemini_embed_to_request(body, route="e")
    assert e.value.param == param


def test_gemini_batch_items_must_name_the_route() -> None:
    with pytest.raises(TranslationError) as e:
        gemini_batch_to_request({"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}, route="e")
    assert e.value.param == "requests[0].model"


def test_wrong_upstream_shapes_are_value_errors() -> None:
    with pytest.raises(ValueError, match="expected 2"):
        openai_to_embeddings({"data": [{"index": 0, "embedding": [1.0]}]}, model="m", count=2)
    with pytest.raises(ValueError, match="not an array of numbers"):
        gemini_to_embeddings({"embeddings": [{"values": ["x"]}]}, model="m", inputs=["a"])


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_openai_body = st.fixed_dictionaries({}, optional={
    "model": _json | st.just("e"), "input": _json | st.lists(st.text(max_size=4), max_size=3),
    "dimensions": _json, "encoding_format": _json | st.sampled_from(["float", "base64"]), "user": _json})
_gemini_item = st.fixed_dictionaries({}, optional={
    "content": _json | st.just({"parts": [{"text": "a"}]}), "outputDimensionality": _json, "taskType": _json})


@settings(max_examples=300, deadline=None)
@given(body=_json | _openai_body)
def test_any_openai_body_is_translated_or_refused_cleanly(body: Any) -> None:
    try:
        request, _ = openai_to_embeddings_request(body)
    except TranslationError:
        return
    assert request["input"] and all(isinstance(t, str) and t for t in request["input"])


@settings(max_examples=300, deadline=None)
@given(body=_json | _gemini_item | st.fixed_dictionaries({"requests": st.lists(_gemini_item, max_size=3)}))
def test_any_gemini_body_is_translated_or_refused_cleanly(body: Any) -> None:
    for translate in (gemini_embed_to_request, gemini_batch_to_request):
        try:
            request = translate(body, route="e")
        except TranslationError:
            continue
        assert request["input"] and request["model"] == "e"
