"""Inbound Gemini API: a google-genai app served through the chat pivot.

The mirror of ``gemini.py``: an app that points the ``google-genai`` SDK at the sidecar
calls ``POST /{v1,v1beta}/models/{route}:generateContent`` (or ``:streamGenerateContent?alt=sse``;
google-genai 3.x uses ``/v1/`` by default). ``gemini_to_chat_request`` turns the body into
the canonical chat request; ``chat_to_gemini_response`` and ``ChatStreamToGemini`` turn the
answer back into ``GenerateContentResponse`` JSON (camelCase, as the REST API writes it);
``gemini_error`` gives the ``{"error": {"code", "message", "status"}}`` envelope.

Wire spelling: the REST API is camelCase, but the SDK keeps snake_case inside some nested
objects (``inlineData.mime_type``, ``fileData.file_uri``, ``parameters_json_schema``,
``thinkingConfig.thinking_budget``); every key is read under both spellings.

``topK`` becomes the pivot's ``top_k``: Gemini targets get it back; targets that refuse it (OpenAI,
Anthropic under 2026-10-21) drop it and name it in ``x-modelroute-dropped-params``.

Lossy spots, on purpose: ``safetySettings``, ``thinkingConfig``, ``cachedContent``
and thought signatures are dropped; thought parts are not forwarded; ``fileData`` is only
accepted for images (the pivot has no file-by-URI part); non-function tools (Google
Search, code execution) raise ``TranslationError``. Function calls without an ``id`` get
``call_<n>`` ids, and a ``functionResponse`` without one is matched by name to the oldest
unanswered call.
"""

from __future__ import annotations

import json
from typing import Any

from modelroute.sidecar.translate import chat, shape
from modelroute.sidecar.translate.errors import StreamError, TranslationError

Json = dict[str, Any]

FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP", "function_call": "STOP",
                  "content_filter": "SAFETY"}


def _get(d: Json, camel: str, snake: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


def route_of(model_path: str) -> str:
    """``models/classify`` or ``classify`` (the path segment before ``:``) -> ``classify``."""
    return model_path[7:] if model_path.startswith("models/") else model_path


# ---- request -------------------------------------------------------------------------


def gemini_to_chat_request(body: Json, *, route: str, stream: bool = False) -> Json:
    """A ``generateContent`` body -> canonical chat request for ``route`` (from the URL path).

    ``stream`` is True for ``:streamGenerateContent``; the chat request then asks for the
    usage chunk (Gemini reports ``usageMetadata`` on the last chunk).
    Raises ``TranslationError`` (a 400 for the app) for what the pivot cannot express.
    """
    body = shape.obj(body, "request body")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise TranslationError("contents must be a non-empty list")
    messages: list[Json] = []
    system = _get(body, "systemInstruction", "system_instruction")
    if system:
        system = shape.obj(system, "systemInstruction")
        text = _parts_text(system.get("parts"), "systemInstruction.parts")
        if text:
            messages.append({"role": "system", "content": text})
    calls = _Calls()
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        content = shape.obj(content, where)
        role = content.get("role") or "user"
        parts = shape.array(content.get("parts") or [], f"{where}.parts")
        parts = [shape.obj(p, f"{where}.parts[{j}]") for j, p in enumerate(parts)]
        if role == "model":
            messages.append(_model_message(parts, calls, f"{where}.parts"))
        elif role in ("user", "function", "tool"):
            turn = _user_messages(parts, calls, f"{where}.parts")
            if not turn:  # no parts, or only thoughts: Gemini refuses it, and chat targets refuse messages []
                raise TranslationError(f"{where}.parts: contents.parts must not be empty")
            messages.extend(turn)
        else:
            raise TranslationError(f"{where}.role must be user or model, not {role!r}")

    out: Json = {"model": route, "messages": messages}
    config = _get(body, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        raise TranslationError("generationConfig must be an object")
    _apply_config(config, out)
    tools = _declarations(body.get("tools"))
    tool_config = _get(body, "toolConfig", "tool_config")
    if tools:
        _apply_tool_config(tool_config, tools, out)
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _parts_text(parts: Any, where: str) -> str:
    if parts is None:
        return ""
    texts = []
    for i, p in enumerate(shape.array(parts, where)):
        p = shape.obj(p, f"{where}[{i}]")
        if not p.get("thought"):
            texts.append(shape.text(p, "text", f"{where}[{i}]"))
    return "".join(texts)


class _Calls:
    """Function call ids seen so far, to give ``functionResponse`` parts a ``tool_call_id``."""

    def __init__(self) -> None:
        self.count = 0
        self.open: list[tuple[str, str]] = []   # (id, name), unanswered, oldest first

    def add(self, fc: Json, where: str) -> str:
        call_id = shape.text(fc, "id", where) or f"call_{self.count}"
        self.count += 1
        self.open.append((call_id, shape.text(fc, "name", where)))
        return call_id

    def answer(self, fr: Json, where: str) -> str:
        wanted = shape.text(fr, "id", where)
        name = shape.text(fr, "name", where)
        for i, (call_id, call_name) in enumerate(self.open):
            if (wanted and call_id == wanted) or (not wanted and call_name == name):
                del self.open[i]
                return call_id
        if wanted:
            return str(wanted)
        raise TranslationError(f"functionResponse {name!r} answers no earlier functionCall")


def _model_message(parts: list[Json], calls: _Calls, where: str) -> Json:
    texts: list[str] = []
    tool_calls: list[Json] = []
    for i, part in enumerate(parts):
        fc = _get(part, "functionCall", "function_call")
        if fc is not None:
            at = f"{where}[{i}].functionCall"
            fc = shape.obj(fc, at)
            tool_calls.append(chat.tool_call(calls.add(fc, at), shape.text(fc, "name", at), chat.dumps(fc.get("args") or {})))
        elif part.get("text") is not None and not part.get("thought"):
            texts.append(shape.text(part, "text", f"{where}[{i}]"))
    message: Json = {"role": "assistant", "content": "".join(texts) if texts or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return message


def _user_messages(parts: list[Json], calls: _Calls, where: str) -> list[Json]:
    tools: list[Json] = []
    chat_parts: list[Json] = []
    for i, part in enumerate(parts):
        at = f"{where}[{i}]"
        fr = _get(part, "functionResponse", "function_response")
        inline = _get(part, "inlineData", "inline_data")
        file = _get(part, "fileData", "file_data")
        if fr is not None:
            fr = shape.obj(fr, f"{at}.functionResponse")
            tools.append({"role": "tool", "tool_call_id": calls.answer(fr, f"{at}.functionResponse"),
                          "content": _response_text(fr.get("response"))})
        elif part.get("text") is not None:
            text = shape.text(part, "text", at)
            if not part.get("thought"):
                chat_parts.append({"type": "text", "text": text})
        elif inline is not None:
            inline = shape.obj(inline, f"{at}.inlineData")
            mime = _mime(inline, f"{at}.inlineData") or "application/octet-stream"
            url = f"data:{mime};base64,{shape.text(inline, 'data', f'{at}.inlineData')}"
            chat_parts.append({"type": "image_url", "image_url": {"url": url}} if mime.startswith("image/")
                              else {"type": "file", "file": {"file_data": url}})
        elif file is not None:
            file = shape.obj(file, f"{at}.fileData")
            if not _mime(file, f"{at}.fileData").startswith("image/"):
                raise TranslationError(f"{at}.fileData: fileData parts are only supported for images")
            uri = _get(file, "fileUri", "file_uri")
            if uri is not None and not isinstance(uri, str):
                raise TranslationError(f"{at}.fileData.fileUri must be a string, not {shape.kind(uri)}")
            chat_parts.append({"type": "image_url", "image_url": {"url": uri or ""}})
        else:
            raise TranslationError(f"{at}: unsupported part with keys {sorted(part)}")
    out = tools
    if chat_parts:
        if len(chat_parts) == 1 and chat_parts[0]["type"] == "text":
            out.append({"role": "user", "content": chat_parts[0]["text"]})
        else:
            out.append({"role": "user", "content": chat_parts})
    return out


def _mime(d: Json, where: str) -> str:
    mime = _get(d, "mimeType", "mime_type")
    if mime is not None and not isinstance(mime, str):
        raise TranslationError(f"{where}.mimeType must be a string, not {shape.kind(mime)}")
    return mime or ""


def _response_text(response: Any) -> str:
    """A functionResponse's ``response`` as tool message text: ``{"output": s}`` -> s, ``{"error": e}`` (a failed
    call, as Gemini reads it) -> ``Error: e`` (``chat.tool_error``), else JSON."""
    if isinstance(response, dict) and set(response) <= {"output"} and isinstance(response.get("output"), str):
        return str(response["output"])
    if isinstance(response, dict) and "error" in response and "output" not in response:
        error = response["error"]
        rest = {k: v for k, v in response.items() if k != "error"}
        detail = error if isinstance(error, str) and not rest else chat.dumps(response)
        return chat.TOOL_ERROR + detail
    return chat.dumps(response if response is not None else {})


def _apply_config(config: Json, out: Json) -> None:
    for camel, snake, dst in (("temperature", "temperature", "temperature"), ("topP", "top_p", "top_p"), ("topK", "top_k", "top_k"),
                              ("maxOutputTokens", "max_output_tokens", "max_tokens"), ("seed", "seed", "seed"),
                              ("presencePenalty", "presence_penalty", "presence_penalty"),
                              ("frequencyPenalty", "frequency_penalty", "frequency_penalty")):
        value = _get(config, camel, snake)
        if value is not None:
            out[dst] = value
    stops = _get(config, "stopSequences", "stop_sequences")
    if stops:
        stops = shape.array(stops, "generationConfig.stopSequences")
        if not all(isinstance(x, str) for x in stops):
            raise TranslationError("generationConfig.stopSequences must be an array of strings")
        out["stop"] = list(stops)
    n = _get(config, "candidateCount", "candidate_count")
    if isinstance(n, int) and n > 1:
        out["n"] = n
    schema = _get(config, "responseJsonSchema", "response_json_schema")
    if schema is None:
        legacy = _get(config, "responseSchema", "response_schema")
        schema = openapi_to_json_schema(legacy) if isinstance(legacy, dict) else None
    if isinstance(schema, dict):
        # Not strict: Gemini schemas need not meet OpenAI's strict-mode rules (all required, no extras).
        out["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": False}}
    elif _get(config, "responseMimeType", "response_mime_type") == "application/json":
        out["response_format"] = {"type": "json_object"}


def openapi_to_json_schema(schema: Json) -> Json:
    """Gemini's OpenAPI-subset ``Schema`` (``type: OBJECT``, ``nullable``) -> JSON Schema."""
    out: Json = {}
    for raw_key, value in schema.items():
        key = _CAMEL.get(raw_key, raw_key)
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {k: openapi_to_json_schema(v) for k, v in value.items() if isinstance(v, dict)}
        elif key == "items" and isinstance(value, dict):
            out["items"] = openapi_to_json_schema(value)
        elif key == "anyOf" and isinstance(value, list):
            out["anyOf"] = [openapi_to_json_schema(v) for v in value if isinstance(v, dict)]
        elif key in ("propertyOrdering", "nullable", "example"):
            continue
        elif key in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
            try:
                out[key] = int(value)  # the OpenAPI Schema writes these int64s as strings
            except (TypeError, ValueError):
                raise TranslationError(f"schema {key} must be an integer, not {value!r}") from None
        else:
            out[key] = value
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


_CAMEL = {"min_items": "minItems", "max_items": "maxItems", "min_length": "minLength", "max_length": "maxLength",
          "any_of": "anyOf", "min_properties": "minProperties", "max_properties": "maxProperties",
          "property_ordering": "propertyOrdering"}


def _declarations(tools: Any) -> list[Json]:
    if not tools:
        return []
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list")
    out: list[Json] = []
    for i, tool in enumerate(tools):
        tool = shape.obj(tool, f"tools[{i}]")
        decls = _get(tool, "functionDeclarations", "function_declarations")
        if decls is None:
            raise TranslationError(f"tools[{i}]: only functionDeclarations tools are supported, not {sorted(tool)}")
        for j, d in enumerate(shape.array(decls, f"tools[{i}].functionDeclarations")):
            at = f"tools[{i}].functionDeclarations[{j}]"
            d = shape.obj(d, at)
            params = _get(d, "parametersJsonSchema", "parameters_json_schema")
            if params is None and isinstance(d.get("parameters"), dict):
                params = openapi_to_json_schema(d["parameters"])
            if params is not None and not isinstance(params, dict):
                raise TranslationError(f"{at}.parametersJsonSchema must be an object, not {shape.kind(params)}")
            fn: Json = {"name": shape.text(d, "name", at), "parameters": params or {"type": "object", "properties": {}}}
            description = shape.text(d, "description", at)
            if description:
                fn["description"] = description
            out.append({"type": "function", "function": fn})
    return out


def _apply_tool_config(tool_config: Any, tools: list[Json], out: Json) -> None:
    config = _get(tool_config, "functionCallingConfig", "function_calling_config") if isinstance(tool_config, dict) else None
    if not isinstance(config, dict):
        config = {}
    mode = config.get("mode")
    allowed = _get(config, "allowedFunctionNames", "allowed_function_names")
    if allowed is not None and not isinstance(allowed, list):
        raise TranslationError(f"toolConfig.functionCallingConfig.allowedFunctionNames must be an array, not {shape.kind(allowed)}")
    if mode in ("ANY", "VALIDATED") and allowed:
        # Only the allowed functions may be called: offer only those.
        tools = [t for t in tools if t["function"]["name"] in allowed] or tools
    out["tools"] = tools
    if mode == "NONE":
        out["tool_choice"] = "none"
    elif mode == "ANY":
        out["tool_choice"] = ({"type": "function", "function": {"name": tools[0]["function"]["name"]}}
                              if len(tools) == 1 else "required")
    elif mode == "AUTO":
        out["tool_choice"] = "auto"


def count_tokens_response(total_tokens: int) -> Json:
    """Body of ``:countTokens`` (the SDK's ``models.count_tokens``)."""
    return {"totalTokens": total_tokens}


# ---- response ------------------------------------------------------------------------


def usage_to_gemini(usage: Json | None) -> Json | None:
    """OpenAI usage -> ``usageMetadata`` (reasoning tokens as ``thoughtsTokenCount``)."""
    if not usage:
        return None
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    out: Json = {"promptTokenCount": prompt, "candidatesTokenCount": completion - reasoning,
                 "totalTokenCount": prompt + completion}
    if reasoning:
        out["thoughtsTokenCount"] = reasoning
    if cached:
        out["cachedContentTokenCount"] = cached
    return out


def _parts(message: Json) -> list[Json]:
    parts: list[Json] = []
    text = chat.text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        fc: Json = {"name": fn.get("name") or "", "args": chat.parse_arguments(fn.get("arguments"))}
        if call.get("id"):
            fc["id"] = call["id"]
        parts.append({"functionCall": fc})
    return parts


def chat_to_gemini_response(response: Json, *, model: str | None = None) -> Json:
    """A ``chat.completion`` dict -> ``GenerateContentResponse`` JSON (camelCase).

    Every choice becomes a candidate; tool calls become ``functionCall`` parts that keep
    the call id (the SDK echoes it in ``functionResponse.id``). ``model`` defaults to the
    completion's model and is reported as ``modelVersion``.
    """
    candidates: list[Json] = []
    for i, c in enumerate(response.get("choices") or ()):
        parts = _parts(c.get("message") or {})
        candidates.append({"content": {"role": "model", "parts": parts or [{"text": ""}]},
                           "finishReason": FINISH_REASONS.get(c.get("finish_reason") or "stop", "STOP"),
                           "index": c.get("index", i)})
    out: Json = {"candidates": candidates}
    usage = usage_to_gemini(response.get("usage"))
    if usage is not None:
        out["usageMetadata"] = usage
    out["modelVersion"] = model or response.get("model") or ""
    out["responseId"] = str(response.get("id") or "")
    return out


# ---- stream --------------------------------------------------------------------------


def gemini_sse(chunk: Json) -> bytes:
    """One chunk as an ``alt=sse`` frame."""
    return f"data: {json.dumps(chunk, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class ChatStreamToGemini:
    """Canonical chat chunks -> ``GenerateContentResponse`` chunks for ``streamGenerateContent``.

    Text is forwarded as it comes. Gemini sends function calls whole, so tool call
    fragments are buffered and sent as ``functionCall`` parts with the last chunk, which
    also carries ``finishReason`` and ``usageMetadata`` (emitted when the usage chunk
    arrives, or by ``finish()``). ``finish()`` raises ``StreamError`` if no finish reason
    came: the server must then end the app's stream with an error, not a clean end.
    """

    __slots__ = ("_calls", "_done", "_reasons", "_usage", "id", "model")

    def __init__(self, *, model: str, id: str) -> None:
        self.model = model
        self.id = id
        self._calls: dict[int, dict[int, dict[str, str]]] = {}   # candidate -> tool call index -> {id, name, arguments}
        self._reasons: dict[int, str] = {}
        self._usage: Json | None = None
        self._done = False

    def _wrap(self, candidates: list[Json], usage: Json | None = None) -> Json:
        out: Json = {"candidates": candidates}
        if usage is not None:
            out["usageMetadata"] = usage
        out["modelVersion"] = self.model
        out["responseId"] = self.id
        return out

    def feed(self, chunk: Json) -> list[Json]:
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        candidates: list[Json] = []
        for c in chunk.get("choices") or ():
            index = c.get("index", 0)
            delta = c.get("delta") or {}
            text = delta.get("content")
            if text:
                candidates.append({"content": {"role": "model", "parts": [{"text": text}]}, "index": index})
            for call in delta.get("tool_calls") or ():
                slot: dict[str, str] = self._calls.setdefault(index, {}).setdefault(call.get("index", 0), {"id": "", "name": "", "arguments": ""})
                fn = call.get("function") or {}
                if call.get("id"):
                    slot["id"] = call["id"]
                if fn.get("name"):
                    slot["name"] = fn["name"]
                slot["arguments"] += fn.get("arguments") or ""
            if c.get("finish_reason"):
                self._reasons[index] = c["finish_reason"]
        out = [self._wrap(candidates)] if candidates else []
        if self._reasons and self._usage is not None and not self._done:
            out.append(self._end())
        return out

    def _end(self) -> Json:
        self._done = True
        candidates: list[Json] = []
        for index in sorted(self._reasons):
            parts: list[Json] = []
            for call in (self._calls.get(index) or {}).values():
                fc: Json = {"name": call["name"], "args": chat.parse_arguments(call["arguments"])}
                if call["id"]:
                    fc["id"] = call["id"]
                parts.append({"functionCall": fc})
            candidates.append({"content": {"role": "model", "parts": parts or [{"text": ""}]},
                               "finishReason": FINISH_REASONS.get(self._reasons[index], "STOP"), "index": index})
        return self._wrap(candidates, usage_to_gemini(self._usage) or {"promptTokenCount": 0, "totalTokenCount": 0})

    def finish(self) -> list[Json]:
        if self._done:
            return []
        if not self._reasons:
            raise StreamError("stream ended before a finish_reason", error_type="incomplete_stream")
        return [self._end()]


# ---- errors --------------------------------------------------------------------------

_STATUSES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
             409: "ABORTED", 413: "INVALID_ARGUMENT", 422: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED",
             499: "CANCELLED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 502: "UNAVAILABLE", 503: "UNAVAILABLE",
             504: "DEADLINE_EXCEEDED"}


def gemini_status(status: int) -> str:
    """The google.rpc status name Gemini uses for an HTTP status."""
    return _STATUSES.get(status, "INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL")


def gemini_error(status: int, message: str) -> Json:
    """The Gemini error envelope ``{"error": {"code", "message", "status"}}``."""
    return {"error": {"code": status, "message": message, "status": gemini_status(status)}}


def gemini_error_from_openai(status: int, body: Json) -> Json:
    """An OpenAI error envelope (what the sidecar builds) re-dressed for a Gemini app."""
    err = body.get("error")
    message = err.get("message") if isinstance(err, dict) else None
    return gemini_error(status, str(message or "error"))


def error_chunk(exc: BaseException) -> Json:
    """What ends an app's ``alt=sse`` stream after a mid-stream failure: an error envelope.

    The google-genai SDK raises ``APIError`` for a stream line holding ``{"error": ...}``.
    """
    message = exc.message if isinstance(exc, StreamError) else (str(exc) or "upstream stream failed")
    retryable = isinstance(exc, StreamError) and exc.retryable
    return gemini_error(503 if retryable else 500, message)
