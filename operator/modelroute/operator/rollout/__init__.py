"""Progressive delivery of ModelRoute revisions: a pure canary state machine and its analysis.

``machine.step`` decides, ``analysis.evaluate`` judges, ``counters`` aggregates the
sidecars' per-revision evidence, ``actions`` parses what people ask for, ``gate`` judges a
golden-dataset run. No I/O in these: the operator's reconciler feeds observations in and applies
the decision (status, pushes, Events) through ``driver`` (pure glue: state in, served routes
out). ``gate_runner`` is the one I/O module here: it fetches the dataset and asks a sidecar to
run it (``POST /eval``). Neither is imported by this ``__init__``.
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
