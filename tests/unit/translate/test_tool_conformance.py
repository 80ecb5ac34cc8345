"""Multi-turn tool conformance: every inbound API x every outbound provider x scenario, streamed and not.

Each golden file under ``golden_tools/<inbound>-<outbound>/<scenario>.json`` holds two transcripts
(``json`` and ``stream``) made by ``modelroute.testing.toolconf.transcript``: the app's request, the
exact wire body the target's SDK built (accepted by the strict emulator, or the transcript is not
made), the provider's answer (rendered by the emulator's dialect) and what the app gets back.
Besides matching the transcript, each case checks what must hold whatever the golden says: the
app's request and the answer parse as the app SDK's own types, the provider saw the tool choice
and the tool result, an error result arrives as the target's error form, and the answer carries
the provider's calls with ids the next turn can use on any provider.

``make goldens`` (``UPDATE_GOLDEN=1``) rewrites the files; review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from google.genai import types as gtypes
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

from modelroute.testing.toolconf import (
    BY_NAME,
    INBOUNDS,
    OUTBOUNDS,
    SCENARIOS,
    Scenario,
    normalise,
    transcript,
)

Json = dict[str, Any]
GOLDEN = Path(__file__).parent / "golden_tools"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = [(i, o, s.name) for i in INBOUNDS for o in OUTBOUNDS for s in SCENARIOS]
ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")  # usable as an id on every provider (OpenAI: at most 40; Anthropic: this pattern)

_A: dict[str, Any] = {}


def _adapter(t: Any) -> Any:
    if t not in _A:
        _A[t] = TypeAdapter(t)
    return _A[t]


def _check(inbound: str, stream: bool) -> Any:
    """The app SDK's own types accept the request it sends and the answer it gets."""
    def check(side: str, value: Any) -> None:
        if side == "chat":
            _adapter(CompletionCreateParamsStreaming if value.get("stream") else CompletionCreateParamsNonStreaming).validate_python(value)
        elif side == "request":
            if inbound == "chat":
                _adapter(CompletionCreateParamsStreaming if stream else CompletionCreateParamsNonStreaming).validate_python(value)
            elif inbound == "responses":
                _adapter(ResponseCreateParamsStreaming if stream else ResponseCreateParamsNonStreaming).validate_python(value)
            elif inbound == "anthropic":
                _adapter(MessageCreateParamsStreaming if stream else MessageCreateParamsNonStreaming).validate_python(value)
            else:
                for content in value["contents"]:
                    gtypes.Content.model_validate(content)
                gtypes.Tool.model_validate(value["tools"][0])
                if "toolConfig" in value:
                    gtypes.ToolConfig.model_validate(value["toolConfig"])
        elif not stream:
            model: Any = {"chat": ChatCompletion, "responses": Response, "anthropic": Message,
                          "gemini": gtypes.GenerateContentResponse}[inbound]
            model.model_validate(value)
        else:
            for event in value:
                if inbound == "chat":
                    ChatCompletionChunk.model_validate(event)
                elif inbound == "responses":
                    _adapter(ResponseStreamEvent).validate_python(event)
                elif inbound == "anthropic":
                    if event["type"] != "ping":
                        _adapter(RawMessageStreamEvent).validate_python(event)
                else:
                    gtypes.GenerateContentResponse.model_validate(event)
    return check


def answer_of(inbound: str, answer: Any, stream: bool) -> tuple[str, list[tuple[str, str, Json]]]:
    """(text, [(call id, name, arguments)]) of what the app got, streamed or not."""
    text = ""
    calls: list[list[Any]] = []
    if inbound == "chat":
        if not stream:
            message = answer["choices"][0]["message"]
            return message["content"] or "", [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                                              for c in message.get("tool_calls") or ()]
        by_index: dict[int, list[Any]] = {}
        for chunk in answer:
            for c in chunk["choices"]:
                text += c["delta"].get("content") or ""
                for d in c["delta"].get("tool_calls") or ():
                    slot = by_index.setdefault(d["index"], ["", "", ""])
                    slot[0] = d.get("id") or slot[0]
                    slot[1] = (d.get("function") or {}).get("name") or slot[1]
                    slot[2] += (d.get("function") or {}).get("arguments") or ""
        calls = [by_index[i] for i in sorted(by_index)]
    elif inbound == "responses":
        final = answer if not stream else answer[-1]["response"]
        if stream:
            assert answer[-1]["type"] == "response.completed"
            deltas = "".join(e["delta"] for e in answer if e["type"] == "response.output_text.delta")
            args = "".join(e["delta"] for e in answer if e["type"] == "response.function_call_arguments.delta")
            assert args == "".join(i["arguments"] for i in final["output"] if i["type"] == "function_call")
        for item in final["output"]:
            if item["type"] == "message":
                text += "".join(p["text"] for p in item["content"])
            else:
                calls.append([item["call_id"], item["name"], item["arguments"]])
        if stream:
            assert deltas == text
    elif inbound == "anthropic":
        blocks = answer["content"] if not stream else []
        if stream:
            assert answer[-1]["type"] == "message_stop"
            for e in answer:
                if e["type"] == "content_block_start":
                    blocks.append(dict(e["content_block"], partial=""))
                elif e["type"] == "content_block_delta":
                    d = e["delta"]
                    blocks[e["index"]]["text" if d["type"] == "text_delta" else "partial"] += d.get("text") or d.get("partial_json") or ""
        for b in blocks:
            if b["type"] == "text":
                text += b["text"]
            else:
                calls.append([b["id"], b["name"], b["partial"] if stream else json.dumps(b["input"])])
    else:
        for response in answer if stream else [answer]:
            for part in response["candidates"][0]["content"]["parts"]:
                if "functionCall" in part:
                    fc = part["functionCall"]
                    calls.append([fc.get("id", ""), fc["name"], json.dumps(fc["args"])])
                else:
                    text += part.get("text") or ""
    return text, [(c[0], c[1], json.loads(c[2])) for c in calls]


def _invariants(inbound: str, outbound: str, s: Scenario, stream: bool, t: Json) -> None:
    seen = t["seen_by_provider"]
    mode = {None: "auto", "auto": "auto", "none": "none", "required": "any"}.get(s.choice) if not isinstance(s.choice, tuple) else "tool"
    assert seen["tool_mode"] == mode, seen
    if isinstance(s.choice, tuple):
        assert seen["forced_tool"] == s.choice[1]
    if s.history[-1].role == "tool":  # the provider sees the result it is to answer
        assert seen["tool_result"] is not None, seen
    if s.name == "error_result":  # the error reaches the provider in its own form
        wire = json.dumps(t["wire"])
        marker = {"anthropic": '"is_error": true', "gemini": '"error": "unknown city: Atlantis"'}.get(outbound, "Error: unknown city")
        assert marker in wire, wire
    text, calls = answer_of(inbound, t["answer"], stream)
    assert text == s.reply_text
    assert [(n, a) for _, n, a in calls] == [(n, a) for n, a in s.reply_calls]
    ids = [c[0] for c in calls]
    assert len(set(ids)) == len(ids) and all(ID.match(i) for i in ids), ids
    if outbound != "gemini":  # ids the provider issued reach the app unchanged, so results map back
        provider_ids = re.findall(r'"(?:id|call_id)": "((?:call|toolu)_[^"]+)"', json.dumps(t["provider"]))
        assert set(ids) <= set(provider_ids), (ids, provider_ids)


@pytest.mark.parametrize(("inbound", "outbound", "scenario"), CASES, ids=[f"{i}-{o}-{s}" for i, o, s in CASES])
async def test_tool_conversation(inbound: str, outbound: str, scenario: str) -> None:
    s = BY_NAME[scenario]
    actual = {mode: await transcript(inbound, outbound, s, mode == "stream", _check(inbound, mode == "stream"))
              for mode in ("json", "stream")}
    for mode, t in actual.items():
        _invariants(inbound, outbound, s, mode == "stream", t)
        actual[mode] = normalise(t)
    path = GOLDEN / f"{inbound}-{outbound}" / f"{scenario}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(actual, indent=1, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path}: no golden transcript (run `make goldens` and review)"
    assert json.loads(path.read_text()) == actual


def test_every_golden_is_a_case() -> None:
    files = {(p.parent.name, p.stem) for p in GOLDEN.glob("*/*.json")}
    assert files == {(f"{i}-{o}", s) for i, o, s in CASES}
