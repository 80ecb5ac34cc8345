"""OpenAI stream chunks read from their text, without a JSON parse: the common content chunk.

A stream's content chunks differ only in their text and, from OpenAI, in their ``obfuscation``
padding (random characters on every chunk unless ``stream_options.include_obfuscation`` is false):
id, model, created time, fingerprint and every other field repeat. Parsing each one with ``json``
(to learn that nothing else changed) was the largest cost of relaying it. ``learn`` cuts one
chunk's JSON text around its content string and, when it has one, its top-level ``obfuscation``
string (a prefix, a middle between the two strings, a suffix) and proves the cut: the text with
other strings in those places parses to the same chunk with those strings. A later event whose text
is the prefix, a JSON string, the middle, a JSON string and the suffix is then, token for token,
that chunk with its own strings: the same dict ``json`` would build (``build``) and the same text,
so the OpenAI wire writes the same bytes. Everything else (other shapes, another id, usage, a finish
reason, a string that is not one JSON string up to the next part) takes the full parse
(``OpenAIStreamToChat.feed_events``).
"""

from __future__ import annotations

import json.decoder
import re
from collections.abc import Callable
from typing import Any

from modelroute.sidecar.translate.chat import RawChunk

Json = dict[str, Any]

Template = tuple[str, str, int, int, Json, Json, str | None, int, bool]
"""A chunk shape: the text before its first string's first character and from its last string's
closing quote on, their lengths, the chunk's top-level fields (``choices`` and ``obfuscation``
replaced per chunk) and its one choice; with an ``obfuscation`` hole, the text from the first
string's closing quote to the second string's first character, its length, and whether the content
string comes first (None, 0, True: the content string is the only hole)."""

_SCALARS = (str, int, float, bool, type(None))  # values shared by the chunks built from a template
_KEY = re.compile(r'"content"[ \t\r]*:[ \t\r]*"')  # a key and the opening quote of its string value
_PAD = re.compile(r'"obfuscation"[ \t\r]*:[ \t\r]*"')
_scan_string: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]  # json's own (C), strict as its parser
_new_dict = dict.__new__
_fill = dict.update
_set = dict.__setitem__


def build(tpl: Template, content: str, text: str, pad: str = "") -> RawChunk:
    """The chunk ``tpl`` stands for with ``content`` as its text and ``pad`` as its ``obfuscation`` if it
    has that hole (``text``: its JSON), a new dict each time."""
    out: RawChunk = _new_dict(RawChunk)
    _fill(out, tpl[4])
    _set(out, "choices", [{**tpl[5], "delta": {"content": content}}])  # keeps the key's place
    if tpl[6] is not None:
        _set(out, "obfuscation", pad)
    out.raw = text
    return out


def string_at(text: str, start: int, end: int) -> str | None:
    """The value of the JSON string whose first character is at ``start`` when its closing quote is at ``end``, else None."""
    try:
        value, after = _scan_string(text, start)
    except ValueError:  # not a JSON string (a control character, a bad escape): the parse says how
        return None
    return value if after == end + 1 else None


def _strings(text: str, key: re.Pattern[str], value: str) -> list[tuple[int, int]]:
    """Where the strings of ``key`` whose value is ``value`` start and end (their closing quote)."""
    out = []
    for m in key.finditer(text):
        try:
            got, after = _scan_string(text, m.end())
        except ValueError:
            continue
        if got == value:
            out.append((m.end(), after - 1))
    return out


def _other(value: str, *taken: str) -> str:
    """A one-character string that is neither ``value`` nor one of ``taken``."""
    return next(c for c in "0123" if c != value and c not in taken)


def learn(text: str, chunk: Json, parse: Callable[[str], Json]) -> tuple[bool, Template | None]:
    """Whether ``chunk`` (parsed from ``text``) is the common content chunk, and its template if its
    text could be cut (None: the shape, but not a text ``learn`` can prove a cut of).

    That chunk has a model, no usage, one choice without a finish reason whose delta is only a text,
    and scalars everywhere else (shared by the chunks built from it, but for a string ``obfuscation``);
    its text is one line.
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
    pad = chunk.get("obfuscation")
    pads: list[tuple[int, int] | None] = [*_strings(text, _PAD, pad)] if pad.__class__ is str else [None]
    other = _other(content)
    other_pad = _other(pad, other) if pad.__class__ is str else ""
    top, one = dict(chunk), dict(choice)
    for start, end in _strings(text, _KEY, content):
        for hole in pads:
            if hole is None:
                tpl: Template = (text[:start], text[end:], start, len(text) - end, top, one, None, 0, True)
                cut = tpl[0] + other + tpl[1]
            elif hole[1] < start or end < hole[0]:  # two strings, either order
                (a, b), (c, d) = sorted([(start, end), hole])
                mid, first = text[b:c], a == start
                tpl = (text[:a], text[d:], a, len(text) - d, top, one, mid, c - b, first)
                cut = tpl[0] + (other + mid + other_pad if first else other_pad + mid + other) + tpl[1]
            else:
                continue
            # The proof: the same text with other strings there is the same chunk with those strings.
            try:
                ok = parse(cut) == build(tpl, other, "", other_pad) and build(tpl, content, "", pad or "") == chunk
            except Exception:
                ok = False
            if ok:
                return True, tpl
    return True, None
