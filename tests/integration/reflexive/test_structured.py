"""Structured outputs against emulators that answer like small models do: repaired or rejected, counted.

Fences, prose around the JSON and a trailing comma are accepted as they are; a missing
field or a wrong label gets one repair turn that feeds the validation error back; still
invalid falls back to the next target (``invalid_output``); no valid answer anywhere is a
422 with the validation message. Never is an invalid answer passed on.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from modelroute.testing.emulators.server import EmulatorServer
from modelroute.testing.scrape import sample
from modelroute.testing.sidecars import MODELS, route, target

from .conftest import PROVIDERS, Running, Start

PERSON: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name", "age"],
}
LABELS = ["billing", "shipping", "other"]


def extract_route(emu: EmulatorServer, primary: str = "openai", backup: str = "gemini", **spec: Any) -> dict[str, Any]:
    return route("person", [target(emu, primary, "primary"), target(emu, backup, "backup")],
                 output={"mode": "schema", "schema": PERSON, "repairAttempts": 1},
                 prompt={"version": "v7", "system": "You extract people.", "user": "Text ({{lang}}): {{input}}",
                         "variables": {"lang": "en"}}, **spec)


def classify_route(emu: EmulatorServer, primary: str = "anthropic", backup: str = "openai") -> dict[str, Any]:
    return route("ticket", [target(emu, primary, "primary"), target(emu, backup, "backup")],
                 output={"labels": LABELS}, prompt={"version": "v3", "system": "You label support tickets."})


async def output_stats(sc: Running, name: str) -> dict[str, int]:
    out: dict[str, int] = (await sc.stats())["routes"][name]["output"]
    return out


@pytest.mark.parametrize("answer", [
    '```json\n{"name": "Ada", "age": 36}\n```',
    'Here is the JSON you asked for:\n{"name": "Ada", "age": 36}\nLet me know if you need more.',
    '{"name": "Ada", "age": 36,}',
], ids=["fences", "prose", "trailing-comma"])
async def test_tolerated_answers_are_valid_at_once(emu: EmulatorServer, start: Start, answer: str) -> None:
    sc = await start([extract_route(emu)])
    emu.reply(answer, provider="openai")
    status, headers, body = await sc.post("/v1/extract", {"route": "person", "input": "Ada, 36, mathematician"})
    assert status == 200, body
    assert body["data"] == {"name": "Ada", "age": 36} and body["valid"] is True
    assert body["target"] == "primary" and body["route"] == "person" and body["revision"]
    assert body["promptVersion"] == "v7" and headers["x-modelroute-prompt-version"] == "v7"
    assert body["usage"]["completion_tokens"] > 0
    assert emu.count("openai") == 1 and emu.count("gemini") == 0
    sent = emu.requests("openai")[0].body
    assert sent["response_format"]["type"] == "json_schema" and sent["response_format"]["json_schema"]["strict"] is True
    assert sent["messages"][-1]["content"] == "Text (en): Ada, 36, mathematician"  # the route's template, filled in
    assert await output_stats(sc, "person") == {"valid": 1, "repaired": 0, "invalid": 0, "rejected": 0}


async def test_missing_field_is_repaired_with_the_validation_error(emu: EmulatorServer, start: Start) -> None:
    sc = await start([extract_route(emu)])
    emu.script.enqueue('{"name": "Ada"}', '{"name": "Ada", "age": 36}', provider="openai")
    status, _, body = await sc.post("/v1/extract", {"route": "person", "input": "Ada, 36"})
    assert status == 200 and body["data"] == {"name": "Ada", "age": 36} and body["target"] == "primary"
    repair = emu.requests("openai")[1].body["messages"]
    assert repair[-2] == {"role": "assistant", "content": '{"name": "Ada"}'}
    assert "'age' is a required property" in repair[-1]["content"]
    assert body["usage"]["prompt_tokens"] > emu.requests("openai")[0].extra.get("input_tokens", 0)  # both tries counted
    assert await output_stats(sc, "person") == {"valid": 0, "repaired": 1, "invalid": 0, "rejected": 0}


async def test_still_invalid_falls_back_to_the_next_target(emu: EmulatorServer, start: Start) -> None:
    sc = await start([extract_route(emu)])
    emu.reply('{"name": "Ada"}', provider="openai")                 # never fixes it
    emu.reply('{"name": "Ada", "age": 36}', provider="gemini")
    status, _, body = await sc.post("/v1/extract", {"route": "person", "input": "Ada, 36"})
    assert status == 200 and body["target"] == "backup" and body["data"]["age"] == 36
    assert emu.count("openai") == 2 and emu.count("gemini") == 1      # answer + one repair, then the fallback
    gemini_body = emu.requests("gemini")[0].body
    assert gemini_body["generationConfig"]["responseJsonSchema"] == PERSON   # Gemini's native structured output
    stats = await sc.stats()
    assert stats["routes"]["person"]["targets"]["primary"]["outcomes"] == {"invalid_output": 1}
    assert await output_stats(sc, "person") == {"valid": 1, "repaired": 0, "invalid": 1, "rejected": 0}


async def test_no_valid_answer_anywhere_is_a_422_with_the_reason(emu: EmulatorServer, start: Start) -> None:
    sc = await start([extract_route(emu)])
    emu.reply("I'm sorry, I cannot find a person here.")
    status, _, body = await sc.post("/v1/extract", {"route": "person", "input": "nothing"})
    assert status == 422
    err = body["error"]
    assert err["code"] == "invalid_output" and "no target produced a valid answer" in err["message"]
    assert "not valid JSON" in err["message"]
    assert [a["outcome"] for a in err["attempts"]] == ["invalid_output", "invalid_output"]
    assert await output_stats(sc, "person") == {"valid": 0, "repaired": 0, "invalid": 2, "rejected": 1}
    metrics = await sc.metrics()
    assert sample(metrics, "modelroute_output_checks_total", route="person", result="rejected") == 1


async def test_classify_wrong_label_then_repaired_and_prose_tolerated(emu: EmulatorServer, start: Start) -> None:
    sc = await start([classify_route(emu)])
    emu.script.enqueue("refund", "Label: Billing.", provider="anthropic")
    status, headers, body = await sc.post("/v1/classify", {"route": "ticket", "input": "I was charged twice"})
    assert status == 200, body
    assert body["label"] == "billing" and body["target"] == "primary" and body["promptVersion"] == "v3"
    assert headers["x-modelroute-target"] == "primary"
    assert set(body) == {"label", "route", "target", "revision", "usage", "promptVersion"}
    repair = emu.requests("anthropic")[1].body["messages"]
    assert "refund" in str(repair) and "billing, shipping, other" in str(repair)
    assert await output_stats(sc, "ticket") == {"valid": 0, "repaired": 1, "invalid": 0, "rejected": 0}


async def test_classify_request_labels_override_and_wrong_labels_are_rejected(emu: EmulatorServer, start: Start) -> None:
    sc = await start([classify_route(emu)])
    emu.reply("urgent")                                              # every target, every try
    status, _, body = await sc.post("/v1/classify", {"route": "ticket", "input": "x", "labels": ["low", "high"]})
    assert status == 422 and "low, high" in body["error"]["message"]
    emu.reset()
    emu.reply("It is HIGH.")
    status, _, body = await sc.post("/v1/classify", {"route": "ticket", "input": "server down", "labels": ["low", "high"]})
    assert status == 200 and body["label"] == "high"


async def test_chat_endpoint_applies_the_contract_and_rejects_with_422(emu: EmulatorServer, start: Start) -> None:
    sc = await start([classify_route(emu)])
    client = openai.AsyncOpenAI(base_url=sc.url + "/v1", api_key="x", max_retries=0)
    emu.reply("shipping, or maybe billing")                          # names two labels: never valid
    with pytest.raises(openai.UnprocessableEntityError) as e:
        await client.chat.completions.create(model="ticket", messages=[{"role": "user", "content": "hm"}])
    assert "names several labels" in str(e.value)
    with pytest.raises(openai.UnprocessableEntityError):  # checked before the first byte: an HTTP error, not a stream
        await client.chat.completions.create(model="ticket", messages=[{"role": "user", "content": "hm"}], stream=True)
    assert await output_stats(sc, "ticket") == {"valid": 0, "repaired": 0, "invalid": 4, "rejected": 2}
    await client.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_native_structured_output_per_provider(emu: EmulatorServer, start: Start, provider: str) -> None:
    sc = await start([route("person", [target(emu, provider)], output={"mode": "schema", "schema": PERSON})])
    status, _, body = await sc.post("/v1/extract", {"route": "person", "input": "Ada, 36"})
    assert status == 200 and body["valid"] is True and set(body["data"]) == {"name", "age"}  # the emulator's schema-valid doc
    sent = emu.requests(provider)[0].body
    if provider == "openai":
        assert sent["response_format"]["json_schema"]["schema"] == PERSON
    elif provider == "anthropic":
        assert sent["output_config"]["format"]["schema"] == PERSON and MODELS[provider].startswith("claude-haiku-4-5")
    else:
        assert sent["generationConfig"]["responseMimeType"] == "application/json"


async def test_task_request_errors(emu: EmulatorServer, start: Start) -> None:
    sc = await start([route("free", [target(emu, "openai")])])
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/classify", {"route": "free", "input": "x"}, 400, "labels are required"),
        ("/v1/extract", {"route": "free", "input": "x"}, 400, "schema is required"),
        ("/v1/extract", {"route": "free", "input": "x", "schema": {"type": "objekt"}}, 400, "JSON Schema"),
        ("/v1/classify", {"route": "nope", "input": "x", "labels": ["a"]}, 404, "known routes: free"),
        ("/v1/classify", {"input": "x"}, 400, "route is required"),
    ]
    for path, req, code, message in cases:
        status, _, body = await sc.post(path, req)
        assert status == code and message in body["error"]["message"], (path, req, body)
    assert emu.count() == 0
    status, _, body = await sc.post("/v1/extract", {"route": "free", "input": "Ada, 36", "schema": PERSON})
    assert status == 200 and body["valid"] is True                   # a request schema on a route without a contract
