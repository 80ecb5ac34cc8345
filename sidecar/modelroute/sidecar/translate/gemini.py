"""Chat request <-> Gemini generateContent (google-genai): request, response and stream chunks.

Direction names follow ``anthropic.py`` (``chat_to_gemini_request``,
``gemini_to_chat_response``, ``GeminiStreamToChat``) so that the reverse direction (a
google-genai app served by another provider) can be added beside them.

Input forms:

* requests: the chat request dict as the app sent it. The output is
  ``{"model", "contents", "config"}`` for
  ``client.aio.models.generate_content(**kwargs)`` (and ``generate_content_stream``):
  plain dicts with the SDK's snake_case field names, which the SDK validates into its
  types (``types.Content``, ``types.GenerateContentConfig``). Binary data (inline images,
  thought signatures) is ``bytes``; the SDK base64-encodes it. Note for emulators: the SDK
  writes the part keys in camelCase but objects nested in a part (``inlineData``,
  ``fileData``) keep snake_case keys (``mime_type``), which the real API accepts.
* responses and stream chunks: a ``GenerateContentResponse`` as a dict, either the raw wire
  JSON (camelCase, e.g. the body read with ``should_return_http_response``) or
  ``response.model_dump(mode="json", exclude_none=True)`` (snake_case). Both are accepted;
  every field is read under either spelling.

Lossy spots, on purpose: Gemini's thought signatures have no place in the chat format, so
assistant function calls sent back to Gemini carry the documented
``skip_thought_signature_validator`` signature (Gemini 3 rejects function-call history
without one); thought parts are not surfaced; ``logprobs`` is dropped. An app's ``top_k`` (not an
OpenAI field, but the pivot carries it) is forwarded as ``topK``. ``n`` maps to
``candidate_count`` and each candidate becomes a choice.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from modelroute.api.v1alpha1 import Params
from modelroute.sidecar.translate import chat
from modelroute.sidecar.translate.errors import StreamError, TranslationError
from modelroute.sidecar.translate.params import apply_params

Json = dict[str, Any]

SKIP_THOUGHT_SIGNATURE = b"skip_thought_signature_validator"

_FILTERED = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR", "LANGUAGE",
})


def finish_reason_to_chat(reason: str | None, has_tool_calls: bool) -> str:
    """Gemini ``finishReason`` -> OpenAI ``finish_reason``."""
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED or (reason or "").startswith("IMAGE_"):
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def _get(d: Json, snake: str, camel: str) -> Any:
    value = d.get(camel)
    return d.get(snake) if value is None else value


# ---- request -------------------------------------------------------------------------

def chat_to_gemini_request(
    request: Json,
    *,
    model: str,
    params: Params | None = None,
    system: str | None = None,
    thought_signatures: bool = True,
) -> Json:
    """Keyword arguments ``{"model", "contents", "config"}`` for ``client.aio.models.generate_content``.

    ``request`` is the chat request as the app sent it (not mutated); ``params`` the target's
    effective params; ``system`` the route prompt's system text (it comes first). Streaming
    is the caller's choice of SDK method (``generate_content_stream``); ``stream`` is ignored.
    ``config.automatic_function_calling.disable`` is set so the SDK never runs its own tool loop.
    ``thought_signatures=False`` leaves the placeholder signature out (Gemini < 3 emulators).
    """
    body = apply_params(request, params, system)
    system_parts: list[str] = []
    contents = _contents(body.get("messages"), system_parts, thought_signatures)
    if not contents:
        raise TranslationError("messages must hold at least one user or assistant message")
    config: Json = {"automatic_function_calling": {"disable": True}}
    if system_parts:
        config["system_instruction"] = {"parts": [{"text": "\n\n".join(system_parts)}]}
    if body.get("temperature") is not None:
        config["temperature"] = body["temperature"]
    if body.get("top_p") is not None:
        config["top_p"] = body["top_p"]
    if body.get("top_k") is not None:  # not OpenAI's, but apps written for other providers send it; Gemini has topK
        config["top_k"] = body["top_k"]
    limit = chat.max_tokens_of(body)
    if limit is not None:
        config["max_output_tokens"] = limit
    stops = chat.stop_list(body.get("stop"))
    if stops:
        config["stop_sequences"] = stops
    for src, dst in (("seed", "seed"), ("presence_penalty", "presence_penalty"), ("frequency_penalty", "frequency_penalty")):
        if body.get(src) is not None:
            config[dst] = body[src]
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        config["candidate_count"] = n

    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in ("json_object", "json_schema"):
        config["response_mime_type"] = "application/json"
        schema = chat.json_schema_of(response_format)
        if schema is not None:
            config["response_json_schema"] = schema

    tools = body.get("tools")
    if tools:
        config["tools"] = [{"function_declarations": [_declaration(t) for t in tools]}]
        tool_config = _tool_config(body.get("tool_choice"))
        if tool_config is not None:
            config["tool_config"] = tool_config
    return {"model": model, "contents": contents, "config": config}


def _contents(messages: Any, system_parts: list[str], signatures: bool) -> list[Json]:
    texts, rest = chat.split_system(messages)
    system_parts.extend(texts)
    out: list[Json] = []
    names: dict[str, str] = {}  # tool call id -> function name (functionResponse needs the name)
    for m in rest:
        role = m.get("role")
        if role == "user":
            _append(out, "user", _user_parts(m.get("content")))
        elif role == "assistant":
            parts = _model_parts(m, names, signatures)
            if parts:
                _append(out, "model", parts)
        elif role == "tool":
            call_id = m.get("tool_call_id") or ""
            name = names.get(call_id) or m.get("name")
            if not name:
                raise TranslationError(f"tool message {call_id!r} answers no earlier assistant tool call")
            response: Json = {"name": name, "response": _function_response(m.get("content"))}
            if call_id:
                response["id"] = call_id
            _append(out, "user", [{"function_response": response}])
        else:
            raise TranslationError(f"unsupported message role {role!r} for Gemini targets")
    return out


def _append(out: list[Json], role: str, parts: list[Json]) -> None:
    if out and out[-1]["role"] == role:
        out[-1]["parts"].extend(parts)
    else:
        out.append({"role": role, "parts": parts})


def _user_parts(content: Any) -> list[Json]:
    if content is None:
        return [{"text": ""}]
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise TranslationError("user content must be a string or a list of parts")
    parts: list[Json] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind in ("image_url", "file"):
            if kind == "image_url":
                image = part.get("image_url")
                url = image.get("url", "") if isinstance(image, dict) else str(image or "")
            else:
                url = str((part.get("file") or {}).get("file_data") or "")
            data = chat.parse_data_url(url)
            if data is not None:
                try:
                    raw = base64.b64decode(data[1], validate=True)
                except binascii.Error as e:
                    raise TranslationError("data URL is not valid base64") from e
                parts.append({"inline_data": {"mime_type": data[0], "data": raw}})
            elif url:
                parts.append({"file_data": {"file_uri": url, "mime_type": _guess_mime(url)}})
            else:
                raise TranslationError(f"{kind} part without data")
        else:
            raise TranslationError(f"content part type {kind!r} is not supported by Gemini targets")
    return parts


def _guess_mime(url: str) -> str:
    path = url.split("?", 1)[0].lower()
    for ext, mime in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp"), (".pdf", "application/pdf")):
        if path.endswith(ext):
            return mime
    return "image/jpeg"


def _model_parts(m: Json, names: dict[str, str], signatures: bool) -> list[Json]:
    parts: list[Json] = []
    text = chat.text_of(m.get("content"))
    if text:
        parts.append({"text": text})
    first = True
    for call in m.get("tool_calls") or ():
        if call.get("type", "function") != "function":
            raise TranslationError(f"tool call type {call.get('type')!r} is not supported by Gemini targets")
        fn = call.get("function") or {}
        name = fn.get("name") or ""
        call_id = call.get("id") or ""
        names[call_id] = name
        fc: Json = {"name": name, "args": chat.parse_arguments(fn.get("arguments"))}
        if call_id:
            fc["id"] = call_id
        part: Json = {"function_call": fc}
        if first and signatures:
            part["thought_signature"] = SKIP_THOUGHT_SIGNATURE
        first = False
        parts.append(part)
    return parts


def _function_response(content: Any) -> Json:
    """A tool result as Gemini's response object: a JSON object as is, ``Error: `` text (``chat.tool_error``) as
    ``{"error": detail}``, anything else as ``{"output": text}`` (Gemini reads ``output`` and ``error`` so)."""
    text = chat.text_of(content)
    error = chat.tool_error(text)
    if error is not None:
        if error[:1] == "{":  # a structured Gemini error response, as gemini_inbound wrote it
            value = chat.parse_arguments(error)
            if "error" in value:
                return value
        return {"error": error}
    if text[:1] == "{":
        value = chat.parse_arguments(text)
        if "_raw" not in value:
            return value
    return {"output": text}


def _declaration(tool: Json) -> Json:
    if tool.get("type", "function") != "function":
        raise TranslationError(f"tool type {tool.get('type')!r} is not supported by Gemini targets")
    fn = tool.get("function") or {}
    out: Json = {"name": fn.get("name") or ""}
    if fn.get("description"):
        out["description"] = fn["description"]
    if fn.get("parameters"):
        out["parameters_json_schema"] = fn["parameters"]
    return out


def _tool_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice == "auto":
        mode: Json = {"mode": "AUTO"}
    elif choice == "none":
        mode = {"mode": "NONE"}
    elif choice == "required":
        mode = {"mode": "ANY"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise TranslationError("tool_choice function needs a name")
        mode = {"mode": "ANY", "allowed_function_names": [name]}
    else:
        raise TranslationError(f"unsupported tool_choice {choice!r} for Gemini targets")
    return {"function_calling_config": mode}


# ---- response ------------------------------------------------------------------------

def usage_to_chat(meta: Json | None) -> Json | None:
    """Gemini ``usageMetadata`` -> OpenAI usage. Thinking tokens count as completion tokens."""
    if not meta:
        return None
    prompt = (_get(meta, "prompt_token_count", "promptTokenCount") or 0) + (
        _get(meta, "tool_use_prompt_token_count", "toolUsePromptTokenCount") or 0)
    thoughts = _get(meta, "thoughts_token_count", "thoughtsTokenCount")
    completion = (_get(meta, "candidates_token_count", "candidatesTokenCount") or 0) + (thoughts or 0)
    cached = _get(meta, "cached_content_token_count", "cachedContentTokenCount")
    return chat.usage(prompt, completion, cached=cached, reasoning=thoughts)


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def _call_id(fc: Json, base: str, n: int) -> str:
    """Gemini's call id, or ``call_<last 16 id characters of base>_<n>`` when it gave none: unique per answer,
    usable on every provider's next turn (OpenAI takes at most 40 characters, Anthropic ``[A-Za-z0-9_-]``)."""
    return str(fc.get("id") or f"call_{_NOT_ID.sub('', base)[-16:]}_{n}")


def gemini_to_chat_response(response: Json, *, created: int, id: str | None = None, model: str) -> Json:
    """A ``GenerateContentResponse`` dict -> ``chat.completion`` dict.

    ``id`` defaults to ``responseId``; ``model`` is used unless the response names its
    ``modelVersion``. Function calls become ``tool_calls`` with Gemini's call id, or
    ``call_<id>_<n>`` when Gemini gave none (the last 16 id characters of ``id``) (deterministic for a given ``id``).
    A prompt blocked before any candidate gives one empty ``content_filter`` choice.
    """
    rid = id or _get(response, "response_id", "responseId") or ""
    choices: list[Json] = []
    for i, cand in enumerate(response.get("candidates") or ()):
        texts: list[str] = []
        calls: list[Json] = []
        content = cand.get("content") or {}
        for part in content.get("parts") or ():
            fc = _get(part, "function_call", "functionCall")
            if fc is not None:
                calls.append(chat.tool_call(_call_id(fc, rid, len(calls)), fc.get("name") or "", chat.dumps(fc.get("args") or {})))
            elif part.get("text") is not None and not part.get("thought"):
                texts.append(part["text"])
        text: str | None = "".join(texts)
        if not text and calls:
            text = None
        reason = finish_reason_to_chat(_get(cand, "finish_reason", "finishReason"), bool(calls))
        index = cand.get("index")
        choices.append(chat.choice(index if isinstance(index, int) else i, text, calls, reason))
    if not choices:
        choices.append(chat.choice(0, "", [], "content_filter" if _blocked(response) else "stop"))
    return chat.completion(
        id=rid, created=created, model=_get(response, "model_version", "modelVersion") or model,
        choices=choices, usage=usage_to_chat(_get(response, "usage_metadata", "usageMetadata")),
    )


def _blocked(response: Json) -> bool:
    feedback = _get(response, "prompt_feedback", "promptFeedback") or {}
    return bool(_get(feedback, "block_reason", "blockReason"))


# ---- stream --------------------------------------------------------------------------

class GeminiStreamToChat(chat.StreamToChat):
    """Gemini stream chunks (each a partial ``GenerateContentResponse`` dict) -> chat chunks.

    Gemini has no end event: the last chunk carries ``finishReason`` (per candidate) and the
    final ``usageMetadata``. So ``feed`` emits content and the ``finish_reason`` chunk as
    they come, and ``finish()`` (called when the upstream iterator ends) emits the usage
    chunk when ``include_usage``, or raises ``StreamError`` if no candidate ever finished
    (a cut stream must not look complete). A chunk with an ``error`` object raises too.
    After ``finish()``: ``usage`` (also when the app did not ask for it) and
    ``finish_reason`` (of candidate 0).
    """

    __slots__ = ("_calls", "_done", "_finished", "_meta", "_started")

    def __init__(self, *, model: str, id: str, created: int, include_usage: bool) -> None:
        super().__init__(model=model, id=id, created=created, include_usage=include_usage)
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}       # candidate index -> tool calls so far
        self._finished: set[int] = set()
        self._meta: Json | None = None
        self._done = False

    def _chunk(self, delta: Json, index: int, finish_reason: str | None = None) -> Json:
        return chat.chunk(id=self.id, created=self.created, model=self.model, delta=delta, index=index, finish_reason=finish_reason)

    def feed(self, chunk: Json) -> list[Json]:
        err = chunk.get("error")
        if err is not None:
            err = err if isinstance(err, dict) else {"message": str(err)}
            raise StreamError(str(err.get("message") or "upstream stream error"), error_type=str(err.get("status") or "api_error"), body=chunk)
        version = _get(chunk, "model_version", "modelVersion")
        if version:
            self.model = version
        meta = _get(chunk, "usage_metadata", "usageMetadata")
        if meta:
            self._meta = meta  # converted once, in finish()
        out: list[Json] = []
        candidates = chunk.get("candidates") or ()
        for pos, cand in enumerate(candidates):
            index = cand.get("index")
            self._candidate(cand, index if isinstance(index, int) else pos, out)
        if not candidates and _blocked(chunk) and 0 not in self._finished:
            self._start(0, out)
            self._finish(0, "content_filter", out)
        return out

    def _start(self, index: int, out: list[Json]) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(self._chunk({"role": "assistant", "content": ""}, index))

    def _finish(self, index: int, reason: str, out: list[Json]) -> None:
        self._finished.add(index)
        if index == 0:
            self.finish_reason = reason
        out.append(self._chunk({}, index, reason))

    def _candidate(self, cand: Json, index: int, out: list[Json]) -> None:
        if index in self._finished:
            return
        self._start(index, out)
        texts: list[str] = []
        calls: list[Json] = []
        n = self._calls.get(index, 0)
        for part in (cand.get("content") or {}).get("parts") or ():
            fc = _get(part, "function_call", "functionCall")
            if fc is not None:
                calls.append({
                    "index": n, "id": _call_id(fc, self.id, n), "type": "function",
                    "function": {"name": fc.get("name") or "", "arguments": chat.dumps(fc.get("args") or {})},
                })
                n += 1
            elif part.get("text") and not part.get("thought"):
                texts.append(part["text"])
        self._calls[index] = n
        if texts:
            out.append(self._chunk({"content": "".join(texts)}, index))
        if calls:
            out.append(self._chunk({"tool_calls": calls}, index))
        reason = _get(cand, "finish_reason", "finishReason")
        if reason:
            self._finish(index, finish_reason_to_chat(reason, n > 0), out)

    def finish(self) -> list[Json]:
        if self._done:
            return []
        if not self._finished:
            raise StreamError("stream ended before a finishReason", error_type="incomplete_stream")
        self._done = True
        usage = usage_to_chat(self._meta) or chat.usage(0, 0)
        self.usage = usage
        if self.include_usage:
            return [self.usage_chunk(usage)]
        return []
