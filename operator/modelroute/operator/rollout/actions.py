"""People's actions on a rollout, carried by one annotation on the ModelRoute.

``modelroute.dev/action: VERB[:NONCE]``, written by ``kubectl modelroute VERB NAME`` (or by
hand: ``kubectl annotate mr NAME modelroute.dev/action=promote:$(date +%s) --overwrite``).

Why an annotation: people need only ``patch`` on modelroutes (not on the status, which the
operator owns), and metadata edits do not bump ``generation``. Restart-safe: the operator
records the handled value in ``status.rollout.lastAction``; a value different from it is
pending, so an action is applied once even across operator restarts, and the nonce makes
the same verb given twice two actions.

Verbs:

* ``promote``: finish the current step now (a pause of any kind, a failing or inconclusive
  decision) and go on with the next one. Weights still move only once every sidecar serves
  the previous ones.
* ``promote-full``: skip every remaining step and analysis; the new revision becomes stable.
* ``abort``: all traffic back to stable in one push; phase Degraded.
* ``retry``: after an abort, start the same revision again from the first step with fresh
  evidence (a new attempt).
* ``pause``: hold at the current step (analysis keeps running and may still abort).
* ``resume``: undo ``pause``; after an Inconclusive pause, wait one more analysis interval
  for evidence and decide again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from modelroute.api.v1alpha1.strategy import ACTION_ANNOTATION

__all__ = ["ACTION_ANNOTATION", "Action", "Verb", "pending_action"]


class Verb(StrEnum):
    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    ABORT = "abort"
    RETRY = "retry"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True)
class Action:
    verb: Verb
    value: str   # the full annotation value: what status.rollout.lastAction records

    @staticmethod
    def parse(value: str) -> Action | None:
        """``"promote:1732"`` -> Action(PROMOTE). None for an unknown verb (ignored, reported)."""
        verb = value.strip().split(":", 1)[0].strip().lower()
        try:
            return Action(Verb(verb), value)
        except ValueError:
            return None

    @staticmethod
    def annotation_value(verb: Verb, nonce: str) -> str:
        return f"{verb.value}:{nonce}"


def pending_action(annotation: str | None, last_handled: str | None) -> tuple[Action | None, str | None]:
    """(action to apply, value to record as handled). An unparseable value is recorded, not applied."""
    if not annotation or annotation == last_handled:
        return None, None
    return Action.parse(annotation), annotation
