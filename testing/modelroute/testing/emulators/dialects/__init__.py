"""One module per provider wire format: parse a request into a Prompt, render an Answer."""

from __future__ import annotations

from collections.abc import Iterable

from . import gemini_schema, openai_schema
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



def compile_schemas(providers: Iterable[str]) -> None:
    """Compile the request schemas of these providers once, when a strict emulator starts."""
    if "openai" in providers:
        openai_schema.compile_all()
    if "gemini" in providers:
        gemini_schema.compile_all()


__all__ = ["DIALECTS", "OPENAI_RESPONSES", "AnthropicDialect", "BadRequest", "Dialect", "GeminiDialect", "OpenAIDialect",
           "OpenAIResponsesDialect", "compile_schemas"]
