"""Progressive delivery: ``spec.strategy`` (canary steps, analysis, gate) and ``status.rollout``.

A *revision* is the routing-relevant part of a ModelRoute spec (everything but ``strategy``
and ``selector``), identified by ``revision_of``. When it changes and a strategy is set, the
operator walks the new revision through ``strategy.canary.steps`` against the last promoted
(stable) one, with Argo Rollouts semantics (see ``modelroute.operator.rollout``).

Conventions:

* Durations are strings of number+unit groups, Go style without fractions: ``90s``, ``30m``,
  ``1h30m`` (units ``s``, ``m``, ``h``); ``duration_seconds`` parses them.
  ``progressDeadlineSeconds`` is plain seconds, as in Argo Rollouts and Deployments.
* Percentages (``mirror``, ``weight``) are integers 0..100.
* Ratios and rates (``maxErrorRate``, ``minAgreement`` ...) are fractions 0..1, or >= 0 for
  ratios of canary to stable (``maxLatencyP95Ratio``, ``maxLatencyP99Ratio``, ``maxCostRatio``).

``variant_for`` (sticky assignment) lives here rather than in the sidecar or the operator
because both sides must agree on it bit for bit: the sidecar serves with it, tests and the
operator reason about it.
"""


import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, model_validator

from modelroute.api.v1alpha1.base import DNS_LABEL, ApiModel, exactly_one_rule, require_exactly_one

DURATION = r"^([0-9]+[smh])+$"
_DURATION_PART = re.compile(r"([0-9]+)([smh])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
MAX_STEPS = 64
MAX_METRICS = 16
MAX_PAUSE_CONDITIONS = 8
REVISION_LENGTH = 12
ACTION_ANNOTATION = "modelroute.dev/action"
"""Annotation a person (or ``kubectl modelroute``) sets to act on a rollout: ``VERB[:NONCE]``."""
VARIANTS = ("stable", "canary", "mirror")
"""The variants of one rollout run: stable answers, canary answers, and mirrored copies (the keys of
``modelroute.api.stats.RunEvidence.variants``, which re-exports this)."""


def duration_seconds(text: str) -> int:
    """``"1h30m"`` -> 5400. Raises ``ValueError`` for anything the ``DURATION`` pattern rejects."""
    if not re.fullmatch(DURATION, text):
        raise ValueError(f"invalid duration {text!r}: use number+unit groups like 90s, 30m, 1h30m")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def format_duration(seconds: float) -> str:
    """Seconds -> the shortest ``1h2m3s`` form (for messages and ``kubectl modelroute get``)."""
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec or not (h or m) else "")
    return out


# ---- spec --------------------------------------------------------------------------------


class Pause(ApiModel):
    """Wait: for a duration, or (no duration) until a person promotes."""

    duration: str | None = Field(
        default=None,
        description="How long to wait, e.g. 30m or 1h30m (units s, m, h). Unset: wait until `kubectl modelroute promote`.",
        pattern=DURATION,
        max_length=32,
    )

    @property
    def seconds(self) -> int | None:
        return None if self.duration is None else duration_seconds(self.duration)


_ONE_STEP_KIND = "a step needs exactly one of mirror, weight or pause"


class CanaryStep(ApiModel):
    """One step of a canary rollout: exactly one of mirror, weight or pause."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        exactly_one_rule(("mirror", "weight", "pause"), _ONE_STEP_KIND),
    ]})

    mirror: int | None = Field(
        default=None,
        description="Shadow N% of live requests to the new revision; its answers are compared with stable's, never returned. Keeps the current weight.",
        ge=0,
        le=100,
    )
    weight: int | None = Field(
        default=None,
        description="Answer N% of live requests with the new revision. Ends mirroring (set mirror again in a later step to resume it).",
        ge=0,
        le=100,
    )
    pause: Pause | None = Field(default=None, description="Wait for a duration, or until promoted when no duration is set.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        require_exactly_one((self.mirror, self.weight, self.pause), _ONE_STEP_KIND)
        return self

    @property
    def kind(self) -> Literal["mirror", "weight", "pause"]:
        return "mirror" if self.mirror is not None else "weight" if self.weight is not None else "pause"

    def describe(self) -> str:
        """``mirror: 100``, ``weight: 5``, ``pause: 30m``, ``pause: until promoted``."""
        if self.mirror is not None:
            return f"mirror: {self.mirror}"
        if self.weight is not None:
            return f"weight: {self.weight}"
        assert self.pause is not None
        return f"pause: {self.pause.duration or 'until promoted'}"


class Analysis(ApiModel):
    """Thresholds on the new revision's live evidence, gathered from the sidecars every interval.

    Only thresholds that are set are checked. With fewer than ``minSamples`` observations a
    metric is Inconclusive: the rollout pauses instead of promoting or rolling back.
    """

    interval: str = Field(default="1m", description="How often the evidence is gathered and judged (e.g. 1m).", pattern=DURATION, max_length=32)
    min_samples: int = Field(default=100, description="Fewer observations than this: Inconclusive (pause), never Pass or Fail.", ge=1, le=10_000_000)
    max_error_rate: float | None = Field(default=None, description="Highest acceptable fraction of failed requests on the new revision (0..1).", ge=0, le=1)
    max_latency_p95_ratio: float | None = Field(default=None, description="Highest acceptable p95 latency of the new revision divided by stable's p95.", gt=0, le=1000)
    max_latency_p99_ratio: float | None = Field(default=None, description="Highest acceptable p99 latency of the new revision divided by stable's p99 (the tail a p95 hides).", gt=0, le=1000)
    min_valid_output_rate: float | None = Field(default=None, description="Lowest acceptable fraction of schema-valid / parseable outputs (0..1).", ge=0, le=1)
    min_agreement: float | None = Field(default=None, description="Lowest acceptable fraction of answers equal to stable's (same label / same JSON) on compared requests (0..1).", ge=0, le=1)
    min_task_agreement: float | None = Field(
        default=None, ge=0, le=1,
        description="Lowest acceptable agreement with stable on mirrored task requests only (POST /v1/classify, /v1/extract): "
                    "the same normalised label, or equal extracted JSON (0..1). Unlike minAgreement it ignores chat answers, "
                    "whose free text rarely matches word for word.")
    max_cost_ratio: float | None = Field(default=None, description="Highest acceptable cost per request of the new revision divided by stable's (needs prices).", gt=0, le=1000)
    failure_limit: int = Field(default=0, description="Failed analyses tolerated: the rollout aborts at failure number failureLimit+1.", ge=0, le=100)

    @property
    def interval_seconds(self) -> int:
        return max(1, duration_seconds(self.interval))


# The live analysis' metrics, in the order status lists them: name -> (the ``Analysis`` field
# holding its threshold, whether the threshold is an upper bound). The operator measures each
# (``modelroute.operator.rollout.analysis.MEASURES``); ``kubectl modelroute`` prints the bounds.
ANALYSIS_METRICS: dict[str, tuple[str, bool]] = {
    "errorRate": ("max_error_rate", True),
    "latencyP95Ratio": ("max_latency_p95_ratio", True),
    "latencyP99Ratio": ("max_latency_p99_ratio", True),
    "validOutputRate": ("min_valid_output_rate", False),
    "agreement": ("min_agreement", False),
    "taskAgreement": ("min_task_agreement", False),
    "costRatio": ("max_cost_ratio", True),
}
# Every metric, live or gate (errorRate, latencyP95Seconds, accuracyDrop), whose threshold is an upper bound.
UPPER_BOUNDS = frozenset({*(name for name, (_, upper) in ANALYSIS_METRICS.items() if upper), "latencyP95Seconds", "accuracyDrop"})


class StickyBy(ApiModel):
    """Where the key that pins a caller to one revision comes from."""

    header: str = Field(description="Request header whose value is the key (e.g. x-user-id); requests without it are split at random.", pattern=HEADER_NAME, max_length=256)


class GateThresholds(ApiModel):
    """Lowest acceptable results of the golden dataset on the new revision."""

    min_exact_match: float | None = Field(default=None, description="Lowest acceptable fraction of answers equal to the expected label or JSON (0..1).", ge=0, le=1)
    min_valid_output_rate: float | None = Field(default=None, description="Lowest acceptable fraction of schema-valid / parseable outputs (0..1).", ge=0, le=1)
    max_error_rate: float | None = Field(default=None, description="Highest acceptable fraction of failed cases (0..1).", ge=0, le=1)
    max_latency_p95_seconds: float | None = Field(default=None, description="Highest acceptable p95 latency of one case, in seconds.", gt=0, le=600)
    max_accuracy_drop: float | None = Field(
        default=None, ge=0, le=1,
        description="Relative: highest acceptable drop of exact match from the stable revision on the same dataset "
                    "(stable's exactMatch minus the new revision's, 0..1). Set, the dataset runs on both revisions.")


class Gate(ApiModel):
    """A golden dataset run against the new revision through one selected sidecar before any live traffic."""

    config_map: str = Field(description="Name of the ConfigMap (same namespace) holding the dataset.", pattern=DNS_LABEL, max_length=253)
    key: str = Field(description="Key in the ConfigMap whose value is the dataset, JSONL: one {input, expected, schema?} per line.", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    thresholds: GateThresholds = Field(default_factory=lambda: GateThresholds(), description="Below these the rollout aborts with the numbers in status.")


class CanaryStrategy(ApiModel):
    """Steps, analysis and safety limits of a canary rollout."""

    steps: list[CanaryStep] = Field(description="Walked in order; after the last one the new revision is promoted to stable.", min_length=1, max_length=MAX_STEPS)
    analysis: Analysis | None = Field(default=None, description="Automatic judgement of the new revision; unset: only people promote or abort.")
    progress_deadline_seconds: int | None = Field(
        default=None,
        description="Longest a mirror or weight step may wait for every selected sidecar to serve it; exceeded: abort.",
        ge=1,
        le=86_400 * 7,
    )
    sticky_by: StickyBy | None = Field(default=None, description="Pin each caller to one revision on every pod (by a request header).")
    gate: Gate | None = Field(default=None, description="Golden-dataset check of the new revision before any live traffic.")


class Strategy(ApiModel):
    """How a change of the route's targets, params or prompt reaches live traffic. Unset: at once."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "has(self.canary)", "message": "strategy needs canary"},
    ]})

    canary: CanaryStrategy | None = Field(default=None, description="Shadow, then split live traffic step by step, judged by analysis.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if self.canary is None:
            raise ValueError("strategy needs canary")
        return self


# ---- status ------------------------------------------------------------------------------


class RolloutPhase(StrEnum):
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    DEGRADED = "Degraded"


class Verdict(StrEnum):
    PASS = "Pass"
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"


class PauseReason(StrEnum):
    PAUSE_STEP = "PauseStep"          # a pause step (timed or until promoted)
    USER = "UserPause"                # `kubectl modelroute pause`
    INCONCLUSIVE = "Inconclusive"     # too little evidence at a decision point


class Weights(ApiModel):
    """Share of live requests per revision, in percent."""

    stable: int = Field(default=100, description="Percent of live requests answered by the stable revision.", ge=0, le=100)
    canary: int = Field(default=0, description="Percent of live requests answered by the new revision.", ge=0, le=100)
    mirror: int = Field(default=0, description="Percent of live requests also sent (shadowed) to the new revision.", ge=0, le=100)

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "self.stable + self.canary == 100", "message": "stable + canary must be 100"},
    ]})

    @model_validator(mode="after")
    def _sum(self) -> Self:
        if self.stable + self.canary != 100:
            raise ValueError("stable + canary must be 100")
        return self

    @property
    def touches_canary(self) -> bool:
        """Whether the new revision gets any live traffic (answered or mirrored)."""
        return self.canary > 0 or self.mirror > 0


class MetricResult(ApiModel):
    name: str = Field(description="samples, or a metric of ANALYSIS_METRICS: errorRate, latencyP95Ratio, latencyP99Ratio, validOutputRate, agreement, taskAgreement, costRatio.", max_length=64)
    value: float | None = Field(default=None, description="Measured value (unset when nothing was measured).")
    threshold: float | None = Field(default=None, description="The configured limit it is compared with.")
    samples: int = Field(default=0, description="Observations the value is based on.", ge=0)
    verdict: Verdict = Field(description="Pass, Fail or Inconclusive (fewer samples than minSamples).")


class AnalysisStatus(ApiModel):
    verdict: Verdict = Field(description="Fail if any metric failed, else Inconclusive if any was, else Pass.")
    metrics: list[MetricResult] = Field(default_factory=lambda: [], description="The latest result per metric.", max_length=MAX_METRICS)
    time: datetime = Field(description="When this analysis ran.")
    failures: int = Field(default=0, description="Failed analyses of this rollout so far (aborts past failureLimit).", ge=0)


class GateRevisionResult(ApiModel):
    """One revision's numbers on the golden dataset."""

    revision: str = Field(description="The revision the cases ran on.", max_length=128)
    role: Literal["candidate", "stable"] = Field(description="candidate: the new revision; stable: the baseline it is compared with.")
    cases: int = Field(ge=0, description="Cases run.")
    errors: int = Field(ge=0, description="Cases that got no answer.")
    exact_match: float | None = Field(default=None, ge=0, le=1, description="Share of cases whose answer matched the expectation; unset: no expectations.")
    valid_output_rate: float = Field(ge=0, le=1, description="Share of cases whose answer passed the output check.")
    latency_p95_seconds: float | None = Field(default=None, ge=0, description="p95 latency of the answered cases, in seconds.")


class GateStatus(ApiModel):
    revisions: list[GateRevisionResult] = Field(
        default_factory=lambda: [], max_length=2,
        description="Each revision's numbers on the dataset: the candidate, and stable when a threshold is relative.")
    verdict: Verdict = Field(description="Pass or Fail once the dataset ran; Inconclusive while it runs.")
    metrics: list[MetricResult] = Field(default_factory=lambda: [], description="Results of the golden dataset against the thresholds.", max_length=MAX_METRICS)
    message: str = Field(default="", description="Summary of the run.", max_length=1024)


class PauseCondition(ApiModel):
    reason: PauseReason = Field(description="PauseStep, UserPause or Inconclusive.")
    start_time: datetime = Field(description="When the pause started; kept so an operator restart resumes the same pause.")
    duration: str | None = Field(default=None, description="Length of a timed pause step; unset: until promoted or resumed.", pattern=DURATION, max_length=32)


class RolloutStatus(ApiModel):
    """Where the rollout of the newest revision stands (Argo Rollouts style)."""

    phase: RolloutPhase = Field(description="Healthy, Progressing, Paused or Degraded (aborted: all traffic on stable).")
    stable_revision: str | None = Field(default=None, description="Revision that serves live traffic by default (the last promoted one).", max_length=64)
    canary_revision: str | None = Field(default=None, description="Revision being rolled out (or the aborted one while Degraded).", max_length=64)
    attempt: int = Field(default=0, description="Rollout attempt of the canary revision; `retry` increments it (fresh evidence).", ge=0)
    current_step_index: int | None = Field(default=None, description="Index of the current step in strategy.canary.steps; equal to the number of steps while promoting.", ge=0)
    step_start_time: datetime | None = Field(default=None, description="When the current step started.")
    decision_start_time: datetime | None = Field(default=None, description="When the rollout started waiting for a verdict at this decision point.")
    weights: Weights = Field(default_factory=lambda: Weights(), description="Weights pushed to the sidecars.")
    acked: bool = Field(default=False, description="Whether every selected sidecar serves these weights.")
    analysis: AnalysisStatus | None = Field(default=None, description="The latest analysis of the canary revision.")
    gate: GateStatus | None = Field(default=None, description="Result of the golden-dataset gate, when one is configured.")
    pause_conditions: list[PauseCondition] = Field(default_factory=lambda: [], description="Why the rollout is paused, with start times.", max_length=MAX_PAUSE_CONDITIONS)
    message: str = Field(default="", description="What the rollout is doing or waiting for, in a sentence.", max_length=2048)
    last_action: str | None = Field(default=None, description=f"The last {ACTION_ANNOTATION} annotation value handled (verb:nonce).", max_length=256)


# ---- revisions and sticky assignment ---------------------------------------------------------

NOT_SERVED = ("selector", "strategy")
"""Spec fields that say where and how a route rolls out, not what a sidecar serves: left out of the
revision id (editing them never starts a rollout), of the config hash, and of a canary's spec."""


def served_wire(spec: Any) -> dict[str, Any]:
    """The wire dict of a ModelRoute spec (an ``ApiModel`` or its wire dict) without ``NOT_SERVED``."""
    wire: dict[str, Any] = dict(spec.wire() if isinstance(spec, ApiModel) else spec)
    for key in NOT_SERVED:
        wire.pop(key, None)
    return wire


def revision_of(spec: Any) -> str:
    """The revision id of a ModelRoute spec: a hash of everything a sidecar serves.

    ``strategy`` (how to roll out) and ``selector`` (where) are left out (``NOT_SERVED``), so editing
    them never starts a rollout; any other field (targets, params, prompt, timeouts, retry, and
    fields added later such as output) is routing-relevant. Accepts a pydantic ``ApiModel``
    spec or its wire dict.
    """
    import json

    body = json.dumps(served_wire(spec), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(body).hexdigest()[:REVISION_LENGTH]


_BUCKETS = 10_000


def sticky_bucket(key: str, salt: str) -> int:
    """The key's position in 0..9999, uniform and the same on every pod and process."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=salt.encode("utf-8")[:64]).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def variant_for(key: str, salt: str, canary_weight: float) -> Literal["stable", "canary"]:
    """Which revision answers the caller ``key`` at ``canary_weight`` percent.

    ``salt`` is the canary revision id, so each rollout draws a fresh sample of callers.
    Monotone: raising the weight only moves keys from stable to canary, never back.
    """
    return "canary" if sticky_bucket(key, salt) < canary_weight * (_BUCKETS // 100) else "stable"
