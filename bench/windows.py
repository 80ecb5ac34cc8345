"""Cost of the context-window pre-check per request: the input estimate and the whole ``WindowStep.check``.

Run: ``.venv/bin/python bench/windows.py``. Prints microseconds per call for a typical chat
request (system + 4 turns, ~2 KB), a long-document request (~400 KB ASCII) and the same in
non-ASCII text (which must be encoded to count UTF-8 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import timeit
from typing import Any

from modelroute.api.v1alpha1.providers import Window
from modelroute.sidecar.errors import UpstreamError
from modelroute.sidecar.pipeline.windows import WindowStep, estimate_input
from modelroute.sidecar.routing.call import Call


def requests() -> dict[str, dict[str, Any]]:
    turns = [{"role": r, "content": "Please summarise the ticket below in one line. " * 8}
             for r in ("system", "user", "assistant", "user", "assistant")]
    return {
        "typical (5 messages, 2 KB)": {"messages": turns, "max_tokens": 256},
        "long document (400 KB ASCII)": {"messages": [{"role": "user", "content": "lorem ipsum " * 33_000}]},
        "long document (400 KB UTF-8)": {"messages": [{"role": "user", "content": "überprüfung " * 31_000}]},
    }


async def main() -> None:
    step = WindowStep(None, label="m", window=Window(128_000, 16_384), when=None)  # type: ignore[arg-type]
    for name, req in requests().items():
        n = 20_000 if "typical" in name else 200
        est = timeit.timeit(lambda req=req: estimate_input(req), number=n) / n * 1e6  # type: ignore[misc]

        def check(req: dict[str, Any] = req) -> None:
            call = Call.__new__(Call)  # a request's Call: the estimate is made once per request
            call.input_tokens = None
            with contextlib.suppress(UpstreamError):  # the long ones do not fit: skipped
                step.check(call, req)

        full = timeit.timeit(check, number=n) / n * 1e6
        print(f"{name:32s} estimate {est:8.2f} µs   check (estimate + compare) {full:8.2f} µs   tokens {estimate_input(req)}")


if __name__ == "__main__":
    asyncio.run(main())
