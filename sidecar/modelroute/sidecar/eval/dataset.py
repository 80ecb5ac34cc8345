"""Golden datasets: JSONL, one case per line, turned into chat requests.

A line::

    {"id": "t1",                                   # optional; default: the line number
     "input": "My invoice is wrong",               # a user message, or a list of chat messages,
                                                   # or a request body without `model`
     "expected": "billing",                        # a label, or any JSON value (object, list...)
     "schema": {...}}                              # optional JSON Schema the output must satisfy

All problems are reported at once (``DatasetError.problems``), one line each, with the line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelroute.api.problems import Problems

Json = dict[str, Any]


class DatasetError(Problems):
    """A golden dataset with problems (one line each, with the line number)."""


@dataclass(frozen=True)
class Case:
    id: str
    request: Json                 # OpenAI chat request body without `model`
    expected: Any = None          # str label, any JSON value, or None (only validity is judged)
    schema: Json | None = None

    @property
    def expects_label(self) -> bool:
        return isinstance(self.expected, str)

    def request_for(self, route: str) -> Json:
        return {**self.request, "model": route}


def _request(value: Any) -> Json | None:
    if isinstance(value, str):
        return {"messages": [{"role": "user", "content": value}]}
    if isinstance(value, list) and all(isinstance(m, dict) and "role" in m for m in value) and value:
        return {"messages": value}
    if isinstance(value, dict) and isinstance(value.get("messages"), list) and value["messages"]:
        return {k: v for k, v in value.items() if k != "model"}
    return None


def parse_lines(lines: Iterable[str], source: str) -> list[Case]:
    """Cases from JSONL lines (blank lines and ``#`` comments skipped); raises ``DatasetError``."""
    cases: list[Case] = []
    problems: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{source}:{n}"
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{where}: not JSON ({e.msg} at column {e.colno})")
            continue
        if not isinstance(doc, dict):
            problems.append(f"{where}: expected an object with input and expected")
            continue
        request = _request(doc.get("input"))
        if request is None:
            problems.append(f"{where}: input must be a string, a non-empty list of chat messages, or a request with messages")
            continue
        schema = doc.get("schema")
        if schema is not None and not isinstance(schema, dict):
            problems.append(f"{where}: schema must be a JSON Schema object")
            continue
        cid = str(doc.get("id", n))
        if cid in seen:
            problems.append(f"{where}: id {cid!r} appears twice")
            continue
        seen.add(cid)
        cases.append(Case(cid, request, doc.get("expected"), schema))
    if not cases and not problems:
        problems.append(f"{source}: no cases")
    if problems:
        raise DatasetError(problems)
    return cases


def load(path: str | Path) -> list[Case]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise DatasetError([f"{p}: cannot read dataset ({type(e).__name__}: {e.strerror or e})"]) from None
    return parse_lines(text.splitlines(), str(p))
