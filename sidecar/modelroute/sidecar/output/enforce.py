"""The repair loop on one target: call, check, feed the error back, up to ``repair_attempts`` times.

No I/O of its own: it takes the target's ``complete(request) -> chat.completion`` call (the
router's per-target attempt), so the router keeps owning retries, deadlines and fallback.
When the last repair is still invalid it raises ``InvalidOutput``, which the router
treats as a fallback reason (``invalid-output``) like a 5xx; after the last target the
HTTP layer answers 422 with ``tasks.invalid_output_body``. An invalid answer is never
returned as if it were valid.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from modelroute.sidecar.output.contract import OutputContract, repair_request
from modelroute.sidecar.output.parse import OutputError
from modelroute.sidecar.translate.chat import answer_text

Json = dict[str, Any]


class InvalidOutput(Exception):
    """Every try on this target produced an answer that breaks the contract. ``str(e)`` is safe to show."""

    def __init__(self, message: str, *, answer: str | None, tries: int, usage: Json | None) -> None:
        super().__init__(message)
        self.message = message
        self.answer = answer
        self.tries = tries
        self.usage = usage  # tokens spent on the invalid tries (for limits, stats and cost)


@dataclass(frozen=True, slots=True)
class Valid:
    """A checked answer: the value it stands for, the completion, tries used, usage summed over tries."""

    value: Any
    completion: Json
    tries: int
    usage: Json | None


def add_usage(a: Json | None, b: Json | None) -> Json | None:
    """Sum of two OpenAI usage dicts (top-level counts and the two details objects)."""
    if not a or not b:
        return a or b
    out: Json = {k: (a.get(k) or 0) + (b.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    for details in ("prompt_tokens_details", "completion_tokens_details"):
        da, db = a.get(details) or {}, b.get(details) or {}
        if da or db:
            out[details] = {k: (da.get(k) or 0) + (db.get(k) or 0) for k in {*da, *db}}
    return out


async def complete_valid(complete: Callable[[Json], Awaitable[Json]], request: Json, contract: OutputContract) -> Valid:
    """``complete(request)``, checked; on ``OutputError`` retried with the repair turn.

    ``complete`` failures (``UpstreamError``, timeouts) propagate unchanged: they are the
    router's to handle. Raises ``InvalidOutput`` after ``1 + contract.repair_attempts`` invalid answers.
    """
    usage: Json | None = None
    current = request
    tries = 0
    while True:
        completion = await complete(current)
        tries += 1
        usage = add_usage(usage, completion.get("usage"))
        try:
            value = contract.check_completion(completion)
        except OutputError as e:
            answer = answer_text(completion)
            if tries > contract.repair_attempts:
                raise InvalidOutput(str(e), answer=answer, tries=tries, usage=usage) from None
            current = repair_request(current, answer, e, contract=contract)
            continue
        return Valid(value, completion, tries, usage)
