"""One live request on a route whose rollout is in progress: variant, evidence and mirror copy.

Every entry point (``serve`` in inbound.py for chat, messages, Gemini and responses; the
task endpoints in tasks.py) makes a ``RolloutRequest`` only when the route has a canary, so
a route without one pays nothing. It picks the variant (sticky by header, else by weight),
starts the mirror copy when stable answers and the dice say so, and records the request's
outcome into the run's counters for its variant when it ends: ``answered``/``failed`` for
non-streaming requests, ``feed`` per chunk and ``streamed`` / ``failed`` for streams.
``close()`` (always called) hands stable's answer (``output.answer.answer_of``) to the mirror
copy for comparison. ``prepare`` says what the request is on the mirror route (``rollout.mirror``):
the same body for chat, the task written from the canary's own prompt and contract for tasks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from modelroute.sidecar.output.answer import answer_of, output_valid
from modelroute.sidecar.rollout.evidence import StreamText, wants_json
from modelroute.sidecar.rollout.mirror import Prepare, chat_ask
from modelroute.sidecar.routing.canary import CANARY, STABLE, Canary
from modelroute.sidecar.routing.runtime import RouteRuntime, Runtime
from modelroute.sidecar.server.state import SidecarState

Json = dict[str, Any]


class RolloutRequest:
    __slots__ = ("_done", "_record", "_stable_answer", "_stream_text", "_t0", "_text", "_want_json", "evidence", "route")

    def __init__(self, state: SidecarState, runtime: Runtime, stable: RouteRuntime, canary: Canary,
                 headers: Mapping[str, str], prepare: Prepare, *, want_json: bool) -> None:
        variant = canary.pick(headers)
        self.route = canary.route if variant == CANARY else stable
        self.evidence = state.evidence
        self._record = state.evidence.variant(stable.name, canary.run_id, variant)
        self._want_json = want_json
        self._stream_text: StreamText | None = None
        self._text: str | None = None
        self._done = False
        self._stable_answer: asyncio.Future[str | None] | None = None
        if variant == STABLE and canary.mirrors():
            mirror = state.evidence.variant(stable.name, canary.run_id, "mirror")
            self._stable_answer = state.mirrors.launch(runtime, canary, prepare, mirror)
        self._t0 = time.perf_counter()

    # -- outcomes ---------------------------------------------------------------------------
    def answered(self, target: str, response: Json) -> None:
        self._text = answer_of(response)
        usage = response.get("usage")
        self._ok(target, usage if isinstance(usage, dict) else None)

    def feed(self, chunk: Json) -> None:
        if self._stream_text is None:
            self._stream_text = StreamText()
        self._stream_text.feed(chunk)

    def streamed(self, target: str, usage: Json | None) -> None:
        self._text = self._stream_text.text() if self._stream_text is not None else ""
        self._ok(target, usage)

    def _ok(self, target: str, usage: Json | None) -> None:
        self._done = True
        rec = self._record
        if rec is None:
            return
        text = self._text or ""
        model = next((t.target.model for t in self.route.targets if t.name == target), "")
        rec.answered(time.perf_counter() - self._t0, usage, self.evidence.cost(model, usage), output_valid(text, self._want_json))

    def failed(self, kind: str) -> None:
        if self._done:
            return
        self._done = True
        self._text = None
        if self._record is not None:
            self._record.failed(kind)

    def close(self) -> None:
        """The request is over: anything unrecorded was cancelled; give the mirror copy stable's answer."""
        if not self._done:
            self.failed("cancelled")
        fut = self._stable_answer
        if fut is not None and not fut.done():
            fut.set_result(self._text)


def chat_rollout(state: SidecarState, runtime: Runtime, stable: RouteRuntime, canary: Canary,
                 headers: Mapping[str, str], body: Json) -> RolloutRequest:
    """The rollout side of a chat request (any chat wire): mirrored as is, valid when JSON if it asked for JSON."""
    return RolloutRequest(state, runtime, stable, canary, headers, chat_ask(body), want_json=wants_json(body))
