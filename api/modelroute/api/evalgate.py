"""What the operator and a sidecar say to each other about a golden-dataset gate run (``POST /eval``).

The operator (``modelroute.operator.rollout.gate_runner``) signs an ``EvalRequest`` for one pod; the
sidecar (``modelroute.sidecar.server.evalgate``) parses it with this model, runs the cases on the
canary revision and answers an ``EvalResult``, which the operator parses with this model to judge
the gate. ``EvalTargetSummary`` is also one entry of ``modelroute eval --json``'s ``targets``.
With ``candidate`` (``kubectl modelroute eval``, carried by the operator from a ModelRouteEval), the
sidecar instead compares that unserved spec with the route's live stable revision and answers the
same ``RevisionComparison`` the local ``modelroute eval --json`` prints, in ``comparison``.
Results ignore fields they do not know (a newer sidecar may report more); requests refuse them.
"""


from typing import Any

from pydantic import ConfigDict, Field

from modelroute.api.config import SignedRequest
from modelroute.api.evaluation import RevisionComparison
from modelroute.api.v1alpha1 import ApiModel, ModelRouteSpec

MAX_CASES = 2000
"""Cases one request may carry (a gate must not crowd out live requests for long)."""


class CompareOptions(ApiModel):
    """How a candidate is compared with the stable revision, and what the result calls things."""

    dataset: str = Field(default="dataset", max_length=1024, description="The dataset's name, shown in the result.")
    candidate_source: str = Field(default="candidate", max_length=1024, description="Where the candidate came from, shown in the result.")
    baseline_source: str = Field(default="cluster", max_length=1024, description="Where the baseline came from, shown in the result.")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Confidence level of the intervals.")
    min_cases: int = Field(default=20, ge=1, le=MAX_CASES, description="Scored pairs needed before a winner is named.")


class EvalRequest(SignedRequest):
    """The body of the operator's signed ``POST /eval``: run a golden dataset on a route's canary revision."""

    route: str = Field(min_length=1, max_length=253, description="The route (``spec.route``) whose canary is judged.")
    revision: str = Field(min_length=1, max_length=128, description="The canary revision to judge; a sidecar serving another answers 409.")
    cases: list[dict[str, Any]] = Field(
        min_length=1, max_length=MAX_CASES,
        description="Dataset cases as in a golden-dataset JSONL file (input, expected, optional id and schema); "
                    "the sidecar checks each case's fields.")
    baseline: bool = Field(default=False, description="Also run the cases on the route's stable revision (relative gate thresholds).")
    candidate: ModelRouteSpec | None = Field(
        default=None,
        description="Compare this spec (not served; ``revision`` is its revision id) with the route's live stable revision "
                    "instead of judging the served canary; the answer carries ``comparison``.")
    compare: CompareOptions | None = Field(default=None, description="How to compare (with ``candidate``; default options when unset).")


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
    errors_by_class: dict[str, int] = Field(default_factory=lambda: {}, description="Failed cases per failure class (e.g. deadline, rate_limit).")
    exact_match: float | None = Field(ge=0, le=1, description="Share of cases with an expectation whose answer matched it; None: no case has one.")
    valid_output_rate: float = Field(ge=0, le=1, description="Share of cases whose answer passed the output check (non-empty; JSON or schema-valid when asked).")
    latency_ms: LatencyMs = Field(default_factory=lambda: LatencyMs(), description="Latency quantiles of the answered cases.")
    tokens: TokenTotals = Field(default_factory=lambda: TokenTotals(), description="Tokens over all cases.")
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
    comparison: RevisionComparison | None = Field(default=None, description="Candidate against stable, case by case (asked with candidate).")
