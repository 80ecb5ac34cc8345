"""The strict emulators' tool pairing rules refuse what the real APIs refuse (``dialects/toolrules.py``)."""

from __future__ import annotations

from typing import Any

from modelroute.testing.emulators.dialects import toolrules

Json = dict[str, Any]
USER: Json = {"role": "user", "content": "hi"}


def _oa_call(call_id: str) -> Json:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_openai_chat() -> None:
    ok = [USER, _oa_call("call_1"), {"role": "tool", "tool_call_id": "call_1", "content": "x"}, USER]
    assert toolrules.openai_chat({"messages": ok}) is None
    long_id = "call_" + "x" * 36
    refused = toolrules.openai_chat({"messages": [USER, _oa_call(long_id), {"role": "tool", "tool_call_id": long_id, "content": "x"}]})
    assert refused is not None and refused.code == "string_above_max_length" and "length 41" in refused.message
    unanswered = toolrules.openai_chat({"messages": [USER, _oa_call("call_1"), USER]})
    assert unanswered is not None and "did not have response messages: call_1" in unanswered.message
    orphan = toolrules.openai_chat({"messages": [USER, {"role": "tool", "tool_call_id": "call_9", "content": "x"}]})
    assert orphan is not None and "must be a response to a preceeding message with 'tool_calls'" in orphan.message


def test_openai_responses() -> None:
    call: Json = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    output: Json = {"type": "function_call_output", "call_id": "call_1", "output": "x"}
    assert toolrules.openai_responses({"input": [USER, call, output]}) is None
    refused = toolrules.openai_responses({"input": [USER, output]})
    assert refused is not None and "No tool call found for function call output with call_id call_1" in refused.message


def test_anthropic() -> None:
    def use(i: str) -> Json:
        return {"role": "assistant", "content": [{"type": "tool_use", "id": i, "name": "f", "input": {}}]}

    def result(i: str) -> Json:
        return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "x"}]}

    assert toolrules.anthropic({"messages": [USER, use("toolu_1"), result("toolu_1")]}) is None
    assert toolrules.anthropic({"messages": [USER, use("toolu_1")]}) is None  # the last turn may end with a call
    missing = toolrules.anthropic({"messages": [USER, use("toolu_1"), USER]})
    assert missing is not None and "`tool_use` ids were found without `tool_result` blocks immediately after" in missing.message
    both = {"role": "user", "content": result("toolu_1")["content"] + result("toolu_2")["content"]}
    stray = toolrules.anthropic({"messages": [USER, use("toolu_1"), both]})
    assert stray is not None and "unexpected `tool_use_id` found in `tool_result` blocks: toolu_2" in stray.message
    bad_id = toolrules.anthropic({"messages": [USER, use("call.1"), result("call.1")]})
    assert bad_id is not None and "String should match pattern" in bad_id.message


def test_gemini() -> None:
    call: Json = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}, {"functionCall": {"name": "g", "args": {}}}]}
    both: Json = {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}},
                                             {"functionResponse": {"name": "g", "response": {}}}]}
    user: Json = {"role": "user", "parts": [{"text": "hi"}]}
    assert toolrules.gemini({"contents": [user, call, both]}) is None
    one = {"role": "user", "parts": both["parts"][:1]}
    refused = toolrules.gemini({"contents": [user, call, one]})
    assert refused is not None and "number of function response parts is equal" in refused.message
