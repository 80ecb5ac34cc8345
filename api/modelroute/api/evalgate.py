"""What the operator and a sidecar say to each other about a golden-dataset gate run (``POST /eval``).

The operator (``modelroute.operator.rollout.gate_runner``) signs an ``EvalRequest`` for one pod; the
sidecar (``modelroute.sidecar.server.evalgate``) parses it with this model, runs the cases on the
canary revision and answers an ``EvalResult``, which the operator parses with this model to judge
the gate. ``EvalTargetSummary`` is also one entry of ``modelroute eval --json``'s ``targets``.
Results ignore fields they do not know (a newer sidecar may report more); requests refuse them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from modelroute.api.config import SignedRequest
from modelroute.api.v1alpha1 import ApiModel

MAX_CASES = 2000
"""Cases one request may carry (a gate must not crowd out live requests for long)."""


class EvalRequest(SignedRequest):
    """The body of the operator's signed ``POST /eval``: run a golden dataset on a route's canary revision."""

    route: str = Field(min_length=1, max_length=253, description="The route (``spec.route``) whose canary is judged.")
    revision: str = Field(min_length=1, max_length=128, description="The canary revision to judge; a sidecar serving another answers 409.")
    cases: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_CASES,
        description="Dataset cases as in a golden-dataset JSONL file (input, expected, optional id and schema); "
                    "the sidecar checks each case's fields.")
    baseline: bool = Field(default=False, description="Also run the cases on the route's stable revision (relative gate thresholds).")


class LatencyMs(ApiModel):
    """Nearest-rank latency quantiles of the answered cases, in milliseconds (None: no case answered)."""

    model_config = ConfigDict(extra="ignore")

    p50: float | None = Field(default=None, ge=0, description="Median latency.")
    p95: float | None = Field(default=None, ge=0, description="95th percentile latency.")
    p99: float | None = Field(default=None, ge=0, description="99th percentile latency.")


class TokenTotals(ApiModel):
    """Tokens the provider reported over all cases."""

    model_config = ConfigDict(extra="ignore")

    prompt: int = Field(default=0, ge=0, description="Input (prompt) tokens.")
    completion: int = Field(default=0, ge=0, description="Output (completion) tokens.")


class EvalTargetSummary(ApiModel):
    """How one target did on the dataset."""

    model_config = ConfigDict(extra="ignore")

    target: str = Field(description="What was run: a target name, or ``revision <id>`` for a gate run.")
    provider: str = Field(description="The target's provider.")
    model: str = Field(description="The target's model id.")
    cases: int = Field(ge=0, description="Cases run.")
    errors: int = Field(ge=0, description="Cases that got no answer (any failure class).")
    errors_by_class: dict[str, int] = Field(default_factory=dict, description="Failed cases per failure class (e.g. deadline, rate_limit).")
    exact_match: float | None = Field(ge=0, le=1, description="Share of cases with an expectation whose answer matched it; None: no case has one.")
    valid_output_rate: float = Field(ge=0, le=1, description="Share of cases whose answer passed the output check (non-empty; JSON or schema-valid when asked).")
    latency_ms: LatencyMs = Field(default_factory=LatencyMs, description="Latency quantiles of the answered cases.")
    tokens: TokenTotals = Field(default_factory=TokenTotals, description="Tokens over all cases.")
    cost_usd: float | None = Field(default=None, ge=0, description="Cost in US dollars; None: the target has no price.")

    def json_doc(self) -> dict[str, Any]:
        """The summary as JSON, unset values as null (``modelroute eval --json`` shows them)."""
        return self.model_dump(mode="json", by_alias=True)


class EvalResult(ApiModel):
    """The sidecar's answer to ``POST /eval``: the canary revision's summary on the dataset."""

    model_config = ConfigDict(extra="ignore")

    route: str = Field(description="The route whose canary was judged.")
    revision: str = Field(description="The canary revision the cases ran on.")
    targets: list[EvalTargetSummary] = Field(min_length=1, description="The revision's summary: one entry, named after the revision, with its primary target's provider and model.")
    baseline_revision: str | None = Field(default=None, description="The stable revision the cases also ran on (asked with baseline).")
    baseline: EvalTargetSummary | None = Field(default=None, description="The stable revision's summary on the same cases (asked with baseline).")
