"""The ProviderQuota resource: one organisation's (one API key's) rate limits, shared by every pod.

Why a resource of its own, not a field of ``targets[].limits``: a provider limits a key, not a
route or a pod. Many ModelRoutes (and every pod they select) may use the same key, so the quota is
declared once per key and governs every target that uses it: same ``provider`` and the same
``apiKey`` reference (the shape ModelRoute targets use, compared field by field), optionally
narrowed to some ``models`` (OpenAI and Anthropic limit per model within an organisation). Matching
by the key reference rather than by a label selector means a route cannot escape its key's quota
by forgetting a label, and nothing new has to be labelled. The operator splits the limits into
per-pod leases (``modelroute.api.leases``) and writes what it granted into the status.
"""


from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator

from modelroute.api.v1alpha1.base import ApiModel, ObjectMeta
from modelroute.api.v1alpha1.quotaterms import QuotaTerms as QuotaTerms
from modelroute.api.v1alpha1.quotaterms import governs
from modelroute.api.v1alpha1.spec import ApiKey, Provider
from modelroute.api.v1alpha1.status import Condition

QUOTA_KIND = "ProviderQuota"
QUOTA_PLURAL = "providerquotas"
QUOTA_SINGULAR = "providerquota"
QUOTA_SHORT_NAMES = ("pq",)
MAX_LEASES_LISTED = 64


class QuotaLimits(ApiModel):
    """What the provider allows this key; at least one of the per-minute limits must be set."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000_000,
                                            description="Requests the provider accepts per minute for this key (all pods together).")
    tokens_per_minute: int | None = Field(default=None, ge=1, le=100_000_000_000,
                                          description="Tokens (input + output) the provider accepts per minute for this key (all pods together).")
    daily_tokens: int | None = Field(default=None, ge=1, le=1_000_000_000_000,
                                     description="Optional budget of tokens per UTC day: the leases never aim above what is left of it per minute, "
                                                 "and are 0 once it is used up (until the next UTC day); warned about at 80% and 100%.")
    daily_cost_usd: float | None = Field(default=None, gt=0, le=10_000_000,
                                         description="Optional budget in US dollars per UTC day (the sidecars' price tables x usage): once it is used up "
                                                 "every lease is 0 until the next UTC day; warned about at 80% and 100%.")

    @model_validator(mode="after")
    def _some_rate(self) -> Self:
        if self.requests_per_minute is None and self.tokens_per_minute is None:
            raise ValueError("limits needs requestsPerMinute or tokensPerMinute (or both)")
        return self


class ProviderQuotaSpec(ApiModel):
    """Which targets the quota governs, and the limits shared among the pods that use them."""

    provider: Provider = Field(description="Provider of the governed targets (openai, anthropic, gemini, openai-compatible).")
    api_key: ApiKey = Field(description="The key whose limits these are: a target is governed when its apiKey is this same reference.")
    models: list[str] = Field(default_factory=lambda: [], max_length=32,
                              description="Model ids governed; empty: every model used with this key.")
    limits: QuotaLimits = Field(description="The provider's limits for the key, shared by all pods.")
    lease_seconds: int = Field(default=30, ge=5, le=3600,
                               description="How long a pod's lease lasts without renewal; then it falls to limit / pod count.")
    idle_share: float = Field(default=0.1, ge=0, le=0.5,
                              description="Lease of a pod without demand, as a fraction of limit / pod count "
                                          "(room to start; the rest goes to pods with demand).")

    def governs(self, provider: str, api_key: ApiKey | None, model: str) -> bool:
        """Whether a target of ``provider`` and ``model`` using ``api_key`` is governed (pure)."""
        return governs(self.provider, self.api_key, self.models, provider, api_key, model)


class QuotaUsage(ApiModel):
    """What the pods reported using, summed over the pods that answered."""

    requests_per_minute: int = Field(default=0, ge=0, description="Requests in the last minute, all pods together.")
    tokens_per_minute: int = Field(default=0, ge=0, description="Tokens in the last minute, all pods together.")
    tokens_today: int | None = Field(default=None, ge=0, description="Tokens this UTC day (when a daily token budget is set).")
    cost_today_usd: float | None = Field(default=None, ge=0, description="Cost this UTC day in US dollars (when a daily cost budget is set).")


class PodLease(ApiModel):
    """The share of the limits one pod holds."""

    pod: str = Field(description="Name of the pod.", max_length=253)
    requests_per_minute: float | None = Field(default=None, ge=0, description="The pod's share of requestsPerMinute.")
    tokens_per_minute: float | None = Field(default=None, ge=0, description="The pod's share of tokensPerMinute.")
    demand_tokens: float = Field(default=0, ge=0, description="Demand (tokens per minute) the share was computed from.")
    generation: int = Field(default=0, ge=0, description="Generation of the lease the pod acknowledged (0: none yet).")
    expires_at: datetime | None = Field(default=None, description="When the lease ends without renewal.")


class ProviderQuotaStatus(ApiModel):
    """Observed state, written by the operator's rebalance loop."""

    observed_generation: int | None = Field(default=None, description="The spec generation the operator last acted on.")
    usage: QuotaUsage = Field(default_factory=lambda: QuotaUsage(), description="What the pods used, summed.")
    requests: str | None = Field(default=None, max_length=64, description="requests used/limit per minute (for `kubectl get`).")
    tokens: str | None = Field(default=None, max_length=64, description="tokens used/limit per minute (for `kubectl get`).")
    pods: int = Field(default=0, ge=0, description="Pods holding (or owed) a lease.")
    leases: list[PodLease] = Field(default_factory=lambda: [], max_length=MAX_LEASES_LISTED,
                                   description=f"Each pod's lease (at most {MAX_LEASES_LISTED}, largest first).")
    conditions: list[Condition] = Field(default_factory=lambda: [], max_length=8,
                                        description="QuotaPressure: True at 80% or more of a limit or budget.")


class ProviderQuota(ApiModel):
    """One API key's limits, split by the operator into leases for the pods that use the key."""

    api_version: Literal["modelroute.dev/v1alpha1"] = Field(default="modelroute.dev/v1alpha1", description="modelroute.dev/v1alpha1")
    kind: Literal["ProviderQuota"] = Field(default="ProviderQuota", description="ProviderQuota")
    metadata: ObjectMeta = Field(description="Standard object metadata.")
    spec: ProviderQuotaSpec = Field(description="The key, the governed targets and the limits.")
    status: ProviderQuotaStatus | None = Field(default=None, description="Observed state, written by the operator.")

    @property
    def key(self) -> str:
        """namespace/name."""
        return f"{self.metadata.namespace or ''}/{self.metadata.name}"
