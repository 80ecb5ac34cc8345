"""How long to wait before retrying the same target: exponential backoff with full jitter.

Pure policy (the router does the sleeping). Full jitter spreads retries of many clients
over the whole window instead of synchronising them; a provider's ``retry-after`` is a
floor we honour, capped by ``backoff.maxMs`` so one slow provider cannot hold a request.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from modelroute.api.v1alpha1.spec import Backoff


def backoff_delay(
    retry: int,
    backoff: Backoff,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry`` (1 = the first retry) on one target.

    Without ``retry_after``: uniform in ``[0, min(maxMs, initialMs * 2**(retry-1))]``.
    With ``retry_after`` (seconds, from the provider): exactly that, capped at ``maxMs``.
    ``rand`` returns a float in ``[0, 1)``; inject it in tests.
    """
    cap = backoff.max_ms / 1000.0
    if retry_after is not None:
        return min(max(retry_after, 0.0), cap)
    exponent = min(max(retry - 1, 0), 32)  # 2**32 * initialMs is far past any cap
    ceiling = min(cap, backoff.initial_ms / 1000.0 * (1 << exponent))
    return rand() * ceiling
