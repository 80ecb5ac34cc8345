"""Progressive delivery of ModelRoute revisions: a pure canary state machine and its analysis.

``machine.step`` decides, ``analysis.evaluate`` judges, ``counters`` aggregates the
sidecars' per-revision evidence, ``actions`` parses what people ask for. No I/O here: the
operator's reconciler feeds observations in and applies the decision (status, pushes, Events).
"""

from modelroute.operator.rollout.actions import Action, Verb, pending_action
from modelroute.operator.rollout.analysis import Judgement, canary_evidence, evaluate
from modelroute.operator.rollout.counters import Counters, Histogram, evidence_from_stats, total, window
from modelroute.operator.rollout.gate import GateResults, gate_status
from modelroute.operator.rollout.machine import (
    Decision,
    Desired,
    Event,
    Observations,
    Serving,
    serving_of,
    step,
    step_weights,
)

__all__ = [
    "Action", "Counters", "Decision", "Desired", "Event", "GateResults", "Histogram", "Judgement", "Observations",
    "Serving", "Verb", "canary_evidence", "evaluate", "evidence_from_stats", "gate_status", "pending_action", "serving_of", "step",
    "step_weights", "total", "window",
]
