"""One module per provider wire format: parse a request into a Prompt, render an Answer."""

from __future__ import annotations

from .anthropic import AnthropicDialect
from .base import BadRequest, Dialect
from .gemini import GeminiDialect
from .openai import OpenAIDialect
from .openai_responses import OpenAIResponsesDialect

DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIDialect(),
    "anthropic": AnthropicDialect(),
    "gemini": GeminiDialect(),
}
# Not a provider of its own: the openai emulator's /v1/responses (faults and logs say "openai").
OPENAI_RESPONSES = OpenAIResponsesDialect()

__all__ = ["DIALECTS", "OPENAI_RESPONSES", "AnthropicDialect", "BadRequest", "Dialect", "GeminiDialect", "OpenAIDialect", "OpenAIResponsesDialect"]
