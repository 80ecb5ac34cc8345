"""Pure scoring: exact match, output validity, latency quantiles and per-target summaries.

* An output is ``output.answer.answer_of`` the completion: the one reading of "the answer" that
  mirror agreement and the gate use too (a tool-call answer is ``[{"name", "arguments"}]``).
* Labels match after normalising both sides (``output.parse.normalize_label``: surrounding
  whitespace, quotes, markup and punctuation removed; case-folded): ``"Billing."`` matches ``billing``.
* JSON expectations match when the output parses (a Markdown code fence around it is
  allowed) to an equal value: key order and whitespace do not matter.
* Valid output: with a schema, the output is JSON satisfying it; with a JSON expectation,
  the output is JSON; with label expectations, the output is one of the dataset's labels;
  otherwise, any non-empty answer. A failed request is neither a match nor valid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelroute.api.evalgate import EvalTargetSummary, LatencyMs, TokenTotals
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.output.answer import NOT_JSON, answers_agree, parse_json
from modelroute.sidecar.output.parse import normalize_label
from modelroute.sidecar.output.schema import InvalidSchema, compile_validator, schema_errors


@dataclass(frozen=True)
class Outcome:
    """One case on one target."""

    case_id: str
    output: str | None          # None: the request failed
    latency_s: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None    # failure class, e.g. rate_limited, deadline
    exact: bool = False
    valid: bool = False


def judge(case: Case, output: str, labels: frozenset[str]) -> tuple[bool, bool]:
    """(exact match, valid output) of ``output`` for ``case``; ``labels`` are the dataset's normalised labels."""
    exp = case.expected
    parsed = parse_json(output) if (case.schema is not None or (not isinstance(exp, str) and exp is not None)) else NOT_JSON
    if case.schema is not None:
        valid = parsed is not NOT_JSON and _schema_ok(case.schema, parsed)
    elif exp is not None and not isinstance(exp, str):
        valid = parsed is not NOT_JSON
    elif isinstance(exp, str):
        valid = normalize_label(output) in labels
    else:
        valid = bool(output.strip())
    if exp is None:
        return False, valid
    if isinstance(exp, str):
        return normalize_label(output) == normalize_label(exp), valid
    return parsed is not NOT_JSON and parsed == exp, valid


def _schema_ok(schema: dict[str, Any], value: Any) -> bool:
    try:
        validator = compile_validator(schema)  # local $refs only: a dataset's schema fetches nothing
    except InvalidSchema:
        return False
    return not schema_errors(validator, value)


def labels_of(cases: Sequence[Case]) -> frozenset[str]:
    return frozenset(normalize_label(c.expected) for c in cases if isinstance(c.expected, str))


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (None when empty)."""
    if not values:
        return None
    s = sorted(values)
    return s[max(0, min(len(s) - 1, math.ceil(q * len(s)) - 1))]


@dataclass(frozen=True)
class TargetSummary:
    target: str
    provider: str
    model: str
    cases: int
    errors: int
    exact_match: float | None       # over cases with an expectation
    valid_rate: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None          # None: no price for this target
    errors_by_class: dict[str, int] = field(default_factory=dict)

    def to_api(self) -> EvalTargetSummary:
        """The summary as ``POST /eval`` answers it and ``modelroute eval --json`` prints it."""
        return EvalTargetSummary(
            target=self.target, provider=self.provider, model=self.model, cases=self.cases, errors=self.errors,
            errors_by_class=dict(self.errors_by_class), exact_match=self.exact_match, valid_output_rate=self.valid_rate,
            latency_ms=LatencyMs(p50=self.p50_ms, p95=self.p95_ms, p99=self.p99_ms),
            tokens=TokenTotals(prompt=self.prompt_tokens, completion=self.completion_tokens), cost_usd=self.cost_usd,
        )

    def as_json(self) -> dict[str, Any]:
        return self.to_api().json_doc()


def summarize(target: str, provider: str, model: str, cases: Sequence[Case], outcomes: Sequence[Outcome],
              cost_usd: float | None) -> TargetSummary:
    with_expectation = {c.id for c in cases if c.expected is not None}
    judged = [o for o in outcomes if o.case_id in with_expectation]
    lat = [o.latency_s * 1000 for o in outcomes if o.error is None]
    by_class: dict[str, int] = {}
    for o in outcomes:
        if o.error is not None:
            by_class[o.error] = by_class.get(o.error, 0) + 1
    n = len(outcomes)
    return TargetSummary(
        target=target, provider=provider, model=model, cases=n, errors=sum(by_class.values()),
        exact_match=sum(o.exact for o in judged) / len(judged) if judged else None,
        valid_rate=sum(o.valid for o in outcomes) / n if n else 0.0,
        p50_ms=quantile(lat, 0.50), p95_ms=quantile(lat, 0.95), p99_ms=quantile(lat, 0.99),
        prompt_tokens=sum(o.prompt_tokens for o in outcomes),
        completion_tokens=sum(o.completion_tokens for o in outcomes),
        cost_usd=cost_usd, errors_by_class=by_class,
    )


__all__ = ["Outcome", "TargetSummary", "answers_agree", "judge", "labels_of", "normalize_label", "parse_json", "quantile", "summarize"]
