"""A route's output contract, compiled once: what a valid answer is, and how to ask again.

``OutputContract`` is built when the config is compiled (``from_api`` for the route's
``output`` block) so that the per-request work is only parsing and validating the answer.
``check(text)`` returns the value the answer stands for (the label as configured, the JSON
value, or the text) or raises ``OutputError``; ``check_completion`` does the same for a
``chat.completion``. ``repair_request`` is the pure builder of the repair turn that feeds
the validation error back to the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from modelroute.sidecar.output.parse import LabelSet, OutputError, extract_json
from modelroute.sidecar.output.schema import DEFAULT_CACHE, SchemaCache, validate
from modelroute.sidecar.translate.chat import answer_text, answer_tool_calls

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

Json = dict[str, Any]

DEFAULT_REPAIR_ATTEMPTS = 1


class Mode(StrEnum):
    TEXT = "text"
    JSON = "json"
    SCHEMA = "schema"


@dataclass(frozen=True, slots=True)
class OutputContract:
    """What a valid answer is. Build with ``OutputContract.build`` (it compiles the validator)."""

    mode: Mode
    schema: Json | None = None
    validator: Validator | None = None
    labels: LabelSet | None = None
    repair_attempts: int = DEFAULT_REPAIR_ATTEMPTS

    @classmethod
    def build(
        cls,
        mode: Mode | str = Mode.TEXT,
        *,
        schema: Json | None = None,
        labels: Iterable[str] | None = None,
        repair_attempts: int = DEFAULT_REPAIR_ATTEMPTS,
        cache: SchemaCache = DEFAULT_CACHE,
    ) -> OutputContract:
        """Compile a contract. Raises ``InvalidSchema`` / ``ValueError`` (config errors, not answer errors)."""
        mode = Mode(mode)
        if mode is Mode.SCHEMA and schema is None:
            raise ValueError("output mode schema needs a schema")
        validator = cache.validator(schema) if schema is not None else None
        label_set = LabelSet(labels) if labels else None
        return cls(mode, schema, validator, label_set, repair_attempts)

    @classmethod
    def from_api(cls, output: Any, cache: SchemaCache = DEFAULT_CACHE) -> OutputContract:
        """From the API ``Output`` model (``mode``, ``schema_``, ``labels``, ``repair_attempts``)."""
        return cls.build(output.mode.value if hasattr(output.mode, "value") else output.mode,
                         schema=output.schema_, labels=output.labels or None,
                         repair_attempts=output.repair_attempts, cache=cache)

    def with_overrides(self, *, schema: Json | None = None, labels: Iterable[str] | None = None,
                       cache: SchemaCache = DEFAULT_CACHE) -> OutputContract:
        """This contract with a task request's own schema or labels (validators come from the cache)."""
        out = self
        if schema is not None:
            out = replace(out, mode=Mode.SCHEMA, schema=schema, validator=cache.validator(schema))
        if labels:
            out = replace(out, labels=LabelSet(labels))
        return out

    @property
    def constrains(self) -> bool:
        """False for plain text without labels: nothing to check, no repair, no native mode."""
        return self.mode is not Mode.TEXT or self.labels is not None

    def check(self, text: str | None) -> Any:
        """The value the answer stands for. Raises ``OutputError`` with a message fit for a repair turn."""
        if self.labels is not None and self.mode is Mode.TEXT:
            return self.labels.match(text)
        if self.mode is Mode.TEXT:
            return text
        value = extract_json(text)
        if self.validator is not None:
            validate(self.validator, value)
        return value

    def check_completion(self, completion: Json) -> Any:
        """``check`` on choice 0 of a ``chat.completion``. Tool-call answers are not checked (None)."""
        choices = completion.get("choices") or ()
        if not choices:
            raise OutputError("the answer has no choices")
        if answer_tool_calls(completion):
            return None
        return self.check(answer_text(completion))

    def expectation(self) -> str:
        """One sentence saying what a valid answer looks like (for prompts and repair turns)."""
        if self.labels is not None and self.mode is Mode.TEXT:
            return "Answer with exactly one of these labels and nothing else: " + ", ".join(self.labels.labels) + "."
        if self.mode is Mode.SCHEMA:
            from modelroute.sidecar.translate.chat import dumps

            return f"Answer with one JSON value only (no prose, no code fences) that conforms to this JSON Schema: {dumps(self.schema)}"
        if self.mode is Mode.JSON:
            return "Answer with one valid JSON value only: no prose, no code fences."
        return "Answer again."


def repair_request(request: Json, bad_answer: str | None, error: str | OutputError, *, contract: OutputContract | None = None) -> Json:
    """``request`` plus the repair turn: the rejected answer as the assistant's, then the error.

    Pure: returns a shallow copy with a new ``messages`` list. ``stream`` is kept as is (the
    caller decides); apply it once per repair attempt (``contract.repair_attempts``).
    """
    reason = str(error)
    ask = contract.expectation() if contract is not None else "Reply with only the corrected answer."
    turn = f"Your previous answer was rejected: {reason}\n{ask}"
    out = dict(request)
    out["messages"] = [*(request.get("messages") or []), {"role": "assistant", "content": bad_answer or ""},
                       {"role": "user", "content": turn}]
    return out
