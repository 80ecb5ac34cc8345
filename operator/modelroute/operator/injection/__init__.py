"""Sidecar injection as pure functions: ``decide`` whether a pod gets the sidecar, ``patch`` it.

The webhook server (``modelroute.operator.webhook``) is the only caller with I/O.
"""

from modelroute.operator.injection.decision import Decision, decide, has_sidecar
from modelroute.operator.injection.patch import JSONPatchOp, Plan, patch, plan, reinvocation_plan
from modelroute.operator.injection.settings import InjectionSettings, Probe, Resources, StartGate

__all__ = [
    "Decision", "InjectionSettings", "JSONPatchOp", "Plan", "Probe", "Resources", "StartGate",
    "decide", "has_sidecar", "patch", "plan", "reinvocation_plan",
]
