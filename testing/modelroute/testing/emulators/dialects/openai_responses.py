"""OpenAI Responses API wire format (``POST /v1/responses``): request parsing, Response objects, typed SSE events.

Served by the openai emulator beside Chat Completions (same keys, faults and request log, with
provider ``openai``), for targets with ``api: responses``. Fields the real API does not have
are refused with its 400 (the OpenAPI schema, as for chat: ``openai.OpenAIDialect.validate``).
"""

from __future__ import annotations

import json
from typing import Any

from ..answers import split_fixed, split_words
from ..model import Answer, Prompt, ToolSpec, count_tokens
from ..promptcache import Prefixes
from . import obfuscation
from .base import BadRequest, sse_event
from .openai import OpenAIDialect, _error_type, body_and_model, tool_mode


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(str(p.get("text", "")) for p in content or () if isinstance(p, dict)
                    and p.get("type") in ("input_text", "output_text"))


class OpenAIResponsesDialect(OpenAIDialect):
    def parse(self, body: Any, model: str | None, stream: bool | None) -> Prompt:
        body, model = body_and_model(body)
        raw = body.get("input")
        items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        if not items:
            raise BadRequest("'input' must be a string or a non-empty array", param="input")
        tokens = count_tokens(str(body.get("instructions") or ""))
        prefixes = Prefixes("openai", model)  # automatic prompt caching at item boundaries
        prefixes.add([body.get("tools"), body.get("instructions")], tokens)
        last_user = ""
        for item in items:
            if not isinstance(item, dict):
                raise BadRequest("each input item must be an object", param="input")
            kind = item.get("type", "message")
            text = _text(item.get("content")) if kind == "message" else str(item.get("arguments") or item.get("output") or "")
            n = count_tokens(text)
            tokens += n
            prefixes.add(item, n)
            if kind == "message" and item.get("role") == "user":
                last_user = text
        last = items[-1]
        tool_result = str(last.get("output") or "") if last.get("type") == "function_call_output" else None
        tools = tuple(ToolSpec(str(t["name"]), dict(t.get("parameters") or {})) for t in body.get("tools") or ()
                      if isinstance(t, dict) and t.get("type") == "function" and "name" in t)
        choice = body.get("tool_choice")
        mode, forced = tool_mode(choice, choice if isinstance(choice, dict) and choice.get("type") == "function" else None)
        fmt = (body.get("text") or {}).get("format") or {}
        limit = body.get("max_output_tokens")
        return Prompt(
            provider="openai", model=model, stream=bool(body.get("stream")), last_user_text=last_user,
            tool_result=tool_result, input_tokens=tokens, tools=tools, tool_mode=mode, forced_tool=forced,
            json_mode=fmt.get("type") in ("json_object", "json_schema"),
            json_schema=fmt.get("schema") if fmt.get("type") == "json_schema" else None,
            max_tokens=limit if isinstance(limit, int) else None, include_usage=True, cache_points=tuple(prefixes.points),
            include_obfuscation=(body.get("stream_options") or {}).get("include_obfuscation") is not False,
        )

    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        return {"input_tokens": answer.input_tokens, "input_tokens_details": {"cached_tokens": answer.cache_read, "cache_write_tokens": 0},
                "output_tokens": answer.output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": answer.input_tokens + answer.output_tokens}

    def _output(self, answer: Answer, seq: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if answer.text or not answer.tool_calls:
            out.append({"type": "message", "id": f"msg_emu{seq}", "status": "completed", "role": "assistant",
                        "content": [{"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}]})
        out += [{"type": "function_call", "id": f"fc_emu{seq}_{i}", "call_id": c.id, "name": c.name,
                 "arguments": json.dumps(c.arguments), "status": "completed"} for i, c in enumerate(answer.tool_calls)]
        return out

    def _object(self, prompt: Prompt, seq: int, created: int, status: str, output: list[dict[str, Any]],
                usage: dict[str, Any] | None, incomplete: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"id": f"resp_emu{seq}", "object": "response", "created_at": created, "status": status, "error": None,
                "incomplete_details": incomplete, "model": prompt.model, "output": output, "usage": usage,
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "store": False}

    def response(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> dict[str, Any]:
        incomplete = answer.finish == "length"
        return self._object(prompt, seq, created, "incomplete" if incomplete else "completed", self._output(answer, seq),
                            self._usage(answer), {"reason": "max_output_tokens"} if incomplete else None)

    def stream_frames(self, prompt: Prompt, answer: Answer, seq: int, created: int) -> list[bytes]:
        n = 0

        def ev(kind: str, **fields: Any) -> bytes:
            nonlocal n
            n += 1
            if prompt.include_obfuscation and kind.endswith(".delta"):  # the delta events' padding, last
                fields["obfuscation"] = obfuscation.delta_padding(fields["delta"], seq, n - 1)
            return sse_event(kind, {"type": kind, "sequence_number": n - 1, **fields})

        frames = [ev("response.created", response=self._object(prompt, seq, created, "in_progress", [], None))]
        items = self._output(answer, seq)
        for index, item in enumerate(items):
            if item["type"] == "message":
                frames.append(ev("response.output_item.added", output_index=index, item={**item, "content": []}))
                frames.append(ev("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                                 part={"type": "output_text", "text": "", "annotations": []}))
                frames += [ev("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0,
                              delta=piece, logprobs=[]) for piece in split_words(answer.text)]
                frames.append(ev("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                                 text=answer.text, logprobs=[]))
            else:
                frames.append(ev("response.output_item.added", output_index=index, item={**item, "arguments": ""}))
                frames += [ev("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
                           for piece in split_fixed(item["arguments"])]
            frames.append(ev("response.output_item.done", output_index=index, item=item))
        final = self.response(prompt, answer, seq, created)
        frames.append(ev(f"response.{final['status']}", response=final))
        return frames

    def stream_error_frame(self, status: int, message: str, error_type: str | None) -> bytes:
        _, code = _error_type(status)
        return sse_event("error", {"type": "error", "code": code or "server_error", "message": message, "param": None,
                                   "sequence_number": 0})
