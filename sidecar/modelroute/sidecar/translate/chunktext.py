"""OpenAI stream chunks read from their text, without a JSON parse: the common content chunk.

A stream's content chunks differ only in their text: id, model, created time, fingerprint and
every other field repeat. Parsing each one with ``json`` (to learn that nothing but the text
changed) was the largest cost of relaying it. ``learn`` cuts one chunk's JSON text around its
content string (a prefix and a suffix) and proves the cut: the text with another string in that
place parses to the same chunk with that content. A later event whose text is the prefix, one
JSON string and the suffix is then, token for token, that chunk with its own string: the same
dict ``json`` would build (``build``) and the same text, so the OpenAI wire writes the same bytes.
Everything else (other shapes, another id, usage, a finish reason, a string that is not one JSON
string up to the suffix) takes the full parse (``OpenAIStreamToChat.feed_events``).
"""

from __future__ import annotations

import json.decoder
import re
from collections.abc import Callable
from typing import Any

from modelroute.sidecar.translate.chat import RawChunk

Json = dict[str, Any]

Template = tuple[str, str, int, int, Json, Json]
"""A chunk shape: the text before its content string's first character and from its closing quote
on, their lengths, the chunk's top-level fields (``choices`` replaced per chunk) and its one choice."""

_SCALARS = (str, int, float, bool, type(None))  # values shared by the chunks built from a template
_KEY = re.compile(r'"content"[ \t\r]*:[ \t\r]*"')  # a key and the opening quote of its string value
_scan_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]  # json's own (C), strict as its parser
_new_dict = dict.__new__
_fill = dict.update
_set = dict.__setitem__


def build(tpl: Template, content: str, text: str) -> RawChunk:
    """The chunk ``tpl`` stands for with ``content`` as its text (``text``: its JSON), a new dict each time."""
    out: RawChunk = _new_dict(RawChunk)
    _fill(out, tpl[4])
    _set(out, "choices", [{**tpl[5], "delta": {"content": content}}])  # keeps the key's place
    out.raw = text
    return out


def string_at(text: str, start: int, end: int) -> str | None:
    """The value of the JSON string whose first character is at ``start`` when its closing quote is at ``end``, else None."""
    try:
        value, after = _scan_string(text, start)
    except ValueError:  # not a JSON string (a control character, a bad escape): the parse says how
        return None
    return value if after == end + 1 else None


def learn(text: str, chunk: Json, parse: Callable[[str], Json]) -> tuple[bool, Template | None]:
    """Whether ``chunk`` (parsed from ``text``) is the common content chunk, and its template if its
    text could be cut (None: the shape, but not a text ``learn`` can prove a cut of).

    That chunk has a model, no usage, one choice without a finish reason whose delta is only a text,
    and scalars everywhere else (shared by the chunks built from it); its text is one line.
    """
    choices = chunk.get("choices")
    if "\n" in text or not chunk.get("model") or chunk.get("usage") or choices.__class__ is not list or len(choices) != 1:
        return False, None
    choice = choices[0]
    if choice.__class__ is not dict or choice.get("finish_reason"):
        return False, None
    delta = choice.get("delta")
    content = delta.get("content") if delta.__class__ is dict and len(delta) == 1 else None
    if content.__class__ is not str or any(v.__class__ not in _SCALARS for k, v in chunk.items() if k != "choices") or any(
            v.__class__ not in _SCALARS for k, v in choice.items() if k != "delta"):
        return False, None
    other = "0" if content != "0" else "1"
    for key in _KEY.finditer(text):
        start = key.end()
        try:
            value, after = _scan_string(text, start)
        except ValueError:
            continue
        if value != content:
            continue
        tpl = (text[:start], text[after - 1:], start, len(text) - after + 1, dict(chunk), dict(choice))
        # The proof: the same text with another string there is the same chunk with that content.
        try:
            ok = parse(tpl[0] + other + tpl[1]) == build(tpl, other, "") and build(tpl, content, "") == chunk
        except Exception:
            ok = False
        if ok:
            return True, tpl
    return True, None
