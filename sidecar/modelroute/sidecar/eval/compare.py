"""Turn two revisions' answers into the comparison document (pure).

Per revision: exact match with its Wilson interval, valid-output, repair and error rates,
latency quantiles, tokens and cost per 1000 cases. Between them: the paired 2x2 table of
exact match on the cases both ran, the CI of the difference (``stats``), McNemar's exact
p-value and the verdict, and the cases they answered differently.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelroute.api.evaluation import (
    Answer,
    Comparison,
    Disagreement,
    RevisionComparison,
    RevisionResult,
    Tokens,
)
from modelroute.api.v1alpha1.strategy import revision_of
from modelroute.sidecar.eval import stats
from modelroute.sidecar.eval.dataset import Case
from modelroute.sidecar.eval.revisions import Answered, RevisionRun
from modelroute.sidecar.eval.scoring import answers_agree, summarize

MAX_DISAGREEMENTS = 50
CI_METHODS = ("newcombe-paired", "paired-bootstrap")


def _per_1k(value: float, cases: int) -> float:
    return 1000 * value / cases if cases else 0.0


def revision_result(run: RevisionRun, cases: Sequence[Case], confidence: float) -> RevisionResult:
    route = run.revision.route
    ran = [c for c in cases if c.id in run.answers]
    answers = [run.answers[c.id] for c in ran]
    outcomes = [a.outcome for a in answers]
    priced = all(a.cost_usd is not None for a in answers)
    usd = sum(a.cost_usd or 0.0 for a in answers) if priced else None
    s = summarize(run.revision.role, "", "", ran, outcomes, usd)
    scored = [a for c, a in zip(ran, answers, strict=True) if c.expected is not None]
    correct = sum(a.outcome.exact for a in scored)
    lo, hi = stats.wilson(correct, len(scored), confidence) if scored else (None, None)
    n = len(ran)
    return RevisionResult(
        role=run.revision.role, source=run.revision.source, name=route.metadata.name, revision=revision_of(route.spec),
        targets=[f"{t.provider.value}/{t.model}" for t in route.spec.targets],
        prompt_version=route.spec.prompt.version if route.spec.prompt is not None else None,
        cases=n, scored=len(scored), correct=correct, exact_match=s.exact_match,
        exact_match_ci_low=lo, exact_match_ci_high=hi, valid_output_rate=s.valid_rate,
        repair_rate=min(1.0, run.repaired / n) if n else 0.0, error_rate=s.errors / n if n else 0.0,
        errors_by_class=s.errors_by_class, latency_p50_ms=s.p50_ms, latency_p95_ms=s.p95_ms, latency_p99_ms=s.p99_ms,
        latencies_ms=[round(o.latency_s * 1000, 3) for o in outcomes if o.error is None],
        tokens=Tokens(prompt=s.prompt_tokens, completion=s.completion_tokens),
        tokens_per_1k=Tokens(prompt=_per_1k(s.prompt_tokens, n), completion=_per_1k(s.completion_tokens, n)),
        cost_usd=usd, cost_per_1k=None if usd is None else _per_1k(usd, n),
    )


def comparison(pairs: Sequence[tuple[bool, bool]], *, confidence: float = 0.95, ci_method: str = CI_METHODS[0],
               seed: int = 0, min_cases: int = stats.MIN_PAIRED_CASES) -> Comparison:
    """The paired comparison of (baseline correct, candidate correct) per scored case."""
    t = stats.PairedCounts.of(pairs)
    if ci_method == "paired-bootstrap":
        ci = stats.paired_bootstrap(pairs, confidence, seed=seed)
    elif ci_method == "newcombe-paired":
        ci = stats.newcombe_paired(t, confidence)
    else:
        raise ValueError(f"unknown CI method {ci_method!r} (known: {', '.join(CI_METHODS)})")
    p = stats.mcnemar_exact(t.baseline_only, t.candidate_only)
    verdict, message = stats.verdict(t, ci, p, alpha=1 - confidence, min_cases=min_cases)
    return Comparison(
        paired_cases=t.n, both_correct=t.both, baseline_only=t.baseline_only, candidate_only=t.candidate_only,
        both_wrong=t.neither, difference=t.difference, ci_low=ci[0], ci_high=ci[1], confidence=confidence,
        ci_method=ci_method, p_value=p, verdict=verdict, message=message,
    )


def input_text(case: Case) -> str:
    """The case's last user message, or its request as JSON."""
    for m in reversed(case.request.get("messages") or []):
        if m.get("role") == "user" and isinstance(m.get("content"), str):
            return str(m["content"])
    return json.dumps(case.request, ensure_ascii=False)


def _answer(a: Answered) -> Answer:
    return Answer(output=a.outcome.output, error=a.outcome.error, correct=a.outcome.exact)


def disagree(b: Answered, c: Answered) -> bool:
    bo, co = b.outcome, c.outcome
    if bo.output is None or co.output is None:
        return (bo.output is None) != (co.output is None) or bo.error != co.error
    return bo.exact != co.exact or not answers_agree(bo.output, co.output)


def build(route: str, dataset: str, cases: Sequence[Case], base: RevisionRun, cand: RevisionRun, *,
          confidence: float = 0.95, ci_method: str = CI_METHODS[0], seed: int = 0,
          min_cases: int = stats.MIN_PAIRED_CASES, stopped: str | None = None, max_cost: float | None = None,
          estimated_cost: float | None = None) -> RevisionComparison:
    both = [c for c in cases if c.id in base.answers and c.id in cand.answers]
    pairs = [(base.answers[c.id].outcome.exact, cand.answers[c.id].outcome.exact) for c in both if c.expected is not None]
    differing = [c for c in both if disagree(base.answers[c.id], cand.answers[c.id])]
    results = [revision_result(r, both, confidence) for r in (base, cand)]
    notes: list[str] = []
    for r in results:
        if r.cost_usd is None:
            notes.append(f"{r.role}: no cost: a target that answered has no price (set spec.targets[].pricing or --prices)")
    if not pairs:
        notes.append("no case has an expected answer: exact match cannot be compared")
    return RevisionComparison(
        route=route, dataset=dataset, cases=len(cases), cases_run=len(both), stopped=stopped, max_cost_usd=max_cost,
        estimated_cost_usd=estimated_cost, baseline=results[0], candidate=results[1],
        comparison=comparison(pairs, confidence=confidence, ci_method=ci_method, seed=seed, min_cases=min_cases),
        disagreements=[Disagreement(id=c.id, input=input_text(c), expected=c.expected,
                                    baseline=_answer(base.answers[c.id]), candidate=_answer(cand.answers[c.id]))
                       for c in differing[:MAX_DISAGREEMENTS]],
        disagreements_total=len(differing), disagreements_limit=MAX_DISAGREEMENTS, notes=notes,
    )


def as_json(doc: RevisionComparison) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True)
