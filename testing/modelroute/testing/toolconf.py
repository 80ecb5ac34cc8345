"""Multi-turn tool conversations through every inbound API x every outbound provider (issue 12, item 5).

One neutral description per scenario (a conversation so far, the tools, the ``tool_choice`` and
the provider's next answer) is rendered as each inbound API's request (OpenAI Chat Completions,
OpenAI Responses, Anthropic Messages, Gemini generateContent), taken through the sidecar's own
code (inbound translator -> the target's adapter, whose SDK builds the wire body -> the strict
emulator's dialect, which must accept the body and renders the provider's answer -> the adapter's
answer or stream translator -> the inbound API's response or stream events).

``transcript(...)`` is pure apart from the SDKs building requests (no I/O): the golden tests
(``tests/unit/translate/test_tool_conformance.py``) compare it with the committed transcripts
under ``tests/unit/translate/golden_tools`` (``make goldens`` rewrites them). ``app_request``
is also what the integration test sends through the real SDKs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from modelroute.api.v1alpha1 import ApiKey, Target
from modelroute.sidecar.providers.registry import build_adapter
from modelroute.sidecar.translate import (
    ChatStreamToAnthropic,
    ChatStreamToGemini,
    anthropic_to_chat_request,
    chat_to_anthropic_response,
    chat_to_gemini_response,
    gemini_to_chat_request,
)
from modelroute.sidecar.translate.responses_inbound import (
    ChatStreamToResponses,
    chat_to_responses_response,
    response_echo,
    responses_to_chat_request,
)
from modelroute.testing.emulators.answers import finalize
from modelroute.testing.emulators.dialects import DIALECTS, OPENAI_RESPONSES, Dialect
from modelroute.testing.emulators.dialects.base import BadRequest
from modelroute.testing.emulators.model import Reply
from modelroute.testing.emulators.model import ToolCall as EmuCall

Json = dict[str, Any]

INBOUNDS = ("chat", "responses", "anthropic", "gemini")
OUTBOUNDS = ("openai", "responses", "anthropic", "gemini")
MODELS = {"openai": "gpt-4o-mini", "responses": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}
ROUTE = "assist"

# ---- the neutral conversation ------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    args: Json


@dataclass(frozen=True)
class Result:
    call: Call
    output: str  # JSON object text or plain text
    error: bool = False


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant", "tool"]
    text: str = ""
    calls: tuple[Call, ...] = ()
    results: tuple[Result, ...] = ()


Choice = Literal["auto", "none", "required"] | tuple[Literal["tool"], str] | None


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    history: tuple[Turn, ...]
    reply_text: str = ""
    reply_calls: tuple[tuple[str, Json], ...] = ()  # (name, args) of the provider's calls, in order
    choice: Choice = None
    gemini_ids: bool = True  # a google-genai app's history keeps the call ids the sidecar gave (Gemini 2.x gives none)


WEATHER: Json = {"name": "get_weather", "description": "Current weather for a city.",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME: Json = {"name": "get_time", "description": "Local time in a time zone.",
              "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]}}
TOOLS = (WEATHER, TIME)

_W1 = Call("call_w1", "get_weather", {"city": "Paris"})
_T1 = Call("call_t1", "get_time", {"tz": "Europe/Paris"})

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("call_result_call", "a tool call, its result, then the next call",
             (Turn("user", "Weather in Paris, then the local time there?"), Turn("assistant", calls=(_W1,)),
              Turn("tool", results=(Result(_W1, '{"temp_c": 18, "sky": "cloudy"}'),))),
             reply_calls=(("get_time", {"tz": "Europe/Paris"}),)),
    Scenario("parallel", "parallel calls answered together, then two parallel calls again",
             (Turn("user", "Weather and time in Paris?"), Turn("assistant", calls=(_W1, _T1)),
              Turn("tool", results=(Result(_W1, '{"temp_c": 18}'), Result(_T1, "14:05"))),
              Turn("user", "And in Rome?")),
             reply_calls=(("get_weather", {"city": "Rome"}), ("get_time", {"tz": "Europe/Rome"}))),
    Scenario("error_result", "a tool result that reports an error, then a text answer",
             (Turn("user", "Weather in Atlantis?"), Turn("assistant", calls=(Call("call_w9", "get_weather", {"city": "Atlantis"}),)),
              Turn("tool", results=(Result(Call("call_w9", "get_weather", {"city": "Atlantis"}), "unknown city: Atlantis", error=True),))),
             reply_text="I could not find Atlantis."),
    Scenario("choice_named", "tool_choice forces one named tool",
             (Turn("user", "What should I pack for Oslo?"),), reply_calls=(("get_time", {"tz": "Europe/Oslo"}),),
             choice=("tool", "get_time")),
    Scenario("choice_required", "tool_choice requires some tool (required / any / ANY)",
             (Turn("user", "What should I pack for Oslo?"),), reply_calls=(("get_weather", {"city": "Oslo"}),),
             choice="required"),
    Scenario("choice_none", "tool_choice none, with tools and tool history: text only",
             (Turn("user", "Weather in Paris?"), Turn("assistant", calls=(_W1,)),
              Turn("tool", results=(Result(_W1, '{"temp_c": 18}'),)), Turn("user", "Summarise without tools.")),
             reply_text="It is 18 C in Paris.", choice="none"),
    Scenario("mixed", "text and tool calls in one assistant turn, both directions",
             (Turn("user", "Weather in Paris?"), Turn("assistant", "Let me check.", calls=(_W1,)),
              Turn("tool", results=(Result(_W1, '{"temp_c": 18}'),)), Turn("user", "And the time?")),
             reply_text="Checking the time.", reply_calls=(("get_time", {"tz": "Europe/Paris"}),)),
    Scenario("same_tool_no_ids", "two parallel calls of one tool; a Gemini app's history has no call ids; "
             "the next call takes no arguments",
             (Turn("user", "Weather in Paris and Rome?"),
              Turn("assistant", calls=(_W1, Call("call_w2", "get_weather", {"city": "Rome"}))),
              Turn("tool", results=(Result(_W1, '{"temp_c": 18}'), Result(Call("call_w2", "get_weather", {"city": "Rome"}),
                                                                           '{"temp_c": 24}')))),
             reply_text="Both are mild; checking the time.", reply_calls=(("get_time", {}),), gemini_ids=False),
)
BY_NAME = {s.name: s for s in SCENARIOS}

# ---- the app's request, per inbound API ------------------------------------------------


def _error_text(result: Result) -> str:
    """How an app on a wire without an error flag reports a failed tool: ``Error: `` text (the pivot's convention)."""
    return f"Error: {result.output}" if result.error else result.output


def _chat(s: Scenario, stream: bool) -> Json:
    messages: list[Json] = []
    for turn in s.history:
        if turn.role == "user":
            messages.append({"role": "user", "content": turn.text})
        elif turn.role == "assistant":
            messages.append({"role": "assistant", "content": turn.text or None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.args)}}
                for c in turn.calls]})
        else:
            messages += [{"role": "tool", "tool_call_id": r.call.id, "content": _error_text(r)} for r in turn.results]
    body: Json = {"model": ROUTE, "messages": messages, "tools": [{"type": "function", "function": t} for t in TOOLS]}
    if s.choice is not None:
        body["tool_choice"] = {"type": "function", "function": {"name": s.choice[1]}} if isinstance(s.choice, tuple) else s.choice
    if stream:
        body["stream"] = True
    return body


def _responses(s: Scenario, stream: bool) -> Json:
    items: list[Json] = []
    for turn in s.history:
        if turn.role == "user":
            items.append({"role": "user", "content": turn.text})
        elif turn.role == "assistant":
            if turn.text:
                items.append({"type": "message", "role": "assistant", "status": "completed", "id": "msg_prev",
                              "content": [{"type": "output_text", "text": turn.text, "annotations": []}]})
            items += [{"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.args)}
                      for c in turn.calls]
        else:
            items += [{"type": "function_call_output", "call_id": r.call.id, "output": _error_text(r)} for r in turn.results]
    body: Json = {"model": ROUTE, "input": items, "tools": [{"type": "function", "strict": False, **t} for t in TOOLS]}
    if s.choice is not None:
        body["tool_choice"] = {"type": "function", "name": s.choice[1]} if isinstance(s.choice, tuple) else s.choice
    if stream:
        body["stream"] = True
    return body


def _anthropic(s: Scenario, stream: bool) -> Json:
    messages: list[Json] = []
    for turn in s.history:
        if turn.role == "user":
            if messages and messages[-1]["role"] == "user":  # tool results and the next question: one user turn
                messages[-1]["content"].append({"type": "text", "text": turn.text})
            else:
                messages.append({"role": "user", "content": [{"type": "text", "text": turn.text}]})
        elif turn.role == "assistant":
            blocks: list[Json] = [{"type": "text", "text": turn.text}] if turn.text else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.args} for c in turn.calls]
            messages.append({"role": "assistant", "content": blocks})
        else:
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": r.call.id, "content": r.output, **({"is_error": True} if r.error else {})}
                for r in turn.results]})
    body: Json = {"model": ROUTE, "max_tokens": 256, "messages": messages,
                  "tools": [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS]}
    if s.choice is not None:
        body["tool_choice"] = ({"type": "tool", "name": s.choice[1]} if isinstance(s.choice, tuple)
                               else {"type": {"required": "any"}.get(s.choice, s.choice)})
    if stream:
        body["stream"] = True
    return body


def _gemini(s: Scenario) -> Json:
    """As a google-genai app builds it: the model's turns echoed with their call ids, responses by name."""
    contents: list[Json] = []
    for turn in s.history:
        if turn.role == "user":
            contents.append({"role": "user", "parts": [{"text": turn.text}]})
        elif turn.role == "assistant":
            parts: list[Json] = [{"text": turn.text}] if turn.text else []
            parts += [{"functionCall": {"id": c.id, "name": c.name, "args": c.args} if s.gemini_ids else
                       {"name": c.name, "args": c.args}} for c in turn.calls]
            contents.append({"role": "model", "parts": parts})
        else:
            contents.append({"role": "user", "parts": [{"functionResponse": {"name": r.call.name, "response": (
                {"error": r.output} if r.error else json.loads(r.output) if r.output.startswith("{") else {"output": r.output})}}
                for r in turn.results]})
    body: Json = {"contents": contents, "tools": [{"functionDeclarations": [
        {"name": t["name"], "description": t["description"], "parametersJsonSchema": t["parameters"]} for t in TOOLS]}]}
    if s.choice is not None:
        config: Json = ({"mode": "ANY", "allowedFunctionNames": [s.choice[1]]} if isinstance(s.choice, tuple)
                        else {"mode": {"required": "ANY", "none": "NONE", "auto": "AUTO"}[s.choice]})
        body["toolConfig"] = {"functionCallingConfig": config}
    return body


def app_request(inbound: str, s: Scenario, stream: bool) -> Json:
    """The body an app on ``inbound`` sends for scenario ``s`` (Gemini: the stream is the URL's method)."""
    if inbound == "chat":
        return _chat(s, stream)
    if inbound == "responses":
        return _responses(s, stream)
    if inbound == "anthropic":
        return _anthropic(s, stream)
    return _gemini(s)


def to_chat(inbound: str, body: Json, stream: bool) -> Json:
    """The canonical chat request the sidecar's inbound handler makes of ``body``."""
    if inbound == "chat":
        return body
    if inbound == "responses":
        return responses_to_chat_request(body)
    if inbound == "anthropic":
        return anthropic_to_chat_request(body)
    return gemini_to_chat_request(body, route=ROUTE, stream=stream)


# ---- the provider's side ---------------------------------------------------------------

_PROVIDER = {"openai": "openai", "responses": "openai", "anthropic": "anthropic", "gemini": "gemini"}
_PATH = {"openai": "/v1/chat/completions", "responses": "/v1/responses", "anthropic": "/v1/messages",
         "gemini": "/v1beta/models/gemini-2.5-flash:generateContent"}
_IDS = {"openai": "call_{}", "responses": "call_{}", "anthropic": "toolu_01{}", "gemini": ""}


def target(outbound: str) -> Target:
    extra: Json = {"api": "responses"} if outbound == "responses" else {}
    return Target.model_validate({"name": outbound, "provider": _PROVIDER[outbound], "model": MODELS[outbound],
                                  "apiKey": ApiKey(env="KEY").model_dump(), "baseUrl": "http://127.0.0.1:9", **extra})


def provider_reply(outbound: str, s: Scenario) -> Reply:
    """The scripted answer, with call ids in the provider's style (Gemini gives none)."""
    pattern = _IDS[outbound]
    calls = tuple(EmuCall(name, args, pattern.format(f"R{i}x{s.name[:4]}") if pattern else None)
                  for i, (name, args) in enumerate(s.reply_calls))
    return Reply(text=s.reply_text, tool_calls=calls)


def _dialect(outbound: str) -> Dialect:
    return OPENAI_RESPONSES if outbound == "responses" else DIALECTS[_PROVIDER[outbound]]


def sse_events(frames: list[bytes]) -> list[Json]:
    """The JSON ``data`` of each SSE frame (``[DONE]`` left out)."""
    out: list[Json] = []
    for frame in frames:
        for line in frame.decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line[6:]))
    return out


# ---- the whole exchange ----------------------------------------------------------------

_RANDOM_ID = re.compile(r"chatcmpl-[0-9a-f]{24}")
_RANDOM_CALL = re.compile(r"call_[0-9a-f]{16}_")  # Gemini stream call ids: the tail of a random chat id


def normalise(value: Any) -> Any:
    """Random stream ids (``chatcmpl-<24 hex>``) and clock readings made stable for a golden file."""
    text = _RANDOM_CALL.sub("call_ID_", _RANDOM_ID.sub("chatcmpl-ID", json.dumps(value)))

    def clock(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: (0 if k in ("created", "created_at") and isinstance(v, int) else clock(v)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [clock(v) for v in obj]
        return obj
    return clock(json.loads(text))


def _inbound_answer(inbound: str, body: Json, completion: Json) -> Json:
    if inbound == "chat":
        return completion
    if inbound == "responses":
        return chat_to_responses_response(completion, echo=response_echo(body))
    if inbound == "anthropic":
        return chat_to_anthropic_response(completion)
    return chat_to_gemini_response(completion)


def _inbound_stream(inbound: str, body: Json, chunks: list[Json]) -> list[Json]:
    if inbound == "chat":
        return chunks
    first = chunks[0]
    model, cid = str(first.get("model") or ""), str(first.get("id") or "")
    translator: Any
    if inbound == "responses":
        translator = ChatStreamToResponses(model=model, id=cid, echo=response_echo(body))
    elif inbound == "anthropic":
        translator = ChatStreamToAnthropic(model=model, id=cid or "msg")
    else:
        translator = ChatStreamToGemini(model=model, id=cid)
    events: list[Json] = []
    for chunk in chunks:
        events += translator.feed(chunk)
    events += translator.finish()
    return events


class Refused(AssertionError):
    """The strict emulator refused the body the sidecar built: a translation defect."""


async def transcript(inbound: str, outbound: str, s: Scenario, stream: bool,
                     check: Callable[[str, Json], None] | None = None) -> Json:
    """The whole exchange for one pair, scenario and mode (``normalise`` it for a golden file).

    ``check(side, value)`` sees the app's request (``"request"``), the canonical chat request
    (``"chat"``) and the inbound answer (``"answer"``) for SDK-type checks by the caller.
    """
    body = app_request(inbound, s, stream)
    if check is not None:
        check("request", body)
    chat = to_chat(inbound, body, stream)
    if check is not None:
        check("chat", chat)
    adapter: Any = build_adapter(target(outbound), lambda: "sk-test")
    try:
        prepared, raw = await adapter.build(chat, stream)
    finally:
        await adapter.aclose()
    wire = json.loads(raw)
    dialect = _dialect(outbound)
    refused: BadRequest | None = dialect.validate(wire, dict(prepared.headers), _PATH[outbound])
    if refused is not None:
        raise Refused(f"{inbound}->{outbound} {s.name}: the strict emulator refused the body: {refused.message}")
    prompt = dialect.parse(wire, MODELS[outbound], stream)
    answer = finalize(prompt, provider_reply(outbound, s), lambda: "unused")
    out: Json = {"description": f"{s.description} ({inbound} app -> {outbound} target, {'streamed' if stream else 'not streamed'})",
                 "inbound": inbound, "outbound": outbound, "scenario": s.name, "stream": stream,
                 "request": body, "wire": wire,
                 "seen_by_provider": {"tool_mode": prompt.tool_mode, "forced_tool": prompt.forced_tool,
                                      "tool_result": prompt.tool_result, "tools": [t.name for t in prompt.tools]}}
    if stream:
        events = sse_events(dialect.stream_frames(prompt, answer, 1, 1700000000))
        translator = adapter.stream_translator(chat)
        chunks: list[Json] = []
        for event in json.loads(json.dumps(events)):
            chunks += translator.feed(event)
        chunks += translator.finish()
        out["provider"] = events
        out["answer"] = _inbound_stream(inbound, body, chunks)
    else:
        response = dialect.response(prompt, answer, 1, 1700000000)
        out["provider"] = response
        out["answer"] = _inbound_answer(inbound, body, adapter.answer(json.loads(json.dumps(response))))
    if check is not None:
        check("answer", out["answer"])
    return out
