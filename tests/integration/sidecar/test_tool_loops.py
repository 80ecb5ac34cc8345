"""Tool loops through the real SDKs: every app SDK x every provider behind the sidecar, streamed and not.

The app runs its tools the way its own SDK documents (OpenAI chat messages, Responses input items,
Anthropic tool_result blocks, google-genai function responses built by name, without ids), and
sends the whole conversation back each turn. The strict emulators refuse a turn whose results do
not pair with the calls before it (``dialects/toolrules.py``), so ids carried wrongly across the
translation fail here. Two conversations: a call, its result, then the next call (then text); and
two parallel calls answered together (then text). The goldens of every pair and scenario are in
``tests/unit/translate/test_tool_conformance.py``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types as gtypes

from modelroute.testing.emulators.model import Reply, ToolCall
from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.sidecars import route, target
from modelroute.testing.toolconf import TOOLS

from .conftest import Running

Json = dict[str, Any]
Start = Callable[..., Awaitable[Running]]
Calls = list[tuple[str, str, Json]]  # (id, name, arguments) of one assistant turn

APPS = ["chat", "responses", "anthropic", "gemini"]
TARGETS = ["openai", "responses", "anthropic", "gemini"]
RESULTS = {"get_weather": '{"temp_c": 18}', "get_time": "14:05"}
MARKS = {"get_weather": "temp_c", "get_time": "14:05"}  # what of each result any provider's wire form keeps
CONVERSATIONS: dict[str, list[Reply]] = {
    "loop": [Reply(tool_calls=(ToolCall("get_weather", {"city": "Paris"}),)),
             Reply(tool_calls=(ToolCall("get_time", {"tz": "Europe/Paris"}),)), Reply(text="Done.")],
    "parallel": [Reply(tool_calls=(ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "Europe/Paris"}))),
                 Reply(text="Done.")],
}
QUESTION = "Weather in Paris, then the local time?"


class App:
    """One app's conversation in its own SDK: ``turn()`` sends it, records the answer and runs the tools."""

    def __init__(self, url: str, stream: bool) -> None:
        self.url, self.stream = url, stream

    async def turn(self) -> tuple[str, Calls]:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class ChatApp(App):
    def __init__(self, url: str, stream: bool) -> None:
        super().__init__(url, stream)
        self.client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        self.messages: list[Any] = [{"role": "user", "content": QUESTION}]

    async def turn(self) -> tuple[str, Calls]:
        tools: Any = [{"type": "function", "function": t} for t in TOOLS]
        text, calls = "", dict[int, list[str]]()
        if not self.stream:
            r = await self.client.chat.completions.create(model="assist", messages=self.messages, tools=tools)
            msg = r.choices[0].message
            text = msg.content or ""
            found = [(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or () if c.type == "function"]
        else:
            async for chunk in await self.client.chat.completions.create(model="assist", messages=self.messages,
                                                                         tools=tools, stream=True):
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for d in choice.delta.tool_calls or ():
                        slot = calls.setdefault(d.index, ["", "", ""])
                        slot[0] = d.id or slot[0]
                        slot[1] = (d.function.name if d.function else None) or slot[1]
                        slot[2] += (d.function.arguments if d.function else None) or ""
            found = [(calls[i][0], calls[i][1], calls[i][2]) for i in sorted(calls)]
        if found:
            self.messages.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in found]})
            self.messages += [{"role": "tool", "tool_call_id": i, "content": RESULTS[n]} for i, n, _ in found]
        return text, [(i, n, json.loads(a)) for i, n, a in found]

    async def close(self) -> None:
        await self.client.close()


class ResponsesApp(App):
    def __init__(self, url: str, stream: bool) -> None:
        super().__init__(url, stream)
        self.client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        self.input: list[Any] = [{"role": "user", "content": QUESTION}]

    async def turn(self) -> tuple[str, Calls]:
        tools: Any = [{"type": "function", "strict": False, **t} for t in TOOLS]
        if not self.stream:
            response = await self.client.responses.create(model="assist", input=self.input, tools=tools)
        else:
            async with self.client.responses.stream(model="assist", input=self.input, tools=tools) as s:
                async for _ in s:
                    pass
                response = await s.get_final_response()
        self.input += [item.model_dump(exclude_none=True) for item in response.output]  # the SDK's documented loop
        found = [(i.call_id, i.name, i.arguments) for i in response.output if i.type == "function_call"]
        self.input += [{"type": "function_call_output", "call_id": i, "output": RESULTS[n]} for i, n, _ in found]
        return response.output_text, [(i, n, json.loads(a)) for i, n, a in found]

    async def close(self) -> None:
        await self.client.close()


class AnthropicApp(App):
    def __init__(self, url: str, stream: bool) -> None:
        super().__init__(url, stream)
        self.client = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
        self.messages: list[Any] = [{"role": "user", "content": QUESTION}]

    async def turn(self) -> tuple[str, Calls]:
        tools: Any = [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS]
        if not self.stream:
            message = await self.client.messages.create(model="assist", max_tokens=256, messages=self.messages, tools=tools)
        else:
            async with self.client.messages.stream(model="assist", max_tokens=256, messages=self.messages, tools=tools) as s:
                message = await s.get_final_message()
        self.messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
        found = [(b.id, b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]  # type: ignore[arg-type]
        if found:
            self.messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": i, "content": RESULTS[n]} for i, n, _ in found]})
        text = "".join(b.text for b in message.content if b.type == "text")
        assert message.stop_reason == ("tool_use" if found else "end_turn")
        return text, found

    async def close(self) -> None:
        await self.client.close()


class GeminiApp(App):
    def __init__(self, url: str, stream: bool) -> None:
        super().__init__(url, stream)
        self.client = genai.Client(api_key="x", http_options={"base_url": url})
        self.contents: list[gtypes.Content] = [gtypes.Content(role="user", parts=[gtypes.Part(text=QUESTION)])]
        self.config = gtypes.GenerateContentConfig(
            tools=[gtypes.Tool(function_declarations=[gtypes.FunctionDeclaration(
                name=t["name"], description=t["description"], parameters_json_schema=t["parameters"]) for t in TOOLS])],
            automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True))

    async def turn(self) -> tuple[str, Calls]:
        models = self.client.aio.models
        if not self.stream:
            responses = [await models.generate_content(model="assist", contents=self.contents, config=self.config)]
        else:
            responses = [c async for c in await models.generate_content_stream(model="assist", contents=self.contents,
                                                                                config=self.config)]
        parts = [p for r in responses for c in (r.candidates or [])[:1] for p in ((c.content.parts if c.content else None) or ())]
        self.contents.append(gtypes.Content(role="model", parts=parts))  # the model's turn, as the SDK's chats keep it
        found = [(p.function_call.id or "", p.function_call.name or "", dict(p.function_call.args or {}))
                 for p in parts if p.function_call]
        if found:  # responses built by name, without ids, as Part.from_function_response does
            self.contents.append(gtypes.Content(role="user", parts=[
                gtypes.Part.from_function_response(name=n, response={"output": RESULTS[n]}) for _, n, _ in found]))
        return "".join(p.text or "" for p in parts if not p.function_call), found

    async def close(self) -> None:
        await self.client.aio.aclose()
        self.client.close()


APP_CLASSES: dict[str, type[App]] = {"chat": ChatApp, "responses": ResponsesApp, "anthropic": AnthropicApp, "gemini": GeminiApp}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("outbound", TARGETS)
@pytest.mark.parametrize("app", APPS)
async def test_tool_loop(emu: EmulatorServer, start: Start, app: str, outbound: str, conversation: str, stream: bool) -> None:
    provider = "openai" if outbound == "responses" else outbound
    extra: Json = {"api": "responses"} if outbound == "responses" else {}
    sc = await start([route("assist", [target(emu, provider, **extra)])])
    replies = CONVERSATIONS[conversation]
    emu.script.enqueue(*replies, provider=provider)
    client = APP_CLASSES[app](sc.sidecar.inbound_url, stream)
    try:
        turns = [await client.turn() for _ in replies]
    finally:
        await client.close()

    for (text, calls), reply in zip(turns, replies, strict=True):
        assert text == reply.text
        assert [(n, a) for _, n, a in calls] == [(c.name, c.arguments) for c in reply.tool_calls]
    ids = [i for _, calls in turns for i, _, _ in calls]
    assert len(set(ids)) == len(ids) and all(ids), ids  # unique across the conversation, as Anthropic requires
    sent = emu.requests(provider)
    assert len(sent) == len(replies)
    last = json.dumps(sent[-1].body)
    for _, calls in turns[:-1]:  # every result went back, paired with its call (the strict emulator checked the pairing)
        for _, name, _ in calls:
            assert MARKS[name] in last, (name, last)
