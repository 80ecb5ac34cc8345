"""Shared pydantic base and Kubernetes meta types for the modelroute API.

Every model here is part of the public API: the CRD schema is generated from these
classes, so every field carries a description (``kubectl explain`` shows it).
"""


from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP = "modelroute.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "ModelRoute"
PLURAL = "modelroutes"
SINGULAR = "modelroute"
SHORT_NAMES = ("mr",)

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ApiModel(BaseModel):
    """Base for all API types: camelCase on the wire, unknown fields rejected, immutable.

    Default factories are lambdas (``lambda: []``, ``lambda: Backoff()``), never a class such as
    ``list`` or a model: pydantic reads each factory's signature when it builds the model, and a
    builtin's costs ~0.6 M instructions (a model's builds its ``__signature__``) against ~0.05 M for a
    lambda: ~28 M of every sidecar start. Modules that define models do not use ``from __future__
    import annotations``: pydantic would compile and evaluate each field's annotation string (~14 M);
    a method's annotation that names a class not yet defined is quoted instead.
    ``tests/unit/api/test_model_cost.py`` keeps both so.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_enum_values=False,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it appears in YAML/JSON: camelCase, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def exactly_one_rule(aliases: tuple[str, ...], message: str) -> JsonDict:
    """The apiserver's CEL rule that exactly one of the fields ``aliases`` is set (``require_exactly_one``)."""
    return {"rule": f"[{', '.join(f'has(self.{a})' for a in aliases)}].filter(x, x).size() == 1", "message": message}


def require_exactly_one(values: tuple[object, ...], message: str) -> None:
    """The same check in Python: ``ValueError(message)`` unless exactly one of ``values`` is set."""
    if sum(v is not None for v in values) != 1:
        raise ValueError(message)


class SelectorOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(ApiModel):
    key: str = Field(description="The label key that the selector applies to.", min_length=1, max_length=317)
    operator: SelectorOperator = Field(description="How the key relates to the values: In, NotIn, Exists or DoesNotExist.")
    values: list[str] = Field(
        default_factory=lambda: [],
        description="Values for In and NotIn (must be non-empty there); must be empty for Exists and DoesNotExist.",
        max_length=64,
    )

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
         "message": "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist"},
    ]})

    @model_validator(mode="after")
    def _values_match_operator(self) -> Self:
        needs = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if needs != bool(self.values):
            raise ValueError(f"selector on {self.key!r}: values must be {'non-empty' if needs else 'empty'} for {self.operator.value}")
        return self


class LabelSelector(ApiModel):
    """A standard Kubernetes label selector; the requirements are ANDed."""

    match_labels: dict[str, str] = Field(
        default_factory=lambda: {},
        description="Pods must carry every one of these labels with exactly these values.",
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=lambda: [],
        description="Set-based requirements; pods must satisfy all of them.",
        max_length=32,
    )


class ObjectMeta(ApiModel):
    """The subset of Kubernetes object metadata that modelroute reads."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Name of the ModelRoute, unique in its namespace.", min_length=1, max_length=253)
    namespace: str | None = Field(default=None, description="Namespace of the ModelRoute (set by the cluster).")
    uid: str | None = Field(default=None, description="Cluster-assigned unique id.")
    generation: int | None = Field(default=None, description="Spec generation (set by the cluster).")
    creation_timestamp: datetime | None = Field(default=None, description="Creation time (set by the cluster).")
    labels: dict[str, str] = Field(default_factory=lambda: {}, description="Labels of the object.")
    annotations: dict[str, str] = Field(default_factory=lambda: {}, description="Annotations of the object.")
