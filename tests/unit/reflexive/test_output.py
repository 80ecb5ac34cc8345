"""Output contracts: tolerant parsing, schema validation, labels, repair turns, native requests, tasks."""

from __future__ import annotations

import time
from typing import Any

import pytest

from modelroute.api.v1alpha1 import Provider
from modelroute.sidecar.output import (
    InvalidOutput,
    InvalidSchema,
    LabelSet,
    Mode,
    OutputContract,
    OutputError,
    SchemaCache,
    TaskError,
    add_usage,
    anthropic_native_schema,
    apply_contract,
    classify_chat_request,
    classify_response,
    complete_valid,
    extract_chat_request,
    extract_json,
    extract_response,
    invalid_output_body,
    parse_classify,
    parse_extract,
    render,
    repair_request,
    strict_compatible,
    task_contract,
    template_variables,
)

PERSON: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
                          "required": ["name", "age"], "additionalProperties": False}


@pytest.mark.parametrize("answer", [
    '{"name": "Alice", "age": 31}',
    '```json\n{"name": "Alice", "age": 31}\n```',
    'Sure! Here is the JSON:\n```\n{"name": "Alice", "age": 31}\n```\nLet me know if you need more.',
    'Here you go: {"name": "Alice", "age": 31} -- hope that helps',
    '{"name": "Alice", "age": 31,}',
    '{\n  "name": "Alice",\n  "age": 31,\n}\n',
    '```json\n{"name": "Alice", "age": 31,}',  # unclosed fence (answer cut by the stop)
])
def test_extract_json_tolerates_what_small_models_emit(answer: str) -> None:
    assert extract_json(answer) == {"name": "Alice", "age": 31}


def test_extract_json_keeps_strings_intact() -> None:
    # Braces and ",}" inside strings are data, not structure.
    assert extract_json('Result: {"note": "a,} b {x}", "list": [1, 2,]} end') == {"note": "a,} b {x}", "list": [1, 2]}
    assert extract_json("[1, 2, 3]") == [1, 2, 3]


@pytest.mark.parametrize("answer", ["", "   ", "I cannot answer that.", '{"name": "Alice", "age": }', "{unclosed"])
def test_extract_json_rejects_non_json(answer: str) -> None:
    with pytest.raises(OutputError, match=r"empty|not valid JSON"):
        extract_json(answer)


LABELS = LabelSet(["billing", "shipping", "Technical Support"])


@pytest.mark.parametrize(("answer", "label"), [
    ("billing", "billing"), ("Billing.", "billing"), ("  BILLING\n", "billing"), ('"billing"', "billing"),
    ("**Billing**", "billing"), ("Label: billing", "billing"), ("Category: Shipping!", "shipping"),
    ("technical support", "Technical Support"), ("```\nshipping\n```", "shipping"), ('{"label": "billing"}', "billing"),
    ("The ticket is about billing.", "billing"), ("billing\nThe customer was charged twice.", "billing"),
])
def test_labels_match_tolerantly(answer: str, label: str) -> None:
    assert LABELS.match(answer) == label


@pytest.mark.parametrize(("answer", "why"), [
    ("refund", "not one of the allowed labels"), ("", "empty"),
    ("billing or shipping", "several labels"), ("bill", "not one of"),
])
def test_labels_reject_wrong_answers(answer: str, why: str) -> None:
    with pytest.raises(OutputError, match=why) as info:
        LABELS.match(answer)
    assert "billing, shipping, Technical Support" in str(info.value)


def test_label_set_rejects_ambiguous_config() -> None:
    with pytest.raises(ValueError, match="differ only"):
        LabelSet(["Billing", "billing."])
    with pytest.raises(ValueError):
        LabelSet([])


def test_schema_contract_validates_and_explains() -> None:
    contract = OutputContract.build("schema", schema=PERSON)
    assert contract.check('```json\n{"name": "A", "age": 3}\n```') == {"name": "A", "age": 3}
    with pytest.raises(OutputError) as info:
        contract.check('{"name": "A", "age": "three", "extra": 1}')
    message = str(info.value)
    assert "$.age: 'three' is not of type 'integer'" in message
    assert "Additional properties are not allowed ('extra' was unexpected)" in message
    with pytest.raises(OutputError, match=r"\$: 'age' is a required property"):
        contract.check('{"name": "A"}')


def test_json_and_text_modes() -> None:
    assert OutputContract.build("json").check("ok: [1,2]") == [1, 2]
    assert OutputContract.build("text").check("anything") == "anything"
    assert not OutputContract.build("text").constrains
    assert OutputContract.build("text", labels=["a", "b"]).check("B") == "b"


def test_invalid_schema_is_a_config_error() -> None:
    with pytest.raises(InvalidSchema, match="invalid JSON Schema"):
        OutputContract.build("schema", schema={"type": "objekt"})
    with pytest.raises(ValueError, match="needs a schema"):
        OutputContract.build(Mode.SCHEMA)


def test_validators_are_compiled_once_per_schema() -> None:
    cache = SchemaCache(max_entries=2)
    a = cache.validator(PERSON)
    reordered = dict(reversed(list(PERSON.items())))
    assert cache.validator(reordered) is a  # canonical key: key order does not matter
    cache.validator({"type": "string"})
    cache.validator({"type": "integer"})
    assert len(cache) == 2 and cache.validator(PERSON) is not a  # LRU evicted the oldest


def test_check_completion_skips_tool_calls_and_reads_text() -> None:
    contract = OutputContract.build("text", labels=["yes", "no"])
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes."}, "finish_reason": "stop"}]}
    assert contract.check_completion(completion) == "yes"
    tool = {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}}]}
    assert contract.check_completion(tool) is None


def test_repair_request_appends_the_turn_without_mutating() -> None:
    contract = OutputContract.build("schema", schema=PERSON)
    request = {"model": "extract", "messages": [{"role": "user", "content": "Alice, 31"}], "temperature": 0}
    try:
        contract.check('{"name": "Alice"}')
    except OutputError as e:
        repaired = repair_request(request, '{"name": "Alice"}', e, contract=contract)
    assert request["messages"] == [{"role": "user", "content": "Alice, 31"}]
    assert repaired["temperature"] == 0 and len(repaired["messages"]) == 3
    assert repaired["messages"][1] == {"role": "assistant", "content": '{"name": "Alice"}'}
    turn = repaired["messages"][2]
    assert turn["role"] == "user" and "'age' is a required property" in turn["content"]
    assert '"required":["name","age"]' in turn["content"]  # the schema is restated


def test_native_structured_output_per_provider() -> None:
    contract = OutputContract.build("schema", schema=PERSON)
    request = {"model": "x", "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "u"}],
               "response_format": {"type": "text"}}
    openai = apply_contract(request, contract, Provider.OPENAI)
    assert openai["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": PERSON, "strict": True}}
    assert openai["messages"] == request["messages"]
    for provider in (Provider.ANTHROPIC, Provider.GEMINI):
        assert apply_contract(request, contract, provider)["response_format"]["type"] == "json_schema"
    compatible = apply_contract(request, contract, Provider.OPENAI_COMPATIBLE)
    assert "response_format" not in compatible
    assert compatible["messages"][1]["role"] == "system" and "JSON Schema" in compatible["messages"][1]["content"]
    assert compatible["messages"][2] == {"role": "user", "content": "u"}
    assert request["response_format"] == {"type": "text"}  # not mutated

    loose = OutputContract.build("schema", schema={"type": "object", "properties": {"a": {"type": "string"}}})
    assert apply_contract(request, loose, Provider.OPENAI)["response_format"]["json_schema"]["strict"] is False
    labels = apply_contract(request, OutputContract.build("text", labels=["a", "b"]), Provider.OPENAI)
    assert "response_format" in labels and labels["messages"][1]["content"].endswith("a, b.")
    assert apply_contract(request, OutputContract.build("text"), Provider.OPENAI) is request
    assert anthropic_native_schema("claude-haiku-4-5-20251001") and not anthropic_native_schema("claude-3-haiku-20240307")


def test_strict_compatible() -> None:
    assert strict_compatible(PERSON)
    assert not strict_compatible({"type": "object", "properties": {"a": {}}, "required": [], "additionalProperties": False})
    nested = {"type": "object", "properties": {"x": {"type": "object", "properties": {}}}, "required": ["x"], "additionalProperties": False}
    assert not strict_compatible(nested)


def test_classify_task_round_trip() -> None:
    task = parse_classify({"route": "tickets", "input": "I was charged twice", "variables": {"lang": "en"}})
    route_contract = OutputContract.build("text", labels=["billing", "shipping"], repair_attempts=2)
    contract = task_contract(task, route_contract, kind="classify")
    assert contract is route_contract
    request = classify_chat_request(task, contract, user_template="Ticket ({{lang}}, {{tone}}): {{input}}\nLabels: {{labels}}",
                                    defaults={"lang": "de", "tone": "formal"})
    assert request["model"] == "tickets"
    assert request["messages"][0]["role"] == "system" and "billing, shipping" in request["messages"][0]["content"]
    assert request["messages"][1] == {"role": "user", "content": "Ticket (en, formal): I was charged twice\nLabels: billing, shipping"}
    label = contract.check("Billing.")
    assert classify_response(label, route="tickets", target="haiku", revision="abc123", usage={"total_tokens": 9}) == {
        "label": "billing", "route": "tickets", "target": "haiku", "revision": "abc123", "usage": {"total_tokens": 9}}

    own = task_contract(parse_classify({"route": "r", "input": "x", "labels": ["spam", "ham"]}), route_contract, kind="classify")
    assert own.labels is not None and own.labels.labels == ("spam", "ham") and own.repair_attempts == 2


def test_extract_task_round_trip() -> None:
    task = parse_extract({"route": "people", "input": {"text": "Alice, 31"}, "schema": PERSON})
    assert task.input == '{"text":"Alice, 31"}'
    contract = task_contract(task, None, kind="extract")
    request = extract_chat_request(task, contract)
    assert "JSON Schema" in request["messages"][0]["content"] and request["messages"][1]["content"] == task.input
    data = contract.check('{"name": "Alice", "age": 31}')
    assert extract_response(data, valid=True, route="people", target="mini", revision="r1", usage=None, prompt_version="v2") == {
        "data": data, "valid": True, "route": "people", "target": "mini", "revision": "r1", "usage": None, "promptVersion": "v2"}
    body = invalid_output_body("$.age: required", route="people", attempts=[])
    assert body["error"]["type"] == "invalid_output" and "people" in body["error"]["message"]


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x"}, "route"), ({"route": "r"}, "input"), ({"route": "r", "input": "x", "labels": []}, "labels"),
    ({"route": "r", "input": "x", "labels": ["a", 1]}, "labels"), ({"route": "r", "input": "x", "variables": {"a": 1}}, "variables"),
])
def test_classify_rejects_malformed(body: dict[str, Any], param: str) -> None:
    with pytest.raises(TaskError) as info:
        parse_classify(body)
    assert info.value.param == param


def test_task_needs_labels_or_schema_from_somewhere() -> None:
    with pytest.raises(TaskError, match="labels are required"):
        task_contract(parse_classify({"route": "r", "input": "x"}), None, kind="classify")
    with pytest.raises(TaskError, match="schema is required"):
        task_contract(parse_extract({"route": "r", "input": "x"}), OutputContract.build("json"), kind="extract")
    with pytest.raises(TaskError, match="schema must be"):
        parse_extract({"route": "r", "input": "x", "schema": "no"})
    with pytest.raises(InvalidSchema):
        task_contract(parse_extract({"route": "r", "input": "x", "schema": {"type": 5}}), None, kind="extract")


def test_templates() -> None:
    assert render('{"q": "{{ input }}"} {x}', {"input": "hi"}) == '{"q": "hi"} {x}'
    assert template_variables("{{a}} and {{ b }} and {c}") == {"a", "b"}
    with pytest.raises(TaskError, match="'missing'"):
        render("{{missing}}", {})


def test_checking_a_small_answer_is_cheap() -> None:
    contract = OutputContract.build("schema", schema=PERSON)
    labels = OutputContract.build("text", labels=[f"label-{i}" for i in range(20)])
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        contract.check('```json\n{"name": "Alice", "age": 31}\n```')
        labels.check("Label-7.")
    per_call_us = (time.perf_counter() - start) / (2 * n) * 1e6
    assert per_call_us < 200, per_call_us  # generous bound for a loaded CI box; typically ~10 us


def _completion(content: str, tokens: int = 10) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": tokens, "completion_tokens": 2, "total_tokens": tokens + 2}}


async def test_complete_valid_repairs_then_succeeds() -> None:
    contract = OutputContract.build("schema", schema=PERSON, repair_attempts=2)
    answers = iter(['Sure: {"name": "Alice"}', '{"name": "Alice", "age": "31"}', '```json\n{"name": "Alice", "age": 31}\n```'])
    seen: list[dict[str, Any]] = []

    async def complete(request: dict[str, Any]) -> dict[str, Any]:
        seen.append(request)
        return _completion(next(answers))

    request = {"model": "people", "messages": [{"role": "user", "content": "Alice, 31"}]}
    valid = await complete_valid(complete, request, contract)
    assert valid.value == {"name": "Alice", "age": 31} and valid.tries == 3
    assert valid.usage == {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}
    assert [len(r["messages"]) for r in seen] == [1, 3, 5]  # each repair keeps the earlier ones
    assert "'age' is a required property" in seen[1]["messages"][2]["content"]
    assert "'31' is not of type 'integer'" in seen[2]["messages"][4]["content"]


async def test_complete_valid_gives_up_after_the_repairs() -> None:
    contract = OutputContract.build("text", labels=["billing", "shipping"], repair_attempts=1)
    calls = 0

    async def complete(request: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return _completion("refund")

    with pytest.raises(InvalidOutput) as info:
        await complete_valid(complete, {"model": "r", "messages": []}, contract)
    assert calls == 2 and info.value.tries == 2 and info.value.answer == "refund"
    assert "not one of the allowed labels" in str(info.value) and info.value.usage is not None
    assert info.value.usage["total_tokens"] == 24

    no_repair = OutputContract.build("json", repair_attempts=0)
    calls = 0
    with pytest.raises(InvalidOutput):
        await complete_valid(complete, {"model": "r", "messages": []}, no_repair)
    assert calls == 1


def test_add_usage() -> None:
    a = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6, "prompt_tokens_details": {"cached_tokens": 2}}
    b = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    assert add_usage(a, b) == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16, "prompt_tokens_details": {"cached_tokens": 2}}
    assert add_usage(None, b) is b and add_usage(a, None) is a
