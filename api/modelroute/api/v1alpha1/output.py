"""A route's output contract (``spec.output``) and the prompt template rules of ``spec.prompt``.

``Output`` says what a valid answer is: free text, any JSON, JSON that matches a JSON
Schema, or one of a set of labels. The schema is arbitrary JSON, so in the CRD it is an
object with ``x-kubernetes-preserve-unknown-fields`` (the apiserver keeps it as written)
and is checked here, as a JSON Schema, when the config is validated (sidecar start,
``PUT /config``, the operator's status), never at request time.

Prompt templates (``Prompt.user`` in ``spec.py``) use ``{{name}}`` placeholders; ``input``,
``labels`` and ``schema`` are built in (``BUILTIN_VARIABLES``), other names come from the
request's or the prompt's ``variables``.
"""


import re
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Field, WithJsonSchema, model_validator

from modelroute.api.schemasafety import schema_problem
from modelroute.api.v1alpha1.base import ApiModel

MAX_LABELS = 256
BUILTIN_VARIABLES = frozenset({"input", "labels", "schema"})
VARIABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

JsonObject = Annotated[
    dict[str, Any],
    WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
]


class OutputMode(StrEnum):
    TEXT = "text"
    JSON = "json"
    SCHEMA = "schema"


class Output(ApiModel):
    """The route's output contract: every answer is checked against it, repaired or refused."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "self.mode != 'schema' || has(self.schema)", "message": "output mode schema needs a schema", "fieldPath": ".schema"},
        {"rule": "!has(self.labels) || size(self.labels) == 0 || self.mode == 'text'",
         "message": "labels apply to mode text (one label per answer)", "fieldPath": ".labels"},
    ]})

    mode: OutputMode = Field(default=OutputMode.TEXT, description="text: free text (or one of labels); json: any JSON value; schema: JSON matching schema.")
    schema_: JsonObject | None = Field(
        default=None, alias="schema",
        description="JSON Schema the answer must match (mode schema). Requested natively where the provider supports structured outputs, else put in the prompt.",
    )
    labels: list[str] = Field(
        default_factory=lambda: [], max_length=MAX_LABELS,
        description="Allowed answers for classification (mode text): the answer must name exactly one; case and punctuation are tolerated.",
    )
    repair_attempts: int = Field(
        default=1, ge=0, le=3,
        description="Repair retries on the same target that feed the validation error back, before falling back to the next target.",
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.mode is OutputMode.SCHEMA and self.schema_ is None:
            raise ValueError("output mode schema needs a schema")
        if self.labels and self.mode is not OutputMode.TEXT:
            raise ValueError("output labels apply to mode text")
        if len({label.strip().casefold() for label in self.labels}) != len(self.labels) or any(not x.strip() for x in self.labels):
            raise ValueError("output labels must be non-empty and distinct (ignoring case)")
        if self.schema_ is not None:
            problem = schema_problem(self.schema_)
            if problem is not None:
                raise ValueError(f"output schema: {problem}")
            from jsonschema import Draft202012Validator
            from jsonschema.exceptions import SchemaError
            from jsonschema.validators import validator_for

            try:
                validator_for(self.schema_, default=Draft202012Validator).check_schema(self.schema_)
            except SchemaError as e:
                raise ValueError(f"output schema is not a valid JSON Schema: {e.message}") from None
        return self
