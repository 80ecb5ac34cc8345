"""Provider-neutral description of a chat request and of the emulator's answer.

Each dialect parses its wire format into a `Prompt`; the answer logic (`answers.py`) and
scripts work only on these types, so the three providers share one deterministic brain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .promptcache import CachePoint

Provider = Literal["openai", "anthropic", "gemini"]
PROVIDERS: tuple[Provider, ...] = ("openai", "anthropic", "gemini")

# Neutral finish reasons; each dialect maps them to its own vocabulary.
Finish = Literal["stop", "length", "tool_calls", "stop_sequence"]

# How the request constrains tool use: "auto" (model decides), "none", "any" (must call
# some tool), or "tool" (must call `forced_tool`).
ToolMode = Literal["auto", "none", "any", "tool"]


def count_tokens(text: str) -> int:
    """Deterministic token count: whitespace-separated words."""
    return len(text.split())


@dataclass(frozen=True)
class ToolSpec:
    """A tool the request offers: its name and JSON schema for arguments."""

    name: str
    schema: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolCall:
    """A tool call in an answer. `id` is filled by the emulator when not scripted."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Prompt:
    """What the emulator understood from one request."""

    provider: Provider
    model: str
    stream: bool
    last_user_text: str  # text of the last user turn ("" when none)
    tool_result: str | None  # text of a tool result if the conversation ends with one
    input_tokens: int  # count_tokens over every text in the request
    tools: tuple[ToolSpec, ...] = ()
    tool_mode: ToolMode = "auto"
    forced_tool: str | None = None
    json_mode: bool = False  # answer must be a JSON document
    json_schema: dict[str, Any] | None = None  # ... matching this schema when given
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    include_usage: bool = False  # OpenAI stream_options.include_usage
    include_obfuscation: bool = True  # OpenAI stream_options.include_obfuscation (on unless false)
    cache_points: tuple[CachePoint, ...] = ()  # prompt-cache prefixes (promptcache.py)
    cache_explicit: bool = False  # Anthropic: only cache_control breakpoints write


@dataclass(frozen=True)
class Reply:
    """A scripted (or default) reply before max_tokens/stop handling.

    `finish`, `input_tokens` and `output_tokens` override the computed values when set.
    """

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish: Finish | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None

    @staticmethod
    def from_json(data: dict[str, Any]) -> Reply:
        calls = tuple(
            ToolCall(name=str(c["name"]), arguments=dict(c.get("arguments") or {}), id=c.get("id"))
            for c in data.get("tool_calls") or ()
        )
        return Reply(
            text=str(data.get("text") or ""),
            tool_calls=calls,
            finish=data.get("finish"),
            input_tokens=data.get("input_tokens"),
            output_tokens=data.get("output_tokens"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": [{"name": c.name, "arguments": c.arguments, "id": c.id} for c in self.tool_calls],
            "finish": self.finish,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


@dataclass(frozen=True)
class Answer:
    """The final answer a dialect renders: text and/or tool calls, finish, usage."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finish: Finish
    stop_sequence: str | None
    input_tokens: int
    output_tokens: int
    cache_read: int = 0  # of input_tokens: read from the prompt cache
    cache_write: int = 0  # of input_tokens: written to the prompt cache (Anthropic)
    cache_write_1h: int = 0  # of cache_write: with a 1-hour TTL
