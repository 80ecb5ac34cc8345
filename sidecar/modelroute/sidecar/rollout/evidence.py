"""Rollout evidence: counters per route, rollout run and variant (stable, canary, mirror).

The operator judges a canary from these (``/stats`` -> ``rollouts``, one
``modelroute.api.stats.RunEvidence`` per route), read by
``modelroute.operator.rollout.counters.evidence_from_stats``.

Counters start at zero for a new run id (so the cumulative values are the run's evidence);
a route keeps its last run's counters after the rollout ends, until a new run replaces them.
Only routes with a canary are counted at all: the stable variant counts the route's
requests answered by stable while a run is on.

What counts: ``requests`` are answered or failed requests (a cancelled one only bumps
``errors.cancelled``); ``errors`` by class (a ``FailureKind`` value of the last attempt,
or ``deadline``, ``client_error``, ``stream_error``); latency, tokens, cost and the output
check of answered requests (an ``invalid_output`` failure, every answer rejected by the
contract, is a checked output that is not valid); ``agreement`` on mirrored requests whose stable answer is known
(and, apart, on mirrored task requests: ``taskCompared``/``taskAgreed``).
What an answer is, agrees with and makes valid: ``output.answer`` (shared with eval and the gate).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from modelroute.api.config import CanaryServing
from modelroute.api.v1alpha1.strategy import VARIANTS
from modelroute.sidecar.errors import FailureKind
from modelroute.sidecar.metrics.families import counter, gauge
from modelroute.sidecar.metrics.prom import HistogramMetricFamily, Metric
from modelroute.sidecar.metrics.stats import BUCKETS, Histogram
from modelroute.sidecar.output.answer import tool_calls_text
from modelroute.sidecar.pipeline.cost import PriceTable

if TYPE_CHECKING:  # the wire models are built on the first /stats, not at start
    from modelroute.api import stats as wire

Json = dict[str, Any]
INVALID_OUTPUT = FailureKind.INVALID_OUTPUT.value


class VariantEvidence:
    """Cumulative counters of one variant of one run."""

    __slots__ = ("agreed", "checked", "compared", "completion_tokens", "cost_usd", "dropped", "errors", "latency",
                 "priced", "prompt_tokens", "requests", "task_agreed", "task_compared", "valid")

    def __init__(self) -> None:
        self.requests = 0
        self.errors: dict[str, int] = {}
        self.latency = Histogram()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.priced = 0
        self.checked = 0
        self.valid = 0
        self.compared = 0
        self.agreed = 0
        self.task_compared = 0   # of ``compared``: task requests (classify, extract)
        self.task_agreed = 0
        self.dropped = 0      # mirror only: copies not sent because the mirror pool was full

    def answered(self, latency_s: float, usage: Json | None, cost_usd: float | None, valid: bool) -> None:
        self.requests += 1
        self.latency.observe(latency_s)
        if usage:
            self.prompt_tokens += _int(usage.get("prompt_tokens"))
            self.completion_tokens += _int(usage.get("completion_tokens"))
        if cost_usd is not None:
            self.cost_usd += cost_usd
            self.priced += 1
        self.checked += 1
        if valid:
            self.valid += 1

    def failed(self, kind: str) -> None:
        """A request that got no answer (``kind`` ``cancelled``: the app went away, not a request)."""
        if kind != "cancelled":
            self.requests += 1
        if kind == INVALID_OUTPUT:   # every answer failed the output check, repairs included: an invalid output too
            self.checked += 1
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def compare(self, agreed: bool, *, task: bool = False) -> None:
        """One mirrored answer compared with stable's; ``task``: a classify or extract request."""
        self.compared += 1
        self.agreed += agreed
        if task:
            self.task_compared += 1
            self.task_agreed += agreed

    def to_wire(self) -> wire.VariantCounters:
        """The form the operator reads (``modelroute.api.stats.VariantCounters``)."""
        from modelroute.api import stats as wire
        return wire.VariantCounters(
            requests=self.requests,
            errors=dict(self.errors),
            latency=wire.LatencyHistogram(le=list(BUCKETS), counts=list(self.latency.counts), sum=self.latency.sum),
            tokens=wire.TokenCounts(prompt=self.prompt_tokens, completion=self.completion_tokens),
            cost=wire.CostCounts(usd=self.cost_usd, priced=self.priced),
            outputs=wire.OutputCounts(checked=self.checked, valid=self.valid),
            agreement=wire.AgreementCounts(compared=self.compared, agreed=self.agreed,
                                           task_compared=self.task_compared, task_agreed=self.task_agreed),
            dropped=self.dropped,
        )


def _int(v: Any) -> int:
    return v if isinstance(v, int) else 0


class RunEvidence:
    """One rollout run of one route."""

    __slots__ = ("active", "mirror", "revision", "run_id", "variants", "weight")

    def __init__(self, c: CanaryServing) -> None:
        self.run_id = c.run_id
        self.revision = c.revision
        self.weight = c.weight
        self.mirror = c.mirror
        self.active = True
        self.variants = {v: VariantEvidence() for v in VARIANTS}

    def to_wire(self) -> wire.RunEvidence:
        from modelroute.api import stats as wire
        return wire.RunEvidence(
            run=self.run_id,
            revision=self.revision,
            active=self.active,
            weights=wire.RolloutWeights(canary=self.weight if self.active else 0, mirror=self.mirror if self.active else 0),
            variants={v: e.to_wire() for v, e in self.variants.items()},
        )


class Evidence:
    """Counters of the current (or last) run per route; ``configure`` on every config swap."""

    def __init__(self, prices: PriceTable | None = None) -> None:
        self.prices = prices or PriceTable()
        self.runs: dict[str, RunEvidence] = {}

    def configure(self, canaries: Iterable[CanaryServing]) -> None:
        """Follow a new config: a new run id starts from zero; a route whose rollout ended keeps its counters."""
        live: set[str] = set()
        for c in canaries:
            live.add(c.route)
            run = self.runs.get(c.route)
            if run is None or run.run_id != c.run_id:
                self.runs[c.route] = RunEvidence(c)
            else:
                run.weight, run.mirror, run.active = c.weight, c.mirror, True
        for route, run in self.runs.items():
            if route not in live:
                run.active = False

    def variant(self, route: str, run_id: str, variant: str) -> VariantEvidence | None:
        """The counters to record into; None when ``run_id`` is not the route's current run (a stale config)."""
        run = self.runs.get(route)
        if run is None or run.run_id != run_id:
            return None
        return run.variants[variant]

    def cost(self, model: str, usage: Json | None) -> float | None:
        return self.prices.cost(model, usage) if usage else None

    def as_json(self) -> Json:
        """``/stats`` -> ``rollouts``: route -> ``modelroute.api.stats.RunEvidence`` (camelCase JSON)."""
        return {route: run.to_wire().model_dump(mode="json", by_alias=True) for route, run in sorted(self.runs.items())}

    def collect(self) -> Iterator[Metric]:
        """The rollout metric families at scrape time (a prometheus-client collector; none before any rollout)."""
        if not self.runs:
            return
        runs = sorted(self.runs.items())
        variants = [(route, run, v, e) for route, run in runs for v, e in run.variants.items()]
        by_variant = ("route", "run", "variant")

        def each(name: str, help_text: str, value: Callable[[VariantEvidence], float]) -> Metric:
            return counter(name, help_text, by_variant, (((route, run.run_id, v), value(e)) for route, run, v, e in variants))

        yield each("modelroute_rollout_requests", "Requests per rollout run and variant (stable, canary, mirror).", lambda e: e.requests)
        yield counter("modelroute_rollout_errors", "Failed requests per rollout run, variant and class.", (*by_variant, "class"),
                      (((route, run.run_id, v, kind), n) for route, run, v, e in variants for kind, n in sorted(e.errors.items())))
        duration = HistogramMetricFamily("modelroute_rollout_request_duration_seconds",
                                         "Latency of answered requests per rollout run and variant.", labels=by_variant)
        for route, run, v, e in variants:
            duration.add_metric((route, run.run_id, v), e.latency.buckets(), e.latency.sum)
        yield duration
        yield counter("modelroute_rollout_tokens", "Tokens per rollout run, variant and kind.", (*by_variant, "kind"),
                      (((route, run.run_id, v, kind), getattr(e, kind + "_tokens"))
                       for kind in ("prompt", "completion") for route, run, v, e in variants))
        yield each("modelroute_rollout_cost_usd", "Cost in USD of priced requests per rollout run and variant.", lambda e: e.cost_usd)
        yield each("modelroute_rollout_outputs_checked", "Answers checked for validity per rollout run and variant.", lambda e: e.checked)
        yield each("modelroute_rollout_outputs_valid", "Valid answers per rollout run and variant.", lambda e: e.valid)
        yield each("modelroute_rollout_compared", "Mirrored answers compared with stable's, per rollout run.", lambda e: e.compared)
        yield each("modelroute_rollout_agreed", "Mirrored answers that agreed with stable's, per rollout run.", lambda e: e.agreed)
        yield each("modelroute_rollout_task_compared", "Mirrored task answers (classify, extract: labels or JSON) compared with stable's, "
                   "per rollout run.", lambda e: e.task_compared)
        yield each("modelroute_rollout_task_agreed", "Mirrored task answers that agreed with stable's, per rollout run.",
                   lambda e: e.task_agreed)
        yield counter("modelroute_rollout_mirror_dropped", "Mirror copies dropped because the mirror pool was full.", ("route", "run"),
                      (((route, run.run_id), run.variants["mirror"].dropped) for route, run in runs))
        yield gauge("modelroute_rollout_weight_percent", "Share of live requests answered (canary) or copied (mirror) per rollout run.",
                    ("route", "run", "kind"),
                    (row for route, run in runs for row in (((route, run.run_id, "canary"), run.weight if run.active else 0),
                                                            ((route, run.run_id, "mirror"), run.mirror if run.active else 0))))



# ---- what a request asks and a stream says (pure) -----------------------------------------


def wants_json(request: Json) -> bool:
    """Did the request ask for a JSON answer (``response_format`` json_object / json_schema)?"""
    rf = request.get("response_format")
    return isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema")


class StreamText:
    """Collects the first choice's answer from ``chat.completion.chunk``s (only on routes with a canary)."""

    __slots__ = ("_calls", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._calls: dict[int, Json] = {}

    def feed(self, chunk: Json) -> None:
        for c in chunk.get("choices") or ():
            if c.get("index", 0) != 0:
                continue
            delta = c.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str):
                self._parts.append(text)
            for tc in delta.get("tool_calls") or ():
                f = tc.get("function") or {}
                slot = self._calls.setdefault(int(tc.get("index", 0)), {"name": None, "arguments": ""})
                if f.get("name"):
                    slot["name"] = f["name"]
                if f.get("arguments"):
                    slot["arguments"] += f["arguments"]

    def text(self) -> str:
        text = "".join(self._parts)
        if text or not self._calls:
            return text
        return tool_calls_text([self._calls[i] for i in sorted(self._calls)])
