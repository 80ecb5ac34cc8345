"""One module per provider wire format: parse a request into a Prompt, render an Answer."""

from __future__ import annotations

from .anthropic import AnthropicDialect
from .base import BadRequest, Dialect
from .gemini import GeminiDialect
from .openai import OpenAIDialect

DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIDialect(),
    "anthropic": AnthropicDialect(),
    "gemini": GeminiDialect(),
}

__all__ = ["DIALECTS", "AnthropicDialect", "BadRequest", "Dialect", "GeminiDialect", "OpenAIDialect"]
