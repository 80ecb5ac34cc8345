"""Golden transcripts: every translator, one provider pair at a time.

Each file under ``golden/<pair>/`` holds ``{"description", "kind", "options", "input",
"expected"}``; ``kind`` is ``request``, ``response`` or ``stream`` (a list of events in, the
chunks out plus the final usage and finish reason). Besides matching the transcript, the
inputs must be what the real SDK types accept and the outputs what the OpenAI SDK parses.

To refresh the expected sides after a deliberate change, run with ``UPDATE_GOLDEN=1`` and
review the diff.
"""

from __future__ import annotations

import base64
import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest
from anthropic.resources.messages import AsyncMessages
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from google.genai import types as gtypes
from google.genai.models import AsyncModels
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from openai.types.responses import Response, ResponseStreamEvent
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from modelroute.api.v1alpha1 import ApiKey, Params, Provider, Target
from modelroute.api.v1alpha1.capabilities import DEFAULT_API_VERSION
from modelroute.sidecar.translate import (
    AnthropicStreamToChat,
    ChatStreamToAnthropic,
    ChatStreamToGemini,
    GeminiStreamToChat,
    OpenAIStreamToChat,
    anthropic_to_chat_request,
    anthropic_to_chat_response,
    apply_params,
    chat_response,
    chat_to_anthropic_request,
    chat_to_anthropic_response,
    chat_to_gemini_request,
    chat_to_gemini_response,
    chat_to_openai_request,
    effective_params,
    gemini_to_chat_request,
    gemini_to_chat_response,
)
from modelroute.sidecar.translate.accepts import default_filter
from modelroute.sidecar.translate.anthropic import sdk_kwargs
from modelroute.sidecar.translate.responses_inbound import (
    ChatStreamToResponses,
    chat_to_responses_response,
    response_echo,
    responses_to_chat_request,
)
from modelroute.testing.emulators.dialects import anthropic_schema, openai_schema

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = sorted(GOLDEN.glob("*/*.json"))

Json = dict[str, Any]


def _jsonable(value: Any) -> Any:
    """bytes (Gemini inline data) as {"$bytes": base64} so transcripts stay JSON."""
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _params(options: Json) -> Params | None:
    raw = options.get("params")
    return Params.model_validate(raw) if raw is not None else None


def _run_stream(translator: Any, events: list[Json]) -> Json:
    chunks: list[Json] = []
    for event in events:
        chunks.extend(translator.feed(event))
    chunks.extend(translator.finish())
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return {"chunks": chunks, "usage": translator.usage, "finish_reason": translator.finish_reason}


SDK_CALLS: dict[str, Any] = {"openai": AsyncCompletions.create, "anthropic": AsyncMessages.create, "gemini": AsyncModels.generate_content}


def _check_request_kwargs(pair: str, out: Json, options: Json) -> None:
    if pair == "anthropic":
        # The wire body: what the API version in use accepts, never an ``extra_body`` field.
        version = options.get("api_version") or DEFAULT_API_VERSION[Provider.ANTHROPIC]
        refused = anthropic_schema.validate(out, {"anthropic-version": version})
        assert refused is None, refused.message
        out = sdk_kwargs(out)
    # Every key must be a keyword of the SDK call, or create(**kwargs) raises TypeError.
    assert set(out) <= set(inspect.signature(SDK_CALLS[pair]).parameters), set(out)
    if pair == "openai":
        body = {k: v for k, v in out.items() if k != "extra_body"}
        if options.get("max_tokens_field") != "max_tokens":  # OpenAI proper: its published spec takes the wire body
            refused = openai_schema.validate("/v1/chat/completions", {**body, **(out.get("extra_body") or {})})
            assert refused is None, refused.message
        adapter: Any = TypeAdapter(CompletionCreateParamsStreaming if body.get("stream") else CompletionCreateParamsNonStreaming)
        adapter.validate_python(body)
    elif pair == "anthropic":
        adapter = TypeAdapter(MessageCreateParamsStreaming if out.get("stream") else MessageCreateParamsNonStreaming)
        adapter.validate_python({k: v for k, v in out.items() if k != "extra_body"})
    elif pair == "gemini":
        assert set(out) == {"model", "contents", "config"}
        for content in out["contents"]:
            gtypes.Content.model_validate(content)
        gtypes.GenerateContentConfig.model_validate(out["config"])


def _check_chat_request(out: Json) -> None:
    adapter: Any = TypeAdapter(CompletionCreateParamsStreaming if out.get("stream") else CompletionCreateParamsNonStreaming)
    adapter.validate_python(out)


def run_responses_case(kind: str, options: Json, data: Any) -> Any:
    """The app speaks the OpenAI Responses API: its own SDK types check both sides."""
    if "request" in options:  # the request whose settings the Response repeats
        options["echo"] = response_echo(options.pop("request"))
    if kind == "request":
        adapter: Any = TypeAdapter(ResponseCreateParamsStreaming if data.get("stream") else ResponseCreateParamsNonStreaming)
        adapter.validate_python(data)
        out = responses_to_chat_request(data)
        _check_chat_request(out)
        return out
    if kind == "response":
        ChatCompletion.model_validate(data)
        out = chat_to_responses_response(data, **options)
        Response.model_validate(out)
        return out
    for chunk in data:
        ChatCompletionChunk.model_validate(chunk)
    translator = ChatStreamToResponses(**options)
    events: list[Json] = []
    for chunk in data:
        events.extend(translator.feed(chunk))
    events.extend(translator.finish())
    event_adapter: Any = TypeAdapter(ResponseStreamEvent)
    for event in events:
        event_adapter.validate_python(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def run_inbound_case(pair: str, kind: str, options: Json, data: Any) -> Any:
    """Reverse direction: the app speaks Anthropic / Gemini, the pivot is the other side.

    Inputs are what the app's SDK sends (request) or what the pivot produces (chat
    completion / chunks); outputs must parse as the app SDK's own types.
    """
    before = json.dumps(data, sort_keys=True)
    out: Any
    if pair == "responses_inbound":
        out = run_responses_case(kind, options, data)
    elif kind == "request":
        if pair == "anthropic_inbound":
            adapter: Any = TypeAdapter(MessageCreateParamsStreaming if data.get("stream") else MessageCreateParamsNonStreaming)
            adapter.validate_python(data)
            out = anthropic_to_chat_request(data)
        else:
            for content in data["contents"]:
                gtypes.Content.model_validate(content)
            gtypes.GenerateContentConfig.model_validate(data.get("generationConfig") or {})
            out = gemini_to_chat_request(data, **options)
        _check_chat_request(out)
    elif kind == "response":
        ChatCompletion.model_validate(data)
        if pair == "anthropic_inbound":
            out = chat_to_anthropic_response(data, **options)
            Message.model_validate(out)
        else:
            out = chat_to_gemini_response(data, **options)
            gtypes.GenerateContentResponse.model_validate(out)
    else:
        for chunk in data:
            ChatCompletionChunk.model_validate(chunk)
        translator: Any = (ChatStreamToAnthropic if pair == "anthropic_inbound" else ChatStreamToGemini)(**options)
        events: list[Json] = []
        for chunk in data:
            events.extend(translator.feed(chunk))
        events.extend(translator.finish())
        event_adapter = TypeAdapter(RawMessageStreamEvent)
        for event in events:
            if pair == "gemini_inbound":
                gtypes.GenerateContentResponse.model_validate(event)
            elif event["type"] != "ping":
                event_adapter.validate_python(event)
        out = events
    assert json.dumps(data, sort_keys=True) == before, "inbound translator mutated its input"
    return out


def run_case(pair: str, case: Json) -> Any:
    kind, options, data = case["kind"], dict(case.get("options") or {}), case["input"]
    if pair.endswith("_inbound"):
        return run_inbound_case(pair, kind, options, data)
    if pair == "params":
        params = _params(options)
        if "target_params" in options:
            assert params is not None
            target = Target(name="t", provider=Provider.OPENAI, model="m", api_key=ApiKey(env="K"),
                            params=Params.model_validate(options["target_params"]))
            params = effective_params(params, target)
        before = json.dumps(data, sort_keys=True)
        out = apply_params(data, params, options.get("system"), max_tokens_field=options.get("max_tokens_field", "max_tokens"))
        assert json.dumps(data, sort_keys=True) == before, "apply_params mutated its input"
        assert out is not data
        return out

    if kind == "request":
        before = json.dumps(data, sort_keys=True)
        kwargs = {k: v for k, v in options.items() if k != "params"}
        if pair == "openai" and options.get("max_tokens_field") != "max_tokens":
            # As the OpenAI adapter does: the params OpenAI proper refuses (capability table) are dropped.
            kwargs["accepts"] = default_filter(Provider.OPENAI, None, options["model"], _params(options))
        translate: Any = {"openai": chat_to_openai_request, "anthropic": chat_to_anthropic_request, "gemini": chat_to_gemini_request}[pair]
        out = translate(data, params=_params(options), **kwargs)
        assert json.dumps(data, sort_keys=True) == before, "request translator mutated its input"
        _check_request_kwargs(pair, out, options)
        return _jsonable(out)

    if kind == "response":
        if pair == "openai":
            out = chat_response(json.loads(json.dumps(data)), **options)
        elif pair == "anthropic":
            Message.model_validate(data)
            out = anthropic_to_chat_response(data, **options)
        else:
            gtypes.GenerateContentResponse.model_validate(data)
            out = gemini_to_chat_response(data, **options)
        ChatCompletion.model_validate(out)
        return out

    assert kind == "stream"
    events = json.loads(json.dumps(data))  # translators may touch the chunks they pass through
    if pair == "openai":
        return _run_stream(OpenAIStreamToChat(**options), events)
    if pair == "anthropic":
        adapter = TypeAdapter(RawMessageStreamEvent)
        for event in data:
            if event["type"] != "ping":
                adapter.validate_python(event)
        return _run_stream(AnthropicStreamToChat(**options), events)
    for chunk in data:
        gtypes.GenerateContentResponse.model_validate(chunk)
    return _run_stream(GeminiStreamToChat(**options), events)


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_golden(path: Path) -> None:
    case = json.loads(path.read_text())
    assert case["description"] and case["kind"] in ("request", "response", "stream")
    actual = json.loads(json.dumps(run_case(path.parent.name, case)))
    if UPDATE:
        case["expected"] = actual
        path.write_text(json.dumps(case, indent=2, ensure_ascii=False) + "\n")
    assert case["expected"] is not None, f"{path.name}: no expected side (run with UPDATE_GOLDEN=1 and review)"
    assert actual == case["expected"]


def test_every_pair_has_golden_files() -> None:
    pairs = {p.parent.name for p in CASES}
    assert pairs == {"params", "openai", "anthropic", "gemini", "anthropic_inbound", "gemini_inbound", "responses_inbound"}
    for pair in ("anthropic", "gemini", "anthropic_inbound", "gemini_inbound", "responses_inbound"):
        kinds = {p.stem.split("_")[0] for p in CASES if p.parent.name == pair}
        assert kinds == {"request", "response", "stream"}, pair
