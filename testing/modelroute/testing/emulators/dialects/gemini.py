"""Gemini generateContent wire format: request parsing, responses, SSE chunks, errors.

Model and streaming come from the URL (`models/{model}:generateContent` or
`:streamGenerateContent?alt=sse`); the key from `x-goog-api-key` (what google-genai
sends) or the `key` query parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..answers import split_words
from ..model import Answer, Prompt, Provider, ToolMode, ToolSpec, count_tokens
from ..promptcache import Prefixes
from . import gemini_schema, toolrules
from .base import BadRequest, dumps, sse_data

_FINISH = {"stop": "STOP", "stop_sequence": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def _status_name(status: int) -> str:
    return _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _get(obj: Any, name: str) -> Any:
    """Field `name` (lowerCamel) or its snake_case spelling: proto JSON accepts both, and
    google-genai sends some fields (e.g. `parameters_json_schema`) in snake_case."""
    if not isinstance(obj, dict):
        return None
    value = obj.get(name)
    return obj.get(_snake(name)) if value is None else value


def _parts_text(parts: Any) -> tuple[str, str | None, int]:
    """(text of text parts, functionResponse text if any, token count of everything)."""
    texts: list[str] = []
    result: str | None = None
    tokens = 0
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if "text" in part and not part.get("thought"):
            texts.append(str(part["text"]))
        elif isinstance(call := _get(part, "functionCall"), dict):
            tokens += count_tokens(dumps(call.get("args") or {}).decode())
        elif isinstance(resp := _get(part, "functionResponse"), dict):
            result = dumps(resp.get("response") or {}).decode()
            tokens += count_tokens(result)
    text = " ".join(texts)
    return text, result, tokens + count_tokens(text)


class GeminiDialect:
    provider: Provider = "gemini"
    request_id_header = ""
    tool_id_prefix = "fc_emu"

    def check_auth(self, headers: Mapping[str, str], query: Mapping[str, str]) -> BadRequest | None:
        if not headers.get("x-goog-api-key") and not query.get("key"):
            return BadRequest(
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
                status=403,
            )
        return None

    def validate(self, body: Any, headers: Mapping[str, str], path: str) -> BadRequest | None:
        if path.endswith((":embedContent", ":batchEmbedContents")):
            return None  # field sets checked by ``emulators.embeddings`` (the derived schema is generateContent's)
        return gemini_schema.validate(body) or toolrules.gemini(body)

    def parse(self, body: Any, model: str | None, stream: bool | None) -> Prompt:
        if not isinstance(body, dict):
            raise BadRequest("Invalid JSON payload received. Expected an object.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest("* GenerateContentRequest.contents: contents is not specified")
        system = _get(body, "systemInstruction") or {}
        tokens = _parts_text(system.get("parts"))[2] if isinstance(system, dict) else 0
        prefixes = Prefixes("gemini", model or "")  # implicit caching at content boundaries
        prefixes.add([body.get("tools"), system], tokens)
        last_user = ""
        tool_result: str | None = None
        for i, c in enumerate(contents):
            if not isinstance(c, dict):
                raise BadRequest("* GenerateContentRequest.contents: each content must be an object")
            text, result, n = _parts_text(c.get("parts"))
            tokens += n
            prefixes.add(c, n)
            if c.get("role", "user") == "user" and text:
                last_user = text
            tool_result = result if i == len(contents) - 1 else None
        tools: list[ToolSpec] = []
        for t in body.get("tools") or ():
            for fd in _get(t, "functionDeclarations") or ():
                schema = _get(fd, "parametersJsonSchema") or fd.get("parameters") or {}
                tools.append(ToolSpec(str(fd.get("name")), dict(schema)))
        fcc = _get(_get(body, "toolConfig"), "functionCallingConfig") or {}
        allowed = _get(fcc, "allowedFunctionNames") or []
        raw_mode = str(fcc.get("mode", "AUTO")).upper()
        mode: ToolMode = {"NONE": "none", "ANY": "any"}.get(raw_mode, "auto")  # type: ignore[assignment]
        forced = None
        if mode == "any" and len(allowed) == 1:
            mode, forced = "tool", str(allowed[0])
        gen = _get(body, "generationConfig") or {}
        schema = _get(gen, "responseJsonSchema") or _get(gen, "responseSchema")
        max_tokens = _get(gen, "maxOutputTokens")
        return Prompt(
            provider="gemini",
            model=model or "",
            stream=bool(stream),
            last_user_text=last_user,
            tool_result=tool_result,
            input_tokens=tokens,
            tools=tuple(tools),
            tool_mode=mode,
            forced_tool=forced,
            json_mode=_get(gen, "responseMimeType") == "application/json",
            json_schema=schema if isinstance(schema, dict) else None,
            max_tokens=max_tokens if isinstance(max_tokens, int) else None,
            stop=tuple(_get(gen, "stopSequences") or ()),
            cache_points=tuple(prefixes.points),
        )

    @staticmethod
    def _usage(answer: Answer, final: bool = True) -> dict[str, Any]:
        cached = {"cachedContentTokenCount": answer.cache_read} if answer.cache_read else {}  # part of promptTokenCount
        if not final:
            return {"promptTokenCount": answer.input_tokens, "totalTokenCount": answer.input_tokens, **cached}
        return {
            "promptTokenCount": answer.input_tokens,
            "candidatesTokenCount": answer.output_tokens,
            "totalTokenCount": answer.input_tokens + answer.output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}],
            **cached,
        }

    @staticmethod
    def _candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish is not None:
            cand["finishReason"] = finish
        return cand

    @staticmethod
    def _call_parts(answer: Answer) -> list[dict[str, Any]]:
        return [{"functionCall": {"name": c.name, "args": c.arguments}} for c in answer.tool_calls]

    def response(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"text": answer.text}] if answer.text or not answer.tool_calls else []
        parts += self._call_parts(answer)
        return {
            "candidates": [self._candidate(parts, _FINISH[answer.finish])],
            "usageMetadata": self._usage(answer),
            "modelVersion": prompt.model,
            "responseId": f"emu{seq}",
        }

    def stream_frames(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> list[bytes]:
        tail = {"modelVersion": prompt.model, "responseId": f"emu{seq}"}
        pieces = split_words(answer.text)
        calls = self._call_parts(answer)
        frames: list[bytes] = []
        # Every text piece but the last is its own chunk; the last chunk carries the
        # last piece (or the function calls), the finish reason and the full usage.
        if len(pieces) > 1 or calls:
            # Intermediate chunks differ only by their text: serialize the rest once.
            pre = b'data: {"candidates":[{"content":{"parts":[{"text":'
            post = (
                b'}],"role":"model"},"index":0}],'
                + dumps({"usageMetadata": self._usage(answer, final=False), **tail})[1:]
                + b"\n\n"
            )
            frames += [pre + dumps(piece) + post for piece in (pieces if calls else pieces[:-1])]
        last_parts = calls if calls else [{"text": pieces[-1] if pieces else ""}]
        frames.append(
            sse_data(
                {
                    "candidates": [self._candidate(last_parts, _FINISH[answer.finish])],
                    "usageMetadata": self._usage(answer),
                    **tail,
                }
            )
        )
        return frames

    def error_body(
        self, status: int, message: str, error_type: str | None, param: str | None, code: str | None = None
    ) -> bytes:
        return dumps(
            {"error": {"code": status, "message": message, "status": error_type or _status_name(status)}}
        )

    def stream_error_frame(self, status: int, message: str, error_type: str | None) -> bytes:
        return sse_data(
            {"error": {"code": status, "message": message, "status": error_type or _status_name(status)}}
        )

    def models_body(self, models: list[str]) -> dict[str, Any]:
        return {
            "models": [
                {
                    "name": f"models/{m}",
                    "displayName": m,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for m in models
            ]
        }
