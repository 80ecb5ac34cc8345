"""Proposed API: rate limits and prices per target (``targets[].limits``, ``targets[].pricing``)
and the response cache per route (``spec.cache``).

Limits are what the sidecar enforces locally, before calling the provider, so a burst of
concurrent requests never exceeds them; the providers' rate-limit headers can only lower
them. A request that finds no room within ``maxWaitMs`` goes to the next target.
Prices are USD per million tokens; a target without ``pricing`` uses the built-in list
price of its model when there is one.
"""


from pydantic import Field

from modelroute.api.v1alpha1.base import ApiModel


class Limits(ApiModel):
    """Local rate limits of one target (share of the provider quota this sidecar may use)."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000_000, description="Requests admitted in any 60-second window; unset: only the provider's headers limit.")
    tokens_per_minute: int | None = Field(default=None, ge=1, le=100_000_000_000, description="Tokens (input estimated before the call, corrected from usage after) in any 60-second window.")
    max_wait_ms: int = Field(default=1000, ge=0, le=60_000, description="Longest wait for room under the limits before the request falls back to the next target.")


class Pricing(ApiModel):
    """USD per million tokens, for cost in /stats, /metrics, traces and eval reports."""

    input_per_million: float = Field(ge=0, le=10_000, description="Price of one million uncached input tokens.")
    output_per_million: float = Field(ge=0, le=10_000, description="Price of one million output tokens (reasoning tokens included).")
    cached_input_per_million: float | None = Field(default=None, ge=0, le=10_000, description="Price of one million input tokens read from the provider's prompt cache; unset: the input price.")
    cache_write_per_million: float | None = Field(default=None, ge=0, le=10_000, description="Price of one million input tokens written to the provider's prompt cache; unset: the input price.")


class CachePolicy(ApiModel):
    """Response cache of the route: a hit answers without calling any provider."""

    enabled: bool = Field(default=True, description="Cache answers of deterministic requests (effective temperature 0, one choice).")
    include_sampled: bool = Field(default=False, description="Also cache requests that sample (temperature above 0): repeated requests get the first answer.")
    ttl_seconds: int = Field(default=300, ge=1, le=604_800, description="How long an answer stays valid.")
    max_entries: int = Field(default=1000, ge=1, le=1_000_000, description="Entries kept for this route; the least recently used is dropped first.")
