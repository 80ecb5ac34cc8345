"""Shape checks for app-sent bodies in the inbound translators (Anthropic, Gemini).

The inbound translators read JSON the app wrote; every field they read goes through one of
these, so a value of the wrong type is a ``TranslationError`` (a 400) naming the field by its
path (``messages[0].content[1].text``), never a ``TypeError`` deep inside a translator.
"""

from __future__ import annotations

from typing import Any

from modelroute.sidecar.translate.errors import TranslationError

Json = dict[str, Any]


def at(path: str, key: str | int) -> str:
    """``path`` extended by an object key or an array index."""
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


def obj(value: Any, where: str) -> Json:
    if not isinstance(value, dict):
        raise TranslationError(f"{where} must be an object, not {kind(value)}")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise TranslationError(f"{where} must be an array, not {kind(value)}")
    return value


def text(d: Json, key: str, where: str, default: str = "") -> str:
    """``d[key]`` as a string (``default`` when missing or null)."""
    value = d.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise TranslationError(f"{at(where, key)} must be a string, not {kind(value)}")
    return value


def kind(value: Any) -> str:
    """The JSON type name of ``value``, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
