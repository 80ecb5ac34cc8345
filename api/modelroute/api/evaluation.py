"""The document ``modelroute eval --baseline A --candidate B --json`` prints (a documented schema).

Why here: scripts and CI jobs parse this output, so, like every body the project exchanges,
it is a pydantic model with a description on every field. ``docs/eval-comparison.schema.json``
is generated from it (``python -m modelroute.api.evaluation``) and a test fails on drift.
"""


import json
import sys
from enum import StrEnum
from typing import Any

from pydantic import Field

from modelroute.api.v1alpha1 import ApiModel


class Verdict(StrEnum):
    """What the comparison concludes about the candidate against the baseline."""

    BETTER = "better"
    WORSE = "worse"
    NO_SIGNIFICANT_DIFFERENCE = "no significant difference"
    TOO_FEW_CASES = "too few cases"


class Tokens(ApiModel):
    """Token counts, as the providers reported them."""

    prompt: float = Field(ge=0, description="Input (prompt) tokens.")
    completion: float = Field(ge=0, description="Output (completion) tokens.")


class RevisionResult(ApiModel):
    """How one revision (one ModelRoute spec) did on the dataset."""

    role: str = Field(description="`baseline` or `candidate`.")
    source: str = Field(description="Where the revision came from: a file path, or `cluster:NAMESPACE/NAME`.")
    name: str = Field(description="The ModelRoute's metadata.name.")
    revision: str = Field(description="Short hash of the spec (the operator's revision id for the same spec).")
    targets: list[str] = Field(description="`provider/model` of each target, primary first.")
    prompt_version: str | None = Field(default=None, description="spec.prompt.version, when the route has a prompt.")
    cases: int = Field(ge=0, description="Cases sent through this revision.")
    scored: int = Field(ge=0, description="Cases with an expected answer (exact match is computed over these).")
    correct: int = Field(ge=0, description="Scored cases answered exactly right.")
    exact_match: float | None = Field(default=None, ge=0, le=1,
                                      description="correct / scored: label equality after normalisation, or JSON equality "
                                                  "after parsing. A failed request counts as wrong. Null when nothing is scored.")
    exact_match_ci_low: float | None = Field(default=None, ge=0, le=1, description="Lower bound of the Wilson interval of exactMatch.")
    exact_match_ci_high: float | None = Field(default=None, ge=0, le=1, description="Upper bound of the Wilson interval of exactMatch.")
    valid_output_rate: float = Field(ge=0, le=1,
                                     description="Answers that are valid (schema-valid JSON, JSON, one of the dataset's labels, "
                                                 "or non-empty) over cases.")
    repair_rate: float = Field(ge=0, le=1, description="Answers that met the route's output contract only after a repair turn, over cases.")
    error_rate: float = Field(ge=0, le=1, description="Failed requests over cases.")
    errors_by_class: dict[str, int] = Field(default_factory=lambda: {}, description="Failed requests by failure class (e.g. server_error, deadline).")
    latency_p50_ms: float | None = Field(default=None, ge=0, description="Median latency of answered cases, in milliseconds (nearest rank).")
    latency_p95_ms: float | None = Field(default=None, ge=0, description="95th percentile latency of answered cases, in milliseconds.")
    latency_p99_ms: float | None = Field(default=None, ge=0, description="99th percentile latency of answered cases, in milliseconds.")
    latencies_ms: list[float] = Field(default_factory=lambda: [], description="Latency of every answered case in milliseconds, in dataset order.")
    tokens: Tokens = Field(description="Total tokens over the dataset.")
    tokens_per_1k: Tokens = Field(alias="tokensPer1k", description="Tokens per 1000 cases.")
    cost_usd: float | None = Field(default=None, ge=0, description="Total cost in USD; null when a target that answered has no price.")
    cost_per_1k: float | None = Field(default=None, alias="costPer1k", ge=0, description="Cost in USD per 1000 cases; null when unpriced.")


class Comparison(ApiModel):
    """Candidate against baseline on exact match, case by case (paired)."""

    metric: str = Field(default="exactMatch", description="The compared metric.")
    paired_cases: int = Field(ge=0, description="Scored cases run through both revisions.")
    both_correct: int = Field(ge=0, description="Pairs both revisions got right.")
    baseline_only: int = Field(ge=0, description="Pairs only the baseline got right (discordant).")
    candidate_only: int = Field(ge=0, description="Pairs only the candidate got right (discordant).")
    both_wrong: int = Field(ge=0, description="Pairs both revisions got wrong.")
    difference: float | None = Field(default=None, ge=-1, le=1,
                                     description="Candidate exact match minus baseline exact match over the paired cases.")
    ci_low: float = Field(ge=-1, le=1, description="Lower bound of the confidence interval of `difference`.")
    ci_high: float = Field(ge=-1, le=1, description="Upper bound of the confidence interval of `difference`.")
    confidence: float = Field(gt=0, lt=1, description="Confidence level of the interval, e.g. 0.95.")
    ci_method: str = Field(description="How the interval was computed: `newcombe-paired` (Wilson intervals combined with the "
                                       "phi correlation, Newcombe 1998 method 10) or `paired-bootstrap` (percentile, fixed seed).")
    p_value: float = Field(ge=0, le=1, description="Two-sided exact McNemar p-value on the discordant pairs.")
    test: str = Field(default="mcnemar-exact", description="The significance test.")
    verdict: Verdict = Field(description="better / worse only when the interval excludes 0 and p < 1 - confidence; "
                                         "`too few cases` under the minimum number of pairs.")
    message: str = Field(description="The verdict as a sentence, e.g. `no significant difference at 40 cases (p=0.5)`.")


class Answer(ApiModel):
    """One revision's answer to one case."""

    output: str | None = Field(default=None, description="The answer text (null when the request failed).")
    error: str | None = Field(default=None, description="Failure class when the request failed.")
    correct: bool = Field(description="Whether it matched the expected answer.")


class Disagreement(ApiModel):
    """A case the two revisions answered differently (or one of them failed)."""

    id: str = Field(description="The case id.")
    input: str = Field(description="The case's last user message (or its request as JSON).")
    expected: Any = Field(default=None, description="The expected answer, when the case has one.")
    baseline: Answer = Field(description="The baseline's answer.")
    candidate: Answer = Field(description="The candidate's answer.")


class RevisionComparison(ApiModel):
    """The whole result of comparing two revisions of a route on one dataset."""

    route: str = Field(description="The route compared (spec.route).")
    dataset: str = Field(description="The dataset path.")
    cases: int = Field(ge=0, description="Cases in the dataset.")
    cases_run: int = Field(ge=0, description="Cases run through both revisions (fewer when the cost guard stopped the run).")
    stopped: str | None = Field(default=None, description="Why the run stopped early (the --max-cost guard), if it did.")
    max_cost_usd: float | None = Field(default=None, ge=0, description="The --max-cost budget for both revisions together.")
    estimated_cost_usd: float | None = Field(default=None, ge=0, description="Estimated cost of the whole dataset through both revisions.")
    baseline: RevisionResult = Field(description="The current revision.")
    candidate: RevisionResult = Field(description="The proposed revision.")
    comparison: Comparison = Field(description="Candidate against baseline, paired by case.")
    disagreements: list[Disagreement] = Field(default_factory=lambda: [], description="Cases answered differently (at most `disagreementsLimit`).")
    disagreements_total: int = Field(ge=0, description="All cases answered differently.")
    disagreements_limit: int = Field(ge=0, description="How many disagreements are listed at most.")
    notes: list[str] = Field(default_factory=lambda: [], description="Caveats, e.g. missing prices.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the document (by alias: the names in the output)."""
    return RevisionComparison.model_json_schema(by_alias=True)


def main() -> None:
    sys.stdout.write(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
