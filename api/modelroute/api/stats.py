"""What a sidecar's ``GET /stats`` promises the operator: rollout evidence and limiter state.

The sidecar writes these models (``modelroute.sidecar.rollout.evidence``, ``modelroute.sidecar.pipeline.limits``)
and the operator reads them (``modelroute.operator.rollout.counters``, ``modelroute.operator.quota``),
so a field added on one side is type-checked on the other. The rest of ``/stats`` (per-route
counters, cost, cache) is for people and dashboards: ``SidecarStats`` ignores it.

Counters are cumulative per sidecar process; a new rollout run id starts them from zero.
"""


from datetime import datetime
from typing import Self

from pydantic import ConfigDict, Field, model_validator

from modelroute.api.v1alpha1 import ApiModel
from modelroute.api.v1alpha1.strategy import VARIANTS as VARIANTS


class LatencyHistogram(ApiModel):
    """Latency of answered requests: per-bucket (not cumulative) counts for upper bounds plus +Inf."""

    le: list[float] = Field(default_factory=lambda: [], description="Ascending upper bounds of the buckets, in seconds.")
    counts: list[int] = Field(default_factory=lambda: [0], description="Requests per bucket; one more than `le` (the last is +Inf).")
    sum: float = Field(default=0.0, ge=0, description="Sum of all observed latencies in seconds.")

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if len(self.counts) != len(self.le) + 1:
            raise ValueError(f"histogram needs {len(self.le) + 1} counts (one per bound and +Inf), got {len(self.counts)}")
        if self.le != sorted(self.le):
            raise ValueError("histogram bounds must ascend")
        return self


class TokenCounts(ApiModel):
    """Tokens of answered requests, as the providers reported them."""

    prompt: int = Field(default=0, ge=0, description="Input (prompt) tokens.")
    completion: int = Field(default=0, ge=0, description="Output (completion) tokens.")


class CostCounts(ApiModel):
    """Cost of answered requests whose model has a price."""

    usd: float = Field(default=0.0, ge=0, description="Total cost in US dollars.")
    priced: int = Field(default=0, ge=0, description="Requests whose cost is known (their model has a price).")


class OutputCounts(ApiModel):
    """The output check of answered requests."""

    checked: int = Field(default=0, ge=0, description="Answers checked.")
    valid: int = Field(default=0, ge=0, description="Answers that passed (non-empty; JSON or schema-valid when asked).")


class AgreementCounts(ApiModel):
    """Mirrored answers compared with the stable answer to the same request."""

    compared: int = Field(default=0, ge=0, description="Mirrored answers compared with stable's.")
    agreed: int = Field(default=0, ge=0, description="Of those, the ones that agreed (same answer text, label or JSON).")
    task_compared: int = Field(default=0, ge=0, description="Of the compared, mirrored task requests (POST /v1/classify, /v1/extract).")
    task_agreed: int = Field(default=0, ge=0, description="Of those, the ones with the same normalised label or equal extracted JSON.")


class VariantCounters(ApiModel):
    """Cumulative evidence about one variant of one rollout run in one sidecar process."""

    requests: int = Field(default=0, ge=0, description="Answered or failed requests (a cancelled one is not counted).")
    errors: dict[str, int] = Field(default_factory=lambda: {},
                                   description="Failed requests by class: a FailureKind of the last attempt, or deadline, "
                                               "client_error, stream_error, exhausted, cancelled.")
    latency: LatencyHistogram = Field(default_factory=lambda: LatencyHistogram(), description="Latency of answered requests.")
    tokens: TokenCounts = Field(default_factory=lambda: TokenCounts(), description="Tokens of answered requests.")
    cost: CostCounts = Field(default_factory=lambda: CostCounts(), description="Cost of answered requests.")
    outputs: OutputCounts = Field(default_factory=lambda: OutputCounts(), description="Output checks of answered requests.")
    agreement: AgreementCounts = Field(default_factory=lambda: AgreementCounts(), description="Mirror agreement with stable.")
    dropped: int = Field(default=0, ge=0, description="Mirror only: copies not sent because the mirror pool was full.")


class RolloutWeights(ApiModel):
    """The shares a sidecar applies for one run (zero once the run is no longer served)."""

    canary: int = Field(default=0, ge=0, le=100, description="Percent of live requests answered by the canary.")
    mirror: int = Field(default=0, ge=0, le=100, description="Percent of live requests copied to the canary.")


class RunEvidence(ApiModel):
    """One rollout run of one route as one sidecar counted it."""

    run: str = Field(description="The run id (`<canaryRevision>.<attempt>`): counters start at zero for a new one.")
    revision: str = Field(description="The canary revision of the run.")
    active: bool = Field(default=True, description="Whether the sidecar still serves this run.")
    weights: RolloutWeights = Field(default_factory=lambda: RolloutWeights(), description="The shares applied.")
    variants: dict[str, VariantCounters] = Field(default_factory=lambda: {},
                                                 description="Counters per variant: stable, canary, mirror.")


class LimiterSnapshot(ApiModel):
    """One target's local rate limiter: its limits, the current window and the pressure flag."""

    requests_per_minute: float | None = Field(default=None, description="Request limit per minute; null when unlimited.")
    tokens_per_minute: float | None = Field(default=None, description="Token limit per minute; null when unlimited.")
    window_requests: int = Field(default=0, ge=0, description="Requests in the current one-minute window.")
    window_tokens: int = Field(default=0, ge=0, description="Tokens in the current one-minute window.")
    utilisation: dict[str, float] = Field(default_factory=lambda: {},
                                          description="Fraction (0..1) of each quota in use, by dimension (requests, tokens).")
    pressure: bool = Field(default=False, description="Whether any quota is at or above the pressure threshold (80%).")
    admitted: int = Field(default=0, ge=0, description="Requests admitted since start.")
    refused: int = Field(default=0, ge=0, description="Requests refused since start.")
    blocked_for_seconds: float = Field(default=0.0, ge=0, description="Seconds until a provider-imposed block ends.")


class QuotaReport(ApiModel):
    """One ProviderQuota as one sidecar holds it: the lease, what it enforces now, what it used."""

    generation: int = Field(default=0, ge=0, description="Generation of the lease held (0: none, the bundle's terms only).")
    state: str = Field(description="lease (the share), shrunk (expired: min of share and limit / podCount), "
                                   "fallback (limit / podCount), joining (no lease yet: nothing), conservative (limit / (podCount + 1) from the bundle).")
    requests_per_minute: float | None = Field(default=None, description="The cap enforced now on requests per minute (all governed targets).")
    tokens_per_minute: float | None = Field(default=None, description="The cap enforced now on tokens per minute (all governed targets).")
    expires_at: datetime | None = Field(default=None, description="When the lease ends without renewal.")
    window_requests: int = Field(default=0, ge=0, description="Requests in the last minute on the governed targets.")
    window_tokens: int = Field(default=0, ge=0, description="Tokens in the last minute on the governed targets.")
    refused: int = Field(default=0, ge=0, description="Requests the governed targets' limiters refused since start (demand not served).")
    tokens_total: int = Field(default=0, ge=0, description="Tokens sent on the governed targets since start (corrected from usage).")
    cost_total_usd: float = Field(default=0.0, ge=0, description="Cost in US dollars of the governed targets' usage since start "
                                                                 "(their price table x reported usage; daily cost budgets are summed from it).")
    remaining_tokens: float | None = Field(default=None, description="The provider's remaining tokens in its window, from the latest response headers.")
    remaining_requests: float | None = Field(default=None, description="The provider's remaining requests in its window, from the latest response headers.")


class _Lenient(ApiModel):
    """A read view of part of ``/stats``: the fields people read are not part of the contract."""

    model_config = ConfigDict(extra="ignore")


class TargetStatsView(_Lenient):
    """What the operator reads of one target in ``/stats``."""

    limits: LimiterSnapshot | None = Field(default=None, description="The target's limiter, when it has `limits`.")


class RouteStatsView(_Lenient):
    """What the operator reads of one route in ``/stats``."""

    targets: dict[str, TargetStatsView] = Field(default_factory=lambda: {}, description="Per target.")


class SidecarStats(_Lenient):
    """What the operator reads of a sidecar's ``/stats`` document."""

    routes: dict[str, RouteStatsView] = Field(default_factory=lambda: {}, description="Per route name.")
    rollouts: dict[str, RunEvidence] = Field(default_factory=lambda: {},
                                             description="The current (or last) rollout run per route name.")
    quotas: dict[str, QuotaReport] = Field(default_factory=lambda: {}, description="Per ProviderQuota (namespace/name): lease and usage.")
