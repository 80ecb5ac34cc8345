"""One module per provider wire format: parse a request into a Prompt, render an Answer."""

from __future__ import annotations

from collections.abc import Iterable

from . import gemini_schema, openai_schema
from .anthropic import AnthropicDialect
from .base import BadRequest, Dialect
from .gemini import GeminiDialect
from .openai import OpenAIDialect

DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIDialect(),
    "anthropic": AnthropicDialect(),
    "gemini": GeminiDialect(),
}



def compile_schemas(providers: Iterable[str]) -> None:
    """Compile the request schemas of these providers once, when a strict emulator starts."""
    if "openai" in providers:
        openai_schema.compile_all()
    if "gemini" in providers:
        gemini_schema.compile_all()


__all__ = ["DIALECTS", "AnthropicDialect", "BadRequest", "Dialect", "GeminiDialect", "OpenAIDialect", "compile_schemas"]
