"""Inbound OpenAI Responses API: ``POST /v1/responses`` served through the chat pivot.

The API the openai SDK now recommends (``client.responses.create``) and the default model of
the openai-agents SDK. ``responses_to_chat_request`` turns a Responses body into the
canonical chat request (``model`` = the route), whatever provider the route then picks;
``chat_to_responses_response`` turns the ``chat.completion`` back into a ``Response`` object,
and ``ChatStreamToResponses`` turns chat chunks into the typed stream events
(``responses_sse`` frames them). ``response_echo`` holds the request fields a ``Response``
repeats (instructions, tools, text format, ...).

The sidecar keeps no state: nothing is stored, every ``Response`` says ``store: false``
(``store: true``, the API's default, is accepted and not honoured, as the object says), and
``previous_response_id`` / ``conversation`` / ``item_reference`` are refused with a 400 that
names the stateless way (send the whole conversation as ``input`` items). Every field outside
the supported subset is refused by name (``UNSUPPORTED``), never silently dropped.

Lossy spots, on purpose: ``reasoning`` items in the input are dropped (no provider behind the
pivot can take them back); images inside a ``function_call_output`` are dropped (tool messages
are text in the pivot); ``metadata`` is echoed, not forwarded; ``reasoning.effort`` becomes
``reasoning_effort`` (only OpenAI targets read it). No reasoning items are ever produced.
"""

from __future__ import annotations

import json
from typing import Any

from modelroute.sidecar.translate import chat, shape
from modelroute.sidecar.translate.errors import TranslationError

Json = dict[str, Any]

_STATELESS = "modelroute keeps no responses: send the whole conversation as `input` items (earlier output items included)"

# Top-level fields that are refused, with the reason given to the app.
UNSUPPORTED: dict[str, str] = {
    "previous_response_id": _STATELESS,
    "conversation": _STATELESS,
    "background": "background responses need a stored response to poll; call without background",
    "prompt": "stored prompt templates are not available through modelroute; send instructions and input",
    "max_tool_calls": "not supported through modelroute",
    "top_logprobs": "logprobs are not supported through modelroute",
    "context_management": "server-side context management needs stored state; not supported through modelroute",
}
# Refused only when set to something other than these values.
_HARMLESS = {"background": (False,), "truncation": ("disabled",)}
_SUPPORTED = frozenset({
    "model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools", "tool_choice",
    "parallel_tool_calls", "text", "stream", "stream_options", "metadata", "user", "safety_identifier", "store",
    "include", "reasoning", "service_tier", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options",
    "truncation",
})
# include values that are honoured vacuously (no reasoning item is ever produced).
_INCLUDABLE = frozenset({"reasoning.encrypted_content"})
_PASS_THROUGH = ("service_tier", "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options")


def _fail(message: str, param: str | None) -> TranslationError:
    return TranslationError(message, param=param)


# ---- request -------------------------------------------------------------------------


def responses_to_chat_request(body: Any) -> Json:
    """A ``responses.create`` body (wire JSON) -> canonical chat request.

    Raises ``TranslationError`` (a 400 naming the field in ``param``) for a body of the wrong
    shape, for a field outside the supported subset and for what the pivot cannot express.
    """
    body = shape.obj(body, "request body")
    _check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _fail("model is required (a non-empty string: the route name)", "model")
    messages: list[Json] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _fail(f"instructions must be a string, not {shape.kind(instructions)}", "instructions")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    raw = body.get("input")
    if isinstance(raw, str):
        if not raw:
            raise _fail("input must not be empty", "input")
        messages.append({"role": "user", "content": raw})
    elif isinstance(raw, list) and raw:
        for i, item in enumerate(raw):
            _input_item(item, f"input[{i}]", messages)
    else:
        raise _fail("input is required: a string or a non-empty array of input items", "input")

    out: Json = {"model": model, "messages": messages}
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _fail("max_output_tokens must be a positive integer", "max_output_tokens")
        out["max_completion_tokens"] = limit
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise _fail(f"{key} must be a number, not {shape.kind(value)}", key)
            out[key] = value
    tools = body.get("tools")
    if tools:
        out["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(_array(tools, "tools"))]
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)
    parallel = body.get("parallel_tool_calls")
    if parallel is not None:
        if not isinstance(parallel, bool):
            raise _fail("parallel_tool_calls must be a boolean", "parallel_tool_calls")
        if tools:
            out["parallel_tool_calls"] = parallel
    _text_options(body, out)
    _nested(body, "reasoning", "effort", out, "reasoning_effort")
    user = body.get("safety_identifier") or body.get("user")
    if user is not None:
        if not isinstance(user, str):
            raise _fail("user must be a string", "user")
        out["user"] = user
    for key in _PASS_THROUGH:
        if body.get(key) is not None:
            out[key] = body[key]
    metadata = body.get("metadata")
    if metadata is not None:
        shape.obj(metadata, "metadata")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _fail("stream must be a boolean", "stream")
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _check_fields(body: Json) -> None:
    for key, value in body.items():
        if key in UNSUPPORTED and not (value is None or value in _HARMLESS.get(key, ())):
            raise _fail(f"{key} is not supported: {UNSUPPORTED[key]}", key)
        if key not in _SUPPORTED and key not in UNSUPPORTED:
            raise _fail(f"unknown field {key!r} (modelroute serves the Responses API fields listed in docs/responses-api.md)", key)
    truncation = body.get("truncation")
    if truncation is not None and truncation not in _HARMLESS["truncation"]:
        raise _fail("truncation must be 'disabled': modelroute does not drop input items to fit the context", "truncation")
    store = body.get("store")
    if store is not None and not isinstance(store, bool):
        raise _fail("store must be a boolean", "store")
    include = body.get("include")
    if include is not None:
        for i, value in enumerate(_array(include, "include")):
            if not isinstance(value, str) or value not in _INCLUDABLE:
                raise _fail(f"include[{i}]: {value!r} is not supported through modelroute", f"include[{i}]")


def _array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"{where} must be an array, not {shape.kind(value)}", where)
    return value


def _obj(value: Any, where: str) -> Json:
    if not isinstance(value, dict):
        raise _fail(f"{where} must be an object, not {shape.kind(value)}", where)
    return value


def _str(d: Json, key: str, where: str, *, required: bool = False) -> str:
    value = d.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        what = "a non-empty string" if required else "a string"
        raise _fail(f"{shape.at(where, key)} must be {what}, not {shape.kind(value)}", shape.at(where, key))
    return value


def _input_item(item: Any, where: str, out: list[Json]) -> None:
    item = _obj(item, where)
    kind = item.get("type")
    if kind is None and "role" in item:
        kind = "message"
    if kind == "message":
        _message(item, where, out)
    elif kind == "function_call":
        call = chat.tool_call(_str(item, "call_id", where, required=True), _str(item, "name", where, required=True),
                              _str(item, "arguments", where) or "{}")
        last = out[-1] if out else None
        if last is not None and last["role"] == "assistant":  # parallel calls, or text then calls: one turn
            last.setdefault("tool_calls", []).append(call)
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        out.append({"role": "tool", "tool_call_id": _str(item, "call_id", where, required=True),
                    "content": _output_text(item.get("output"), f"{where}.output")})
    elif kind == "reasoning":
        return  # a previous turn's reasoning: nothing behind the pivot can take it back
    elif kind == "item_reference":
        raise _fail(f"{where}: item_reference is not supported: {_STATELESS}", f"{where}.type")
    else:
        raise _fail(f"{where}: input item type {kind!r} is not supported through modelroute "
                    "(message, function_call, function_call_output and reasoning are)", f"{where}.type")


def _message(item: Json, where: str, out: list[Json]) -> None:
    role = item.get("role")
    content = item.get("content")
    if role in ("system", "developer"):
        out.append({"role": "system", "content": _plain_text(content, where)})
    elif role == "user":
        out.append({"role": "user", "content": _user_content(content, where)})
    elif role == "assistant":
        out.append({"role": "assistant", "content": _plain_text(content, where)})
    else:
        raise _fail(f"{where}.role must be user, assistant, system or developer, not {role!r}", f"{where}.role")


def _parts(content: Any, where: str) -> list[Json]:
    return [_obj(p, f"{where}.content[{i}]") for i, p in enumerate(_array(content, f"{where}.content"))]


def _plain_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(_parts(content, where)):
        at = f"{where}.content[{i}]"
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            texts.append(_str(part, "text", at))
        elif kind == "refusal":
            texts.append(_str(part, "refusal", at))
        else:
            raise _fail(f"{at}: content type {kind!r} is not supported in this message (text only)", f"{at}.type")
    return "".join(texts)


# input part type -> (its source field, its optional field, chat part type, chat source key, why the source is required)
_MEDIA = {
    "input_image": ("image_url", "detail", "image_url", "url", "file_id needs the Files API, which modelroute does not serve"),
    "input_file": ("file_data", "filename", "file", "file_data", "file_id and file_url are not supported through modelroute"),
}


def _user_content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    parts: list[Json] = []
    for i, part in enumerate(_parts(content, where)):
        at = f"{where}.content[{i}]"
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": _str(part, "text", at)})
        elif isinstance(kind, str) and kind in _MEDIA:
            source, extra, chat_type, chat_key, why = _MEDIA[kind]
            value = _str(part, source, at)
            if not value:
                raise _fail(f"{at}: {kind} needs {source} ({why})", f"{at}.{source}")
            media: Json = {chat_key: value}
            if part.get(extra) is not None:
                media[extra] = _str(part, extra, at)
            parts.append({"type": chat_type, chat_type: media})
        else:
            raise _fail(f"{at}: content type {kind!r} is not supported through modelroute", f"{at}.type")
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _output_text(output: Any, where: str) -> str:
    if isinstance(output, str):
        return output
    texts = []
    for i, part in enumerate(_array(output, where)):
        part = _obj(part, f"{where}[{i}]")
        if part.get("type") in ("input_text", "output_text"):
            texts.append(_str(part, "text", f"{where}[{i}]"))
    return "".join(texts)


def _tool(tool: Any, where: str) -> Json:
    tool = _obj(tool, where)
    kind = tool.get("type")
    if kind != "function":
        raise _fail(f"{where}: tool type {kind!r} is not supported through modelroute (function tools are)", f"{where}.type")
    fn: Json = {"name": _str(tool, "name", where, required=True)}
    description = _str(tool, "description", where)
    if description:
        fn["description"] = description
    parameters = tool.get("parameters")
    fn["parameters"] = _obj(parameters, f"{where}.parameters") if parameters is not None else {"type": "object", "properties": {}}
    strict = tool.get("strict")
    if isinstance(strict, bool):
        fn["strict"] = strict
    return {"type": "function", "function": fn}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": _str(choice, "name", "tool_choice", required=True)}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise _fail(f"tool_choice {kind!r} is not supported through modelroute (auto, none, required or a function)",
                "tool_choice")


def _nested(body: Json, field: str, key: str, out: Json, out_key: str) -> Json | None:
    """``body[field]`` as an object (None when absent); its string ``key``, when set, becomes ``out[out_key]``."""
    value = body.get(field)
    if value is None:
        return None
    value = _obj(value, field)
    if value.get(key) is not None:
        out[out_key] = _str(value, key, field)
    return value


def _text_options(body: Json, out: Json) -> None:
    text = _nested(body, "text", "verbosity", out, "verbosity")
    if text is None:
        return
    fmt = text.get("format")
    if fmt is None:
        return
    fmt = _obj(fmt, "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        out["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        spec: Json = {"name": _str(fmt, "name", "text.format", required=True),
                      "schema": _obj(fmt.get("schema"), "text.format.schema")}
        if fmt.get("description") is not None:
            spec["description"] = _str(fmt, "description", "text.format")
        if isinstance(fmt.get("strict"), bool):
            spec["strict"] = fmt["strict"]
        out["response_format"] = {"type": "json_schema", "json_schema": spec}
    else:
        raise _fail(f"text.format.type must be text, json_object or json_schema, not {kind!r}", "text.format.type")


def response_echo(body: Json) -> Json:
    """The request fields a ``Response`` repeats; ``store`` is always false (nothing is kept)."""
    text = body.get("text")
    text = text if isinstance(text, dict) else {}
    return {
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {}, "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None, "reasoning": body.get("reasoning"), "store": False,
        "temperature": body.get("temperature"), "text": {"format": {"type": "text"}, **text},
        "tool_choice": body.get("tool_choice") or "auto", "tools": body.get("tools") or [],
        "top_p": body.get("top_p"), "truncation": "disabled", "user": body.get("user"),
        "background": False, "service_tier": body.get("service_tier"),
    }


# ---- response ------------------------------------------------------------------------


def response_id(chat_id: str) -> str:
    return chat_id if chat_id.startswith("resp_") else f"resp_{chat_id}"


def usage_to_responses(usage: Json | None) -> Json | None:
    """OpenAI chat usage -> Responses usage (``input_tokens`` includes cache reads and writes, as OpenAI counts)."""
    if not usage:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    details = usage.get("prompt_tokens_details") or {}
    cache = {"cached_tokens": details.get("cached_tokens") or 0, "cache_write_tokens": details.get("cache_write_tokens") or 0}
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {"input_tokens": prompt, "input_tokens_details": cache, "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": usage.get("total_tokens") or prompt + completion}


_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _status(finish_reason: str | None) -> tuple[str, Json | None]:
    reason = _INCOMPLETE.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def _response(id: str, created: Any, model: str, status: str, output: list[Json], usage: Json | None,
              echo: Json | None, *, incomplete: Json | None = None, error: Json | None = None) -> Json:
    return {"id": id, "object": "response", "created_at": created if isinstance(created, (int, float)) else 0,
            "status": status, "error": error, "incomplete_details": incomplete, "model": model, "output": output,
            "usage": usage, **(echo if echo is not None else response_echo({}))}


def _message_item(id: str, text: str, status: str, refusal: str | None = None) -> Json:
    content: list[Json] = []
    if text or refusal is None:
        content.append({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"type": "message", "id": id, "status": status, "role": "assistant", "content": content}


def _call_item(call_id: str, name: str, arguments: str, status: str) -> Json:
    return {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def chat_to_responses_response(completion: Json, *, echo: Json | None = None) -> Json:
    """A ``chat.completion`` dict -> a ``Response`` object (choice 0).

    Text (or a refusal) becomes one ``message`` item, each tool call a ``function_call`` item
    whose ``call_id`` is the chat tool call id, so the app's ``function_call_output`` maps back.
    """
    choices = completion.get("choices") or [{}]
    first = choices[0]
    message = first.get("message") or {}
    chat_id = str(completion.get("id") or "")
    status, incomplete = _status(first.get("finish_reason"))
    output: list[Json] = []
    text = chat.text_of(message.get("content"))
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    if text or refusal:
        output.append(_message_item(f"msg_{chat_id}", text, status, refusal))
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        output.append(_call_item(str(call.get("id") or ""), str(fn.get("name") or ""), str(fn.get("arguments") or ""),
                                 "completed"))
    return _response(response_id(chat_id), completion.get("created"), str(completion.get("model") or ""), status, output,
                     usage_to_responses(completion.get("usage")), echo, incomplete=incomplete)


# ---- stream --------------------------------------------------------------------------


def responses_sse(event: Json) -> bytes:
    """One event as an SSE frame: ``event: <type>`` and ``data: <json>``."""
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


class ChatStreamToResponses(chat.ChunksToEvents):
    """Canonical chat chunks -> Responses stream events (dicts; ``responses_sse`` frames them).

    ``response.created`` and ``response.in_progress`` come with the first chunk. Text opens a
    ``message`` item (``output_item.added``, ``content_part.added``, ``output_text.delta``...),
    closed when a tool call starts; each tool call is a ``function_call`` item that stays open
    (``function_call_arguments.delta``) until the finish reason, so interleaved parallel calls
    stay whole. The finish reason plus the usage chunk (the canonical request asks for it) end
    the stream with ``response.completed`` (``response.incomplete`` for a token limit).
    ``finish()`` raises ``StreamError`` when no finish reason came; ``failed()`` gives the
    ``error`` and ``response.failed`` events that end a broken stream: never a clean completion.
    """

    __slots__ = ("_calls", "_created", "_echo", "_items", "_seq", "_text", "id", "model")

    def __init__(self, *, model: str, id: str, echo: Json | None = None) -> None:
        super().__init__()
        self.model = model
        self.id = response_id(id)
        self._echo = echo
        self._created: Any = 0
        self._seq = 0
        self._items: list[Json] = []              # output items in order (open ones have status in_progress)
        self._text: tuple[int, Json] | None = None  # (output index, item) of the open message item
        self._calls: dict[int, tuple[int, Json]] = {}  # chat tool call index -> (output index, item)

    def _event(self, type_: str, **fields: Any) -> Json:
        event = {"type": type_, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _snapshot(self, status: str, **kw: Any) -> Json:
        return _response(self.id, self._created, self.model, status, [dict(i) for i in self._items],
                         usage_to_responses(self._usage) if status != "in_progress" else None, self._echo, **kw)

    def _start(self, chunk: Json, out: list[Json]) -> None:
        self.model = self.model or str(chunk.get("model") or "")
        self._created = chunk.get("created") or 0
        out.append(self._event("response.created", response=self._snapshot("in_progress")))
        out.append(self._event("response.in_progress", response=self._snapshot("in_progress")))

    def _add(self, item: Json, out: list[Json]) -> int:
        index = len(self._items)
        self._items.append(item)
        out.append(self._event("response.output_item.added", output_index=index, item=dict(item, content=[])
                               if item["type"] == "message" else dict(item)))
        return index

    def _text_delta(self, text: str, out: list[Json]) -> None:
        if self._text is None:
            n = sum(1 for i in self._items if i["type"] == "message")
            item = _message_item(f"msg_{self.id[5:]}" + (f"_{n}" if n else ""), "", "in_progress")
            index = self._add(item, out)
            out.append(self._event("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                                   part={"type": "output_text", "text": "", "annotations": [], "logprobs": []}))
            self._text = (index, item)
        index, item = self._text
        item["content"][0]["text"] += text
        out.append(self._event("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0,
                               delta=text, logprobs=[]))

    def _close_text(self, out: list[Json]) -> None:
        if self._text is None:
            return
        index, item = self._text
        self._text = None
        item["status"] = "completed"
        part = item["content"][0]
        out.append(self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                               text=part["text"], logprobs=[]))
        out.append(self._event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                               part=dict(part)))
        out.append(self._event("response.output_item.done", output_index=index, item=json.loads(json.dumps(item))))

    def _tool_delta(self, call: Json, out: list[Json]) -> None:
        key = call.get("index", 0)
        fn = call.get("function") or {}
        if key not in self._calls:
            self._close_text(out)
            call_id = str(call.get("id") or f"call_{self.id[5:]}_{key}")
            item = _call_item(call_id, str(fn.get("name") or ""), "", "in_progress")
            self._calls[key] = (self._add(item, out), item)
        index, item = self._calls[key]
        if fn.get("name") and not item["name"]:
            item["name"] = fn["name"]
        args = fn.get("arguments")
        if args:
            item["arguments"] += args
            out.append(self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                                   delta=args))

    def _close_all(self, out: list[Json]) -> None:
        self._close_text(out)
        for index, item in sorted(self._calls.values(), key=lambda c: c[0]):
            if item["status"] != "completed":
                item["status"] = "completed"
                out.append(self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                       name=item["name"], arguments=item["arguments"]))
                out.append(self._event("response.output_item.done", output_index=index, item=dict(item)))

    def _end(self) -> list[Json]:
        self._done = True
        status, incomplete = _status(self._reason)
        if status == "incomplete":
            for item in self._items:
                if item["type"] == "message":
                    item["status"] = "incomplete"
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return [self._event(kind, response=self._snapshot(status, incomplete=incomplete))]

    def failed(self, message: str, code: str) -> list[Json]:
        """The events that end a stream which broke mid-way: ``error``, then ``response.failed``."""
        out = [] if self._started else self.feed({})
        self._done = True
        for item in self._items:
            if item["status"] == "in_progress":
                item["status"] = "incomplete"
        error = {"code": code, "message": message}
        out.append(self._event("error", code=code, message=message, param=None))
        out.append(self._event("response.failed", response=self._snapshot("failed", error=error)))
        return out
