"""Chat request -> OpenAI Responses API, for openai targets with ``api: responses``.

The outbound mirror of ``responses_inbound.py``: ``chat_to_responses_request`` gives the
keyword arguments of ``AsyncOpenAI().responses.create`` (``store: false`` always: the sidecar
sends the whole conversation each time, nothing needs keeping upstream);
``responses_to_chat_response`` turns a ``Response`` into a ``chat.completion``, and
``ResponsesStreamToChat`` turns the typed stream events into chat chunks.

Not expressible, so a ``TranslationError`` (a 400, or fallback to another target): ``stop``
sequences, ``n`` > 1, audio parts. Output annotations and logprobs are not carried.
"""

from __future__ import annotations

from typing import Any

from modelroute.api.v1alpha1 import Params
from modelroute.sidecar.translate import chat
from modelroute.sidecar.translate.accepts import ParamFilter
from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.params import apply_params

Json = dict[str, Any]

_PASS = ("temperature", "top_p", "parallel_tool_calls", "prompt_cache_key", "prompt_cache_retention", "service_tier",
         "metadata", "safety_identifier", "user")


def chat_to_responses_request(request: Json, *, model: str, params: Params | None = None, system: str | None = None,
                              accepts: ParamFilter | None = None) -> Json:
    """Keyword arguments for ``AsyncOpenAI().responses.create(**kwargs)`` (``request`` is not mutated)."""
    if accepts is not None:
        request, params = accepts.strip(request)
    body = apply_params(request, params, system, max_tokens_field="max_completion_tokens")
    if body.get("stop"):
        raise TranslationError("stop sequences are not supported by the OpenAI Responses API (target api: responses)")
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise TranslationError("n > 1 is not supported by the OpenAI Responses API (target api: responses)")
    out: Json = {"model": model, "input": _items(body.get("messages") or []), "store": False}
    limit = chat.max_tokens_of(body)
    if limit is not None:
        out["max_output_tokens"] = limit
    for key in _PASS:
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("tools"):
        out["tools"] = [_tool(t) for t in body["tools"] if isinstance(t, dict)]
    choice = body.get("tool_choice")
    if choice is not None:
        out["tool_choice"] = _tool_choice(choice)
    text: Json = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        text["format"] = {"type": "json_object"}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        text["format"] = {"type": "json_schema", **{k: spec[k] for k in ("name", "schema", "strict", "description") if k in spec}}
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    return out


def _items(messages: list[Json]) -> list[Json]:
    items: list[Json] = []
    for m in messages:
        role = m.get("role")
        if role == "tool":
            items.append({"type": "function_call_output", "call_id": m.get("tool_call_id") or "",
                          "output": chat.text_of(m.get("content"))})
        elif role == "user":
            content = m.get("content")
            items.append({"role": "user", "content": content if isinstance(content, str) else _parts(content)})
        elif role == "assistant":
            text = chat.text_of(m.get("content"))
            if text:
                items.append({"role": "assistant", "content": text})
            for call in m.get("tool_calls") or ():
                fn = call.get("function") or {}
                items.append({"type": "function_call", "call_id": call.get("id") or "", "name": fn.get("name") or "",
                              "arguments": fn.get("arguments") or "{}"})
        else:  # system, developer
            items.append({"role": "developer" if role == "developer" else "system", "content": chat.text_of(m.get("content"))})
    return items


def _parts(content: Any) -> list[Json]:
    parts: list[Json] = []
    for p in content or ():
        kind = p.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": p.get("text") or ""})
        elif kind == "image_url":
            image = p.get("image_url") or {}
            parts.append({"type": "input_image", "image_url": image.get("url") or "", "detail": image.get("detail") or "auto"})
        elif kind == "file":
            file = p.get("file") or {}
            parts.append({"type": "input_file", **{k: file[k] for k in ("file_data", "file_id", "filename") if k in file}})
        else:
            raise TranslationError(f"content part type {kind!r} is not supported by the OpenAI Responses API")
    return parts


def _tool(tool: Json) -> Json:
    fn = tool.get("function") or {}
    # strict is required on this wire and defaults to true there; Chat Completions' default is false
    out: Json = {"type": "function", "name": fn.get("name") or "", "parameters": fn.get("parameters") or
                 {"type": "object", "properties": {}}, "strict": bool(fn.get("strict"))}
    if fn.get("description") is not None:
        out["description"] = fn["description"]
    return out


def _tool_choice(choice: Any) -> Any:
    """Chat ``tool_choice`` -> Responses: the same strings; a named function; ``allowed_tools`` with its function names."""
    if not isinstance(choice, dict):
        return choice
    kind = choice.get("type")
    if kind == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise TranslationError("tool_choice function needs a name")
        return {"type": "function", "name": name}
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        tools = [{"type": "function", "name": (t.get("function") or {}).get("name") or ""}
                 for t in allowed.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
        return {"type": "allowed_tools", "mode": allowed.get("mode") or "auto", "tools": tools}
    raise TranslationError(f"tool_choice of type {kind!r} is not supported by the OpenAI Responses API (target api: responses)")


# ---- response ------------------------------------------------------------------------


def _finish(status: Any, details: Any, calls: bool) -> str:
    if status == "incomplete":
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if calls else "stop"


def usage_to_chat(usage: Any) -> Json | None:
    """Responses usage -> chat usage (cached, cache-write and reasoning tokens kept)."""
    if not isinstance(usage, dict):
        return None
    inp = usage.get("input_tokens_details") or {}
    outp = usage.get("output_tokens_details") or {}
    return chat.usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0, cached=inp.get("cached_tokens") or 0,
                      cache_write=inp.get("cache_write_tokens"), reasoning=outp.get("reasoning_tokens"))


def responses_to_chat_response(data: Json, *, model: str) -> Json:
    """A ``Response`` (wire JSON) -> ``chat.completion``; function calls keep their ``call_id`` as the tool call id."""
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[Json] = []
    for item in data.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append(chat.tool_call(str(item.get("call_id") or ""), str(item.get("name") or ""),
                                        str(item.get("arguments") or "")))
    choice = chat.choice(0, "".join(texts) if texts or not calls else None, calls,
                         _finish(data.get("status"), data.get("incomplete_details"), bool(calls)))
    if refusals:
        choice["message"]["refusal"] = "".join(refusals)
    created = data.get("created_at")
    return chat.completion(id=str(data.get("id") or ""), created=int(created) if isinstance(created, (int, float)) else 0,
                           model=str(data.get("model") or model), choices=[choice], usage=usage_to_chat(data.get("usage")))


# ---- stream --------------------------------------------------------------------------


class ResponsesStreamToChat:
    """Responses stream events (wire JSON) -> chat chunks; ``.usage`` and ``.finish_reason`` once known.

    ``response.failed``, ``error`` and a stream without ``response.completed`` /
    ``response.incomplete`` raise ``StreamError``: never a clean end after a failure.
    """

    __slots__ = ("_calls", "_created", "_id", "finish_reason", "include_usage", "model", "usage")

    def __init__(self, *, model: str, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.usage: Json | None = None
        self.finish_reason: str | None = None
        self._id = ""
        self._created = 0
        self._calls: dict[Any, int] = {}  # output_index -> chat tool call index

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return chat.chunk(id=self._id, created=self._created, model=self.model, delta=delta, finish_reason=finish)

    def feed(self, event: Json) -> list[Json]:
        kind = event.get("type")
        if kind == "response.created":
            response = event.get("response") or {}
            self._id = str(response.get("id") or "")
            created = response.get("created_at")
            self._created = int(created) if isinstance(created, (int, float)) else 0
            self.model = str(response.get("model") or self.model)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "response.output_text.delta":
            return [self._chunk({"content": str(event.get("delta") or "")})]
        if kind == "response.output_item.added" and (event.get("item") or {}).get("type") == "function_call":
            item = event["item"]
            index = self._calls[event.get("output_index")] = len(self._calls)
            return [self._chunk({"tool_calls": [{"index": index, "id": item.get("call_id") or "", "type": "function",
                                                 "function": {"name": item.get("name") or "", "arguments": ""}}]})]
        if kind == "response.function_call_arguments.delta" and event.get("output_index") in self._calls:
            return [self._chunk({"tool_calls": [{"index": self._calls[event.get("output_index")],
                                                 "function": {"arguments": str(event.get("delta") or "")}}]})]
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response") or {}
            self.finish_reason = _finish(response.get("status"), response.get("incomplete_details"), bool(self._calls))
            self.usage = usage_to_chat(response.get("usage"))
            out = [self._chunk({}, self.finish_reason)]
            if self.include_usage and self.usage is not None:
                out.append(chat.usage_chunk(id=self._id, created=self._created, model=self.model, usage=self.usage))
            return out
        if kind == "response.failed":
            err = (event.get("response") or {}).get("error") or {}
            raise StreamError(str(err.get("message") or "the response failed"), error_type="api_error", body=event)
        if kind == "error" or (kind is None and "error" in event):
            code = event.get("code")
            raise StreamError(str(event.get("message") or "upstream stream error"),
                              error_type="rate_limit_error" if code == "rate_limit_exceeded" else "api_error", body=event)
        return []

    def finish(self) -> list[Json]:
        if self.finish_reason is None:
            raise StreamError("stream ended before response.completed", error_type="incomplete_stream")
        return []
