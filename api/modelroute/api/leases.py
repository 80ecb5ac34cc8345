"""Quota leases (``QuotaTerms`` lives with ProviderQuota, the route bundle carries it too): the operator's signed ``PUT /leases`` body, and what a lease lets a pod send over time.

A ``ProviderQuota``'s limits are split by the operator into one lease per pod. The lease carries,
besides the pod's share, the terms the pod falls back on when it hears nothing more: the
full limits and the pod count the operator saw. ``cap`` (defined beside ``QuotaTerms``, which a
sidecar needs from its first config on) is the one definition of what a pod
may send at a given instant; the sidecar enforces it and the operator's arithmetic
(``modelroute.operator.leases``) plans with it, so both sides agree by construction:

- before ``expiresAt``: the share;
- from ``expiresAt`` to ``fallbackAt``: ``min(share, limit / podCount)`` (a pod may only shrink
  while other pods' leases, issued a little later, may still run);
- from ``fallbackAt`` on: the conservative share ``limit / podCount``; with every pod there,
  these sum to the limit.
"""


from datetime import datetime
from typing import Self

from pydantic import Field, model_validator

from modelroute.api.config import SignedRequest
from modelroute.api.v1alpha1 import ApiModel
from modelroute.api.v1alpha1.quotaterms import QuotaTerms
from modelroute.api.v1alpha1.quotaterms import cap as cap


class QuotaLease(QuotaTerms):
    """One pod's lease on one quota."""

    generation: int = Field(ge=1, description="Increases with every lease the operator issues; an older one is ignored.")
    share_requests_per_minute: float | None = Field(default=None, ge=0, description="This pod's requests per minute until expiresAt.")
    share_tokens_per_minute: float | None = Field(default=None, ge=0, description="This pod's tokens per minute until expiresAt.")
    expires_at: datetime = Field(description="End of the share without renewal; then min(share, limit / podCount).")
    fallback_at: datetime = Field(description="From then on, without renewal: limit / podCount.")

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.fallback_at < self.expires_at:
            raise ValueError("fallbackAt must not be before expiresAt")
        return self


class LeasePush(SignedRequest):
    """The body of a signed ``PUT /leases`` from the operator to one pod's sidecar."""

    leases: list[QuotaLease] = Field(default_factory=lambda: [], max_length=256,
                                     description="This pod's leases, one per quota; a quota left out keeps its last lease until it expires.")


class LeasesHeld(ApiModel):
    """The sidecar's answer to ``PUT /leases``: the operator's acknowledgement of what each pod enforces."""

    generations: dict[str, int] = Field(default_factory=lambda: {}, description="Per quota (namespace/name), the generation of the lease now held.")
