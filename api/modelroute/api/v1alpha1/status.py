"""The ModelRoute status, owned by the operator and computed by pure functions."""


from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelroute.api.v1alpha1.base import ApiModel
from modelroute.api.v1alpha1.strategy import RolloutStatus

MAX_POD_FAILURES = 10


class Phase(StrEnum):
    PENDING = "Pending"
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    CONFLICT = "Conflict"
    INVALID = "Invalid"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    type: str = Field(description="Ready, Synced, Degraded, Conflict or ModelDeprecated.", max_length=64)
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One CamelCase word a machine can match on.", max_length=128)
    message: str = Field(default="", description="What happened and what to do about it.", max_length=4096)
    last_transition_time: datetime | None = Field(default=None, description="When the status last changed.")
    observed_generation: int | None = Field(default=None, description="The spec generation this condition describes.")


class PodCounts(ApiModel):
    selected: int = Field(default=0, description="Sidecar pods the selector matches.", ge=0)
    synced: int = Field(default=0, description="Selected pods whose sidecar serves the current config.", ge=0)
    failed: int = Field(default=0, description="Selected pods whose last push failed.", ge=0)


class PodFailure(ApiModel):
    pod: str = Field(description="Name of the pod.", max_length=253)
    reason: str = Field(description="Why the push failed, in one CamelCase word.", max_length=128)
    message: str = Field(default="", description="Details of the failure.", max_length=1024)


class ModelRouteStatus(ApiModel):
    observed_generation: int | None = Field(default=None, description="The spec generation the operator last acted on.")
    phase: Phase | None = Field(default=None, description="Summary: Pending, Ready, Progressing, Degraded, Conflict or Invalid.")
    config_hash: str | None = Field(default=None, description="Hash of this route's accepted spec as the sidecars serve it.", max_length=128)
    primary_target: str | None = Field(default=None, description="Provider/model of the first target (for `kubectl get`).", max_length=300)
    pods: PodCounts = Field(default_factory=lambda: PodCounts(), description="How many selected pods serve this route.")
    failures: list[PodFailure] = Field(default_factory=lambda: [], description=f"Per-pod failure reasons (at most {MAX_POD_FAILURES}).", max_length=MAX_POD_FAILURES)
    rollout: RolloutStatus | None = Field(default=None, description="Progressive delivery of the newest revision: phase, step, weights, analysis.")
    conditions: list[Condition] = Field(default_factory=lambda: [], description="Ready, Synced, and Degraded or Conflict when they apply.", max_length=16)
