"""Hypothesis strategies for inbound bodies: near-valid requests of each API, any field possibly wrong.

Every field of a well-formed body is drawn either from its valid values or from arbitrary JSON
(``maybe``), so the cases reach deep into the translators instead of failing at the first check.
Schemas mix valid keywords with ``$ref``s that must never be fetched (``trap`` is the loopback
trap server's URL, filled in by the HTTP tests).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

Json = dict[str, Any]

ROUTES = ["fz-openai", "fz-anthropic", "fz-gemini"]

TEXT = st.text(max_size=24)
LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
                 TEXT)
JSON = st.recursive(LEAF, lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(TEXT, c, max_size=4)), max_leaves=16)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``valid``, sometimes any JSON value."""
    return st.one_of(valid, valid, valid, JSON)


def obj(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]] | None = None) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries({k: maybe(v) for k, v in required.items()},
                                 optional={k: maybe(v) for k, v in (optional or {}).items()})


def refs(trap: str) -> st.SearchStrategy[str]:
    return st.sampled_from([f"{trap}/schema.json", "other.json", "#", "#/$defs/a", "#/properties/x", "#/nope",
                            "#anchor", "file:///etc/passwd", f"{trap}/x#/a", "urn:x:y"])


def schemas(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    leaf = st.fixed_dictionaries({}, optional={
        "type": st.sampled_from(["string", "integer", "number", "object", "array", "boolean", "null", "nope"]),
        "$ref": refs(trap), "enum": st.lists(LEAF, max_size=3), "format": st.sampled_from(["email", "uri", "date"]),
        "minLength": st.integers(-1, 5), "$id": st.sampled_from([f"{trap}/root.json", "relative.json"])})
    return st.recursive(leaf, lambda c: st.fixed_dictionaries({}, optional={
        "type": st.just("object"), "properties": st.dictionaries(TEXT, c, max_size=3), "items": c,
        "anyOf": st.lists(c, min_size=1, max_size=2), "$defs": st.dictionaries(st.sampled_from(["a", "b"]), c, max_size=2),
        "required": st.lists(TEXT, max_size=2), "$ref": refs(trap), "additionalProperties": st.one_of(st.booleans(), c),
    }), max_leaves=12)


# ---- OpenAI chat ---------------------------------------------------------------------------

def chat_bodies(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    part = st.one_of(obj({"type": st.just("text"), "text": TEXT}),
                     obj({"type": st.just("image_url"), "image_url": obj({"url": st.sampled_from(
                         ["data:image/png;base64,iVBORw0KGgo=", "https://example.invalid/a.png", "x"])})}),
                     obj({"type": st.sampled_from(["input_audio", "file", "refusal"])}))
    call = obj({"id": TEXT, "type": st.just("function"), "function": obj({"name": TEXT, "arguments": TEXT})})
    message = st.one_of(
        obj({"role": st.sampled_from(["system", "developer", "user"]), "content": st.one_of(TEXT, st.lists(part, max_size=3))}),
        obj({"role": st.just("assistant")}, {"content": st.one_of(st.none(), TEXT), "tool_calls": st.lists(call, max_size=2)}),
        obj({"role": st.just("tool"), "tool_call_id": TEXT, "content": TEXT}),
    )
    tool = obj({"type": st.just("function"), "function": obj({"name": TEXT}, {"parameters": schemas(trap), "description": TEXT})})
    fmt = st.one_of(obj({"type": st.just("json_object")}),
                    obj({"type": st.just("json_schema"), "json_schema": obj({"name": TEXT, "schema": schemas(trap)},
                                                                           {"strict": st.booleans()})}))
    return obj({"model": st.sampled_from(ROUTES), "messages": st.lists(message, min_size=1, max_size=3)}, {
        "temperature": st.floats(0, 2), "top_p": st.floats(0, 1), "max_tokens": st.integers(-1, 50),
        "max_completion_tokens": st.integers(1, 50), "stop": st.one_of(TEXT, st.lists(TEXT, max_size=3)),
        "n": st.integers(0, 3), "stream": st.booleans(), "stream_options": obj({"include_usage": st.booleans()}),
        "tools": st.lists(tool, max_size=2), "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]),
                                                                     obj({"type": st.just("function"), "function": obj({"name": TEXT})})),
        "response_format": fmt, "seed": st.integers(), "user": TEXT, "parallel_tool_calls": st.booleans(),
        "presence_penalty": st.floats(-2, 2), "frequency_penalty": st.floats(-2, 2), "logprobs": st.booleans(),
    })


# ---- OpenAI Responses -----------------------------------------------------------------------

def responses_bodies(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    part = st.one_of(obj({"type": st.sampled_from(["input_text", "output_text"]), "text": TEXT}),
                     obj({"type": st.just("input_image")}, {"image_url": st.sampled_from(
                         ["data:image/png;base64,iVBORw0KGgo=", "https://example.invalid/a.png", "x"]), "file_id": TEXT,
                         "detail": st.sampled_from(["low", "auto"])}),
                     obj({"type": st.just("input_file")}, {"file_data": TEXT, "filename": TEXT, "file_url": TEXT}),
                     obj({"type": st.sampled_from(["refusal", "input_audio", "nope"])}))
    item = st.one_of(
        obj({"role": st.sampled_from(["user", "system", "developer", "assistant", "tool"]),
             "content": st.one_of(TEXT, st.lists(part, max_size=3))}, {"type": st.just("message")}),
        obj({"type": st.just("function_call"), "call_id": TEXT, "name": TEXT}, {"arguments": TEXT, "id": TEXT}),
        obj({"type": st.just("function_call_output"), "call_id": TEXT},
            {"output": st.one_of(TEXT, st.lists(part, max_size=2))}),
        obj({"type": st.sampled_from(["reasoning", "item_reference", "web_search_call", "x"])}),
    )
    tool = obj({"type": st.sampled_from(["function", "function", "web_search", "file_search"]), "name": TEXT},
               {"parameters": schemas(trap), "description": TEXT, "strict": st.booleans()})
    fmt = st.one_of(obj({"type": st.sampled_from(["text", "json_object", "nope"])}),
                    obj({"type": st.just("json_schema"), "name": TEXT, "schema": schemas(trap)}, {"strict": st.booleans()}))
    return obj({"model": st.sampled_from(ROUTES), "input": st.one_of(TEXT, st.lists(item, min_size=1, max_size=4))}, {
        "instructions": TEXT, "temperature": st.floats(0, 2), "top_p": st.floats(0, 1),
        "max_output_tokens": st.integers(-1, 50), "stream": st.booleans(), "store": st.booleans(),
        "tools": st.lists(tool, max_size=2), "parallel_tool_calls": st.booleans(),
        "tool_choice": st.one_of(st.sampled_from(["auto", "none", "required"]),
                                 obj({"type": st.sampled_from(["function", "web_search", "allowed_tools"])}, {"name": TEXT})),
        "text": obj({}, {"format": fmt, "verbosity": st.sampled_from(["low", "high"])}),
        "reasoning": obj({}, {"effort": st.sampled_from(["low", "high"]), "summary": st.just("auto")}),
        "include": st.lists(st.sampled_from(["reasoning.encrypted_content", "message.output_text.logprobs"]), max_size=2),
        "metadata": st.dictionaries(TEXT, TEXT, max_size=2), "user": TEXT, "truncation": st.sampled_from(["auto", "disabled"]),
        "previous_response_id": TEXT, "background": st.booleans(), "prompt_cache_key": TEXT,
    })


# ---- Anthropic Messages ---------------------------------------------------------------------

def anthropic_bodies(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    mark = st.one_of(st.just({"type": "ephemeral"}), obj({"type": st.sampled_from(["ephemeral", "x"])}, {"ttl": TEXT}), JSON)
    text_block = obj({"type": st.just("text"), "text": TEXT}, {"cache_control": mark})
    source = obj({"type": st.sampled_from(["base64", "url", "text", "file"])},
                 {"media_type": st.just("image/png"), "data": TEXT, "url": TEXT})
    block = st.one_of(
        text_block, obj({"type": st.sampled_from(["image", "document"]), "source": source}, {"cache_control": mark}),
        obj({"type": st.just("tool_result"), "tool_use_id": TEXT},
            {"content": st.one_of(TEXT, st.lists(text_block, max_size=2)), "is_error": st.booleans(), "cache_control": mark}),
        obj({"type": st.just("tool_use"), "id": TEXT, "name": TEXT, "input": JSON}, {"cache_control": mark}),
        obj({"type": st.sampled_from(["thinking", "redacted_thinking", "server_tool_use", "nope"])}),
    )
    message = obj({"role": st.sampled_from(["user", "assistant"]), "content": st.one_of(TEXT, st.lists(block, max_size=3))})
    tool = obj({"name": TEXT}, {"input_schema": schemas(trap), "description": TEXT,
                                "type": st.sampled_from(["custom", "web_search_20250305"]), "cache_control": mark})
    return obj({"model": st.sampled_from(ROUTES), "max_tokens": st.integers(1, 50),
                "messages": st.lists(message, min_size=1, max_size=3)}, {
        "system": st.one_of(TEXT, st.lists(text_block, max_size=2)), "temperature": st.floats(0, 1),
        "top_p": st.floats(0, 1), "top_k": st.integers(0, 5), "stop_sequences": st.lists(TEXT, max_size=2),
        "stream": st.booleans(), "tools": st.lists(tool, max_size=2),
        "tool_choice": obj({"type": st.sampled_from(["auto", "any", "none", "tool", "x"])},
                           {"name": TEXT, "disable_parallel_tool_use": st.booleans()}),
        "metadata": obj({}, {"user_id": TEXT}), "cache_control": mark,
        "output_config": obj({}, {"format": obj({"type": st.just("json_schema"), "schema": schemas(trap)})}),
    })


# ---- Gemini generateContent -----------------------------------------------------------------

def gemini_bodies(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    part = st.one_of(
        obj({"text": TEXT}, {"thought": st.booleans()}),
        obj({"inlineData": obj({"mimeType": st.sampled_from(["image/png", "application/pdf"]), "data": TEXT})}),
        obj({"fileData": obj({"mimeType": st.sampled_from(["image/png", "video/mp4"]), "fileUri": TEXT})}),
        obj({"functionCall": obj({"name": TEXT}, {"args": JSON, "id": TEXT})}),
        obj({"functionResponse": obj({"name": TEXT}, {"response": JSON, "id": TEXT})}),
        obj({"executableCode": JSON}),
    )
    content = obj({"parts": st.lists(part, max_size=3)}, {"role": st.sampled_from(["user", "model", "function", "x"])})
    decl = obj({"name": TEXT}, {"description": TEXT, "parametersJsonSchema": schemas(trap),
                                "parameters": obj({"type": st.sampled_from(["OBJECT", "STRING"])},
                                                  {"properties": st.dictionaries(TEXT, obj({"type": st.just("STRING")}), max_size=2),
                                                   "nullable": st.booleans(), "minItems": st.sampled_from(["1", "x", 2])})})
    config = obj({}, {"temperature": st.floats(0, 2), "topP": st.floats(0, 1), "maxOutputTokens": st.integers(1, 50),
                      "stopSequences": st.lists(TEXT, max_size=2), "candidateCount": st.integers(0, 3),
                      "responseMimeType": st.sampled_from(["application/json", "text/plain"]),
                      "responseJsonSchema": schemas(trap), "seed": st.integers()})
    return obj({"contents": st.lists(content, min_size=1, max_size=3)}, {
        "systemInstruction": obj({"parts": st.lists(obj({"text": TEXT}), max_size=2)}),
        "generationConfig": config,
        "tools": st.lists(st.one_of(obj({"functionDeclarations": st.lists(decl, max_size=2)}), obj({"googleSearch": JSON})),
                          max_size=2),
        "toolConfig": obj({"functionCallingConfig": obj({"mode": st.sampled_from(["AUTO", "ANY", "NONE", "VALIDATED"])},
                                                         {"allowedFunctionNames": st.lists(TEXT, max_size=2)})}),
    })


# ---- tasks ----------------------------------------------------------------------------------

def classify_bodies() -> st.SearchStrategy[Json]:
    return obj({"route": st.sampled_from(ROUTES), "input": st.one_of(TEXT, JSON)},
               {"labels": st.lists(st.sampled_from(["a", "A", "b", "b.", " ", "yes", "no"]), max_size=4),
                "variables": st.dictionaries(TEXT, TEXT, max_size=2)})


def extract_bodies(trap: str = "http://127.0.0.1:9") -> st.SearchStrategy[Json]:
    return obj({"route": st.sampled_from(ROUTES), "input": st.one_of(TEXT, JSON)},
               {"schema": schemas(trap), "variables": st.dictionaries(TEXT, TEXT, max_size=2)})
