"""Inbound request bodies: decompressed, parsed and checked before anything reads them.

Pure functions (bytes in, JSON value or ``BodyError`` out), shared by every inbound endpoint,
so that no body can cost a 500, a breaker trip or a fetch further down:

* ``Content-Encoding`` is decoded here (the inbound listener turns aiohttp's automatic
  decompression off), bounded by the body limit, so a body that does not decompress is a 400 and a
  decompression bomb a 413;
* the JSON must be UTF-8 and nest at most ``MAX_DEPTH`` levels; integers longer than Python's
  4,300 digits, ``NaN``, ``Infinity`` (also a float literal too big for a double) and lone UTF-16
  surrogates (``"\\ud800"``) are refused with the path of the field: no SDK or JSON encoder can
  send them upstream.

Cheap on the hot path: the walk that names the field runs only when something is wrong (the parser
saw a non-finite number, a regex finds an unpaired surrogate escape, or a level-by-level pass over
the containers, run when the text has more brackets than ``MAX_DEPTH``, finds them too deep); an
ordinary chat body costs two ``str.count`` passes beyond ``json.loads``.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Any

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted in a request body."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class BodyError(ValueError):
    """A body the sidecar refuses: ``status`` (400, 413 or 415), a message saying what and where, the field."""

    def __init__(self, message: str, *, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param


def decode_content(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` (identity, gzip or deflate) undone, at most ``limit`` bytes."""
    coding = (encoding or "").strip().lower()
    if coding in ("", "identity"):
        return raw
    if coding in ("gzip", "x-gzip"):
        return _inflate(raw, 16 + zlib.MAX_WBITS, coding, limit)
    if coding == "deflate":
        try:
            return _inflate(raw, zlib.MAX_WBITS, coding, limit)
        except BodyError as e:
            if e.status == 413:
                raise
            return _inflate(raw, -zlib.MAX_WBITS, coding, limit)  # raw deflate, as some clients send it
    raise BodyError(f"Content-Encoding {encoding!r} is not supported: send identity, gzip or deflate", status=415)


def _inflate(raw: bytes, wbits: int, coding: str, limit: int) -> bytes:
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(raw, limit + 1)
    except zlib.error:
        raise BodyError(f"the request body is not valid {coding} data (Content-Encoding: {coding})") from None
    if len(out) > limit:
        raise BodyError(f"the decompressed request body exceeds the limit of {limit} bytes", status=413)
    if not d.eof:
        raise BodyError(f"the request body is truncated {coding} data (Content-Encoding: {coding})")
    return out


class _NonFinite:
    """What the parser puts where the body had ``NaN``, ``Infinity`` or an overflowing float.

    ``made`` counts the instances ever made: ``parse_json`` compares it before and after a parse
    instead of building a decoder with per-call callbacks for every body (a parse in another
    thread can only make it look at a body that is fine: the walk then finds nothing).
    """

    __slots__ = ("literal",)
    made = 0

    def __init__(self, literal: str) -> None:
        self.literal = literal
        _NonFinite.made += 1


def _number(literal: str) -> float | _NonFinite:
    value = float(literal)
    return value if value - value == 0.0 else _NonFinite(literal)


_decode = json.JSONDecoder(parse_constant=_NonFinite, parse_float=_number).decode


def parse_json(raw: bytes) -> Any:
    """The JSON value of a request body; raises ``BodyError`` naming what is wrong and where."""
    try:
        text = raw.decode("utf-8")  # strict: UTF-8-encoded surrogates are refused here
    except UnicodeDecodeError as e:
        raise BodyError(f"the request body is not UTF-8 (invalid byte at offset {e.start})") from None
    if text.startswith("\ufeff"):  # as json.loads says it (the decoder alone does not look)
        raise BodyError("the request body is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) "
                        "at line 1 column 1")
    made = _NonFinite.made
    try:
        value = _decode(text)
    except RecursionError:
        raise BodyError(f"the request body nests arrays and objects too deeply (the limit is {MAX_DEPTH} levels)") from None
    except json.JSONDecodeError as e:
        raise BodyError(f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise BodyError("the request body has an integer with more than 4300 digits") from None
    if (_NonFinite.made != made or (("\\ud" in text or "\\uD" in text) and unpaired_escape(text))
            or (text.count("[") + text.count("{") > MAX_DEPTH and deeper_than(value, MAX_DEPTH))):
        problem = find_problem(value)
        if problem is not None:
            raise BodyError(f"{problem[0]}: {problem[1]}", param=problem[0])
    return value


def unpaired_escape(text: str) -> bool:
    """True when a ``\\uD800``-``\\uDFFF`` escape in ``text`` is not half of a surrogate pair.

    May say True for an escaped backslash before ``u`` (text, not an escape): the walk then clears it.
    """
    expect_low_at = -1
    for m in _SURROGATE_ESCAPE.finditer(text):
        low = m.group()[3] in "cdefCDEF"
        if low != (m.start() == expect_low_at):
            return True  # a low half with no high half before it, or a high half not followed by a low one
        expect_low_at = -1 if low else m.end()
    return expect_low_at != -1  # a high half at the very end


def deeper_than(value: Any, limit: int) -> bool:
    """True when arrays and objects nest more than ``limit`` levels (level by level: no recursion, no paths)."""
    level = [value]
    for _ in range(limit):
        below: list[Any] = []
        for v in level:
            for x in (v.values() if v.__class__ is dict else v):
                if x.__class__ is dict or x.__class__ is list:
                    below.append(x)
        if not below:
            return False
        level = below
    return True


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def find_problem(value: Any) -> tuple[str, str] | None:
    """(path, what) of the first value no upstream can take, or None. Iterative: any depth is safe."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        v, path, depth = stack.pop()
        where = path or "body"
        if isinstance(v, dict):
            if depth >= MAX_DEPTH:
                return where, f"nested deeper than {MAX_DEPTH} levels of arrays and objects"
            for k, item in v.items():
                if _SURROGATE.search(k):
                    return where, f"key {_shown(k)} holds a lone UTF-16 surrogate, which is not valid Unicode"
                stack.append((item, _join(path, k), depth + 1))
        elif isinstance(v, list):
            if depth >= MAX_DEPTH:
                return where, f"nested deeper than {MAX_DEPTH} levels of arrays and objects"
            stack.extend((item, _join(path, i), depth + 1) for i, item in enumerate(v))
        elif isinstance(v, str):
            if _SURROGATE.search(v):
                return where, "the string holds a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode"
        elif isinstance(v, _NonFinite):
            return where, f"{v.literal[:20]} is not a finite number (NaN and Infinity are not valid JSON)"
    return None


def _shown(text: str) -> str:
    return repr(text[:40].encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace"))
