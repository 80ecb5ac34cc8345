"""One readable line per pydantic validation error, the same on both sides of the API.

The operator (ModelRoute status, webhook-less validation) and the sidecar (config files, ``PUT
/config`` bodies, pushes, bundles) report a model that does not validate the same way: the field
path in the resource's own spelling (``spec.targets[0].provider``) and pydantic's message without
its ``Value error, `` prefix, optionally after a ``where`` saying which document it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_path(loc: Iterable[int | str]) -> str:
    """``("spec", "targets", 0, "provider")`` -> ``spec.targets[0].provider``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def error_line(err: Mapping[str, Any]) -> str:
    """``path: message`` for one entry of ``ValidationError.errors()`` (just the message at the root)."""
    path = field_path(err.get("loc", ()))
    if err.get("type") == "too_short" and path.endswith("spec.targets"):
        msg = "a route needs at least one target"
    else:
        msg = str(err.get("msg", "invalid"))
        for prefix in _PREFIXES:
            msg = msg.removeprefix(prefix)
    return f"{path}: {msg}" if path else msg


def validation_problems(exc: ValidationError, where: str = "") -> list[str]:
    """One line per error of ``exc`` (never the offending input, which may hold a key), each after ``where: ``."""
    lead = f"{where}: " if where else ""
    return [lead + error_line(err) for err in exc.errors(include_url=False, include_input=False)]


class Problems(Exception):
    """Input refused with one human-readable line per problem (``problems``), all found at once.

    The base of the sidecar's config, push and dataset errors: each 4xx lists the same lines.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
