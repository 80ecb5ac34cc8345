"""Tolerant reading of what small models actually answer.

Asked for "JSON only" or "the label only", small models still wrap the answer in code
fences, put a sentence before or after it, leave a trailing comma, or answer
``"Billing."`` for the label ``billing``. These readers accept those forms and nothing
looser: an answer that names two labels, or holds no parseable JSON, is an ``OutputError``
(its message is what the repair prompt feeds back to the model).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_EDGE_PUNCT = " \t\r\n\"'`*_.,;:!?()[]{}<>"
_PREFIX = re.compile(r"^(?:the\s+)?(?:label|category|class|answer|classification|intent)\s*(?:is)?\s*[:=\-]?\s*", re.IGNORECASE)


class OutputError(ValueError):
    """The answer does not meet the route's output contract. ``str(e)`` is safe to show and to feed back."""


def strip_fences(text: str) -> str:
    """The body of the first fenced code block, or ``text`` stripped when there is none."""
    m = _FENCE.search(text)
    return m.group(2).strip() if m else text.strip()


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes ``text[start]`` (strings respected), or None."""
    stack: list[str] = []
    in_string = False
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
    return None


def _without_trailing_commas(text: str) -> str:
    """``text`` with commas before ``}`` / ``]`` removed, outside strings only."""
    out: list[str] = []
    last = 0
    for m in re.finditer(r'"(?:[^"\\]|\\.)*"', text):
        out.append(_TRAILING_COMMA.sub(r"\1", text[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_TRAILING_COMMA.sub(r"\1", text[last:]))
    return "".join(out)


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        if "," not in text:
            raise
        return json.loads(_without_trailing_commas(text))


def _first_span(text: str) -> Any:
    """The first balanced ``{...}`` / ``[...]`` span of ``text``, parsed. Raises ``ValueError``."""
    for i, ch in enumerate(text):
        if ch in "{[":
            end = _balanced_end(text, i)
            if end is None:
                raise ValueError("unbalanced brackets")
            return _loads(text[i:end])
    raise ValueError("no JSON object or array")


def extract_json(text: str | None) -> Any:
    """The JSON value in a model's answer: fenced, surrounded by prose, or with trailing commas.

    Tries, in order: the whole answer; the first fenced block; the first balanced ``{...}``
    or ``[...]`` span (prose around it ignored). Raises ``OutputError`` when none parses.
    """
    if text is None or not text.strip():
        raise OutputError("the answer is empty; expected a JSON value")
    stripped = text.strip()
    candidates = [stripped]
    if "```" in stripped:
        fenced = strip_fences(stripped)
        candidates = [fenced] if stripped.startswith("```") else [stripped, fenced]
    first_error: ValueError | None = None
    for candidate in candidates:
        try:
            return _loads(candidate)
        except ValueError as e:
            first_error = first_error or e
        try:
            return _first_span(candidate)
        except ValueError:
            pass
    raise OutputError(f"the answer is not valid JSON ({first_error})")


def normalize_label(text: str) -> str:
    """Case-folded label with surrounding quotes, markup, punctuation and whitespace removed."""
    return " ".join(text.strip(_EDGE_PUNCT).casefold().split())


class LabelSet:
    """The allowed labels of a route, indexed once for fast tolerant matching."""

    __slots__ = ("_by_norm", "labels")

    def __init__(self, labels: Iterable[str]) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        if not self.labels:
            raise ValueError("a label set needs at least one label")
        self._by_norm: dict[str, str] = {}
        for label in self.labels:
            norm = normalize_label(label)
            if norm in self._by_norm and self._by_norm[norm] != label:
                raise ValueError(f"labels {self._by_norm[norm]!r} and {label!r} differ only in case or punctuation")
            self._by_norm[norm] = label

    def match(self, answer: str | None) -> str:
        """The label the answer names, spelled as configured. Raises ``OutputError``.

        Accepted: the label alone in any case, quoted, fenced, with trailing punctuation,
        after a ``Label:`` prefix, as ``{"label": ...}`` JSON, or as the only label named
        (whole words) in a short sentence. Two labels named, or none, is an error.
        """
        if answer is None or not answer.strip():
            raise OutputError(f"the answer is empty; expected one of: {', '.join(self.labels)}")
        text = strip_fences(answer)
        if text[:1] in "{[":
            try:
                value = _loads(text)
            except ValueError:
                value = None
            if isinstance(value, dict) and len(value) == 1:
                value = next(iter(value.values()))
            if isinstance(value, str):
                text = value
        for first_line in (text, text.splitlines()[0] if text.splitlines() else text):
            norm = normalize_label(_PREFIX.sub("", first_line.strip(_EDGE_PUNCT)))
            found = self._by_norm.get(norm)
            if found is not None:
                return found
        named = self._named_in(text)
        if len(named) == 1:
            return named[0]
        shown = answer.strip()
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        if named:
            raise OutputError(f"the answer {shown!r} names several labels ({', '.join(named)}); answer with exactly one of: {', '.join(self.labels)}")
        raise OutputError(f"the answer {shown!r} is not one of the allowed labels: {', '.join(self.labels)}")

    def _named_in(self, text: str) -> list[str]:
        folded = " " + " ".join(re.split(r"[^\w-]+", text.casefold())) + " "
        return [label for norm, label in self._by_norm.items() if f" {norm} " in folded]
