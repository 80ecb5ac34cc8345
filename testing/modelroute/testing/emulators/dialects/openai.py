"""OpenAI Chat Completions wire format: request parsing, responses, SSE chunks, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..answers import split_fixed, split_words
from ..model import Answer, Prompt, Provider, ToolMode, ToolSpec, count_tokens
from ..promptcache import Prefixes
from . import obfuscation, openai_schema, toolrules
from .base import BadRequest, dumps, sse_data

_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length", "tool_calls": "tool_calls"}
_DONE = b"data: [DONE]\n\n"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _error_type(status: int) -> tuple[str, str | None]:
    if status == 401:
        return "invalid_request_error", "invalid_api_key"
    if status == 404:
        return "invalid_request_error", "model_not_found"
    if status == 429:
        return "requests", "rate_limit_exceeded"
    if status >= 500:
        return "server_error", None
    return "invalid_request_error", None


def body_and_model(body: Any) -> tuple[dict[str, Any], str]:
    """The body as an object and its ``model``, or the 400 OpenAI gives (chat and Responses alike)."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter", param="model")
    return body, model


def tool_mode(choice: Any, forced: Any) -> tuple[ToolMode, str | None]:
    """How ``tool_choice`` constrains tool use; ``forced`` is the object naming a forced function, if any."""
    if choice == "none":
        return "none", None
    if choice == "required":
        return "any", None
    if isinstance(forced, dict):
        return "tool", forced.get("name")
    return "auto", None


class OpenAIDialect:
    provider: Provider = "openai"
    request_id_header = "x-request-id"
    tool_id_prefix = "call_emu"

    def check_auth(self, headers: Mapping[str, str], query: Mapping[str, str]) -> BadRequest | None:
        auth = headers.get("Authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            return BadRequest(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                status=401,
            )
        return None

    def validate(self, body: Any, headers: Mapping[str, str], path: str) -> BadRequest | None:
        refused = openai_schema.validate(path, body) or openai_schema.model_rules(body)
        if refused is None and path.endswith("/chat/completions"):
            return toolrules.openai_chat(body)
        if refused is None and path.endswith("/responses"):
            return toolrules.openai_responses(body)
        return refused

    def parse(self, body: Any, model: str | None, stream: bool | None) -> Prompt:
        body, model = body_and_model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("'messages' must be a non-empty array", param="messages")
        tokens = 0
        last_user = ""
        prefixes = Prefixes("openai", model)  # automatic prompt caching at message boundaries
        prefixes.add(body.get("tools"), 0, write=False)
        for m in messages:
            if not isinstance(m, dict) or "role" not in m:
                raise BadRequest("each message needs a 'role'", param="messages")
            text = _text_of(m.get("content"))
            n = count_tokens(text)
            for call in m.get("tool_calls") or ():
                n += count_tokens(str(call.get("function", {}).get("arguments", "")))
            tokens += n
            prefixes.add(m, n)
            if m["role"] == "user":
                last_user = text
        last = messages[-1]
        tool_result = _text_of(last.get("content")) if last.get("role") == "tool" else None
        tools = tuple(
            ToolSpec(str(t["function"]["name"]), dict(t["function"].get("parameters") or {}))
            for t in body.get("tools") or ()
            if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
        )
        choice = body.get("tool_choice")
        mode, forced = tool_mode(choice, choice.get("function") if isinstance(choice, dict) else None)
        fmt = body.get("response_format") or {}
        json_mode = fmt.get("type") in ("json_object", "json_schema")
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
        stop = body.get("stop")
        stream_opts = body.get("stream_options") or {}
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        return Prompt(
            provider="openai",
            model=model,
            stream=bool(body.get("stream")),
            last_user_text=last_user,
            tool_result=tool_result,
            input_tokens=tokens,
            tools=tools,
            tool_mode=mode,
            forced_tool=forced,
            json_mode=json_mode,
            json_schema=schema,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
            include_usage=bool(stream_opts.get("include_usage")),
            include_obfuscation=stream_opts.get("include_obfuscation") is not False,
            cache_points=tuple(prefixes.points),
        )

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.input_tokens,
            "completion_tokens": answer.output_tokens,
            "total_tokens": answer.input_tokens + answer.output_tokens,
            "prompt_tokens_details": {"cached_tokens": answer.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def response(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.text or not answer.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                }
                for c in answer.tool_calls
            ]
        return {
            "id": f"chatcmpl-emu{seq}",
            "object": "chat.completion",
            "created": created,
            "model": prompt.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": _FINISH[answer.finish]}
            ],
            "usage": self._usage(answer),
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }

    def stream_frames(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> list[bytes]:
        head = {
            "id": f"chatcmpl-emu{seq}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": prompt.model,
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
        }
        if prompt.include_usage:
            head["usage"] = None

        # Serialize the constant part of a chunk once; only the delta (and the padding) differs per chunk.
        pre = dumps(head)[:-1] + b',"choices":[{"index":0,"delta":'
        mid = b',"logprobs":null,"finish_reason":'
        end = b"}]}"
        no_finish = mid + b"null" + end
        frames: list[bytes] = []

        def add(body: bytes) -> None:
            if prompt.include_obfuscation:  # OpenAI's default: every chunk padded (``obfuscation``)
                body = obfuscation.chat_chunk(body, seq, len(frames))
            frames.append(b"data: " + body + b"\n\n")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
            add(pre + dumps(delta) + (no_finish if finish is None else mid + dumps(finish) + end))

        chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in split_words(answer.text):
            chunk({"content": piece})
        for i, c in enumerate(answer.tool_calls):
            first = {
                "index": i,
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": ""},
            }
            chunk({"tool_calls": [first]})
            for piece in split_fixed(json.dumps(c.arguments)):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
        chunk({}, _FINISH[answer.finish])
        if prompt.include_usage:
            add(dumps({**head, "choices": [], "usage": self._usage(answer)}))
        frames.append(_DONE)
        return frames

    def error_body(
        self, status: int, message: str, error_type: str | None, param: str | None, code: str | None = None
    ) -> bytes:
        etype, default_code = _error_type(status)
        return dumps(
            {
                "error": {
                    "message": message,
                    "type": error_type or etype,
                    "param": param,
                    "code": code or default_code,
                }
            }
        )

    def stream_error_frame(self, status: int, message: str, error_type: str | None) -> bytes:
        etype, code = _error_type(status)
        return sse_data(
            {"error": {"message": message, "type": error_type or etype, "param": None, "code": code}}
        )

    def models_body(self, models: list[str]) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "emulator"} for m in models
            ],
        }
