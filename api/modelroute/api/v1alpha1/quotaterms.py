"""What a pod needs of a ProviderQuota: the terms the route bundle and every lease carry, and ``cap``.

Kept apart from the ProviderQuota resource (``providerquota``, which re-exports ``QuotaTerms``)
so that a sidecar, which reads these terms from its first bundle on, does not build the
resource's spec and status models at start (issue 15 goal 1: ~26 M instructions).
``cap`` is explained in ``modelroute.api.leases``.
"""


from pydantic import Field

from modelroute.api.v1alpha1.base import ApiModel
from modelroute.api.v1alpha1.spec import ApiKey, Provider


def governs(provider: Provider, api_key: ApiKey, models: list[str], target_provider: str, target_key: ApiKey | None,
            model: str) -> bool:
    """The matching rule: same provider, the same key reference, and the model listed (or no list)."""
    return (target_provider == provider.value and target_key is not None and target_key.wire() == api_key.wire()
            and (not models or model in models))


def cap(share: float, fallback: float, expires: float, fallback_at: float, t: float) -> float:
    """What a lease lets a pod send (per minute) at time ``t`` (all times in the same clock)."""
    if t < expires:
        return share
    if t < fallback_at:
        return min(share, fallback)
    return fallback


class QuotaTerms(ApiModel):
    """Which targets a quota governs, its full limits and the pod count they are split over."""

    quota: str = Field(description="The ProviderQuota (namespace/name).", min_length=1, max_length=320)
    provider: Provider = Field(description="Provider of the governed targets.")
    api_key: ApiKey = Field(description="Key reference of the governed targets (compared field by field).")
    models: list[str] = Field(default_factory=lambda: [], max_length=32, description="Governed model ids; empty: all.")
    requests_per_minute: int | None = Field(default=None, ge=1, description="The quota's full request limit (all pods).")
    tokens_per_minute: int | None = Field(default=None, ge=1, description="The quota's full token limit (all pods).")
    pod_count: int = Field(ge=1, le=100_000, description="Pods the limits are split over: the conservative share is limit / podCount.")

    def governs(self, provider: str, api_key: ApiKey | None, model: str) -> bool:
        """Whether a target is governed by this quota (the ProviderQuota's own rule)."""
        return governs(self.provider, self.api_key, self.models, provider, api_key, model)

    def conservative(self) -> tuple[float | None, float | None]:
        """(rpm, tpm): limit / podCount, what a pod takes without a live lease."""
        n = self.pod_count
        return (None if self.requests_per_minute is None else self.requests_per_minute / n,
                None if self.tokens_per_minute is None else self.tokens_per_minute / n)
