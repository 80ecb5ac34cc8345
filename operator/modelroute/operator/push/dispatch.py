"""Per-pod delivery of config pushes: bounded concurrency, per-pod backoff, and no pod waits for another.

Why it exists: a reconcile that awaited every push waited for its slowest pod. A pod that accepts
connections and never answers (a hung node) held its namespace's reconcile, and with it every later
change there, for attempts x timeout, and held push slots healthy pods queued for (bench/fleet.py,
5 % of 1,000 pods black-holed). Here:

* ``Slots``: one global bound on requests waiting for an answer. A request still unanswered after
  ``slow_after`` gives its slot back and keeps waiting (up to its own timeout) among at most
  ``max_slow`` stragglers, so hung pods cannot fill the slots healthy pods need.
* ``Deliveries``: at most one push in flight per pod; a newer config replaces a queued one; a
  transient failure (timeout, unreachable, 5xx) is retried for that pod alone after
  ``Backoff.delay`` (exponential, jittered, capped), never by re-running the namespace. The
  reconcile waits for fresh deliveries at most ``wait`` seconds and not at all for failing pods;
  those it leaves behind report back through ``on_settled`` (the namespace is marked again).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from modelroute.api.config import SidecarConfig
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.client import TRANSIENT, PushOutcome

T = TypeVar("T")

Attempt = Callable[[SidecarPod, SidecarConfig, bool], Awaitable[PushOutcome]]
"""One try at one pod (``Pusher.attempt``: verify first if asked, then the signed PUT); the seam tests replace."""


@dataclass(frozen=True)
class Backoff:
    """Delay before a pod's next try after ``failures`` transient failures in a row: doubling from
    ``base`` up to ``cap``, each delay drawn from its upper half (jitter that never retries early)."""

    base: float = 0.2
    cap: float = 30.0

    def ceiling(self, failures: int) -> float:
        return min(self.cap, self.base * 2.0 ** max(0, failures - 1))

    def delay(self, failures: int, rng: random.Random) -> float:
        top = self.ceiling(failures)
        return rng.uniform(top / 2, top)


class Slots:
    """A global bound on requests in flight, whose slow requests give their slot back (see module doc)."""

    def __init__(self, semaphore: asyncio.Semaphore, *, slow_after: float = 0.5, max_slow: int = 256) -> None:
        self.semaphore = semaphore
        self.slow_after = slow_after
        self.max_slow = max_slow
        self.slow = 0          # requests waiting past slow_after without a slot now
        self.released = 0      # how many requests gave their slot back (a figure for tests and logs)

    async def run(self, make: Callable[[], Awaitable[T]]) -> T:
        await self.semaphore.acquire()
        held = True
        task = asyncio.ensure_future(make())
        try:
            done, _ = await asyncio.wait({task}, timeout=self.slow_after)
            if not done and self.slow < self.max_slow:
                self.semaphore.release()
                held = False
                self.slow += 1
                self.released += 1
                try:
                    return await task
                finally:
                    self.slow -= 1
            return await task
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            if held:
                self.semaphore.release()


@dataclass
class _Delivery:
    pod: SidecarPod
    config: SidecarConfig
    verify: bool
    future: asyncio.Future[PushOutcome]   # the outcome: delivered, or failed for a reason a retry cannot fix
    first: asyncio.Future[PushOutcome]    # the first try's outcome (what a reconcile waits for)
    left_behind: bool = False  # the reconcile stopped waiting: report back through on_settled


@dataclass
class _Pod:
    failures: int = 0                      # transient failures in a row
    due: float = 0.0                       # loop time before which no try is made
    last: PushOutcome | None = None        # the last failed try (None after a success)
    want: _Delivery | None = None
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class Deliveries:
    """Pushes per pod, with their own retries; see the module docstring."""

    def __init__(
        self, attempt: Attempt, slots: Slots, *, backoff: Backoff | None = None, wait: float = 1.0,
        rng: random.Random | None = None,
        on_outcome: Callable[[SidecarPod, PushOutcome], None] = lambda pod, outcome: None,
        on_settled: Callable[[str], None] = lambda namespace: None,
    ) -> None:
        self.attempt, self.slots = attempt, slots
        self.backoff = backoff or Backoff()
        self.wait = wait
        self.rng = rng or random.Random()
        self.on_outcome = on_outcome    # every try's outcome (metrics, acks)
        self.on_settled = on_settled    # a delivery the reconcile left behind ended, or first failed
        self._pods: dict[str, _Pod] = {}

    def submit(self, pod: SidecarPod, config: SidecarConfig, *, verify: bool) -> asyncio.Future[PushOutcome]:
        """Deliver ``config`` to ``pod``: the future of its outcome (the one in flight when it is the same config)."""
        st = self._pods.setdefault(pod.uid, _Pod())
        current = st.want
        if current is not None and not current.future.done() and current.config.hash == config.hash:
            current.pod = pod
            return current.future
        if current is not None and not current.future.done():  # superseded: nobody waits for it any more
            current.future.set_result(PushOutcome(None, False, "Superseded", f"replaced by a push of {config.hash}"))
        loop = asyncio.get_running_loop()
        st.want = _Delivery(pod, config, verify, loop.create_future(), loop.create_future())
        if st.task is None:
            st.task = asyncio.create_task(self._run(pod.uid, st), name=f"push to {pod.namespace}/{pod.name}")
        return st.want.future

    def failing(self, uid: str) -> bool:
        """Whether the pod's delivery is known to be slow or failing (a reconcile does not wait for it)."""
        st = self._pods.get(uid)
        return st is not None and (st.failures > 0 or (st.want is not None and st.want.left_behind))

    def last_failure(self, uid: str) -> PushOutcome | None:
        st = self._pods.get(uid)
        return st.last if st is not None else None

    def leave_behind(self, uid: str) -> None:
        st = self._pods.get(uid)
        if st is not None and st.want is not None:
            st.want.left_behind = True

    async def gather(self, subs: dict[str, asyncio.Future[PushOutcome]]) -> dict[str, PushOutcome | None]:
        """Outcomes of the deliveries in ``subs`` (pod uid -> ``submit``'s future): their first try is waited
        for at most ``wait`` seconds, a failing pod's not at all. A delivery still under way is left behind
        (it reports back through ``on_settled``): its last failure, or None when none is known yet."""
        first = {uid: st.want.first for uid in subs if (st := self._pods.get(uid)) is not None and st.want is not None}
        fresh = [first[uid] for uid, f in subs.items() if not f.done() and uid in first and not self.failing(uid)]
        if fresh:
            await asyncio.wait(fresh, timeout=self.wait)
        out: dict[str, PushOutcome | None] = {}
        for uid, f in subs.items():
            if f.done():
                out[uid] = f.result()
            else:
                self.leave_behind(uid)
                out[uid] = self.last_failure(uid)
        return out

    def reset(self, uid: str) -> None:
        """The pod's sidecar (re)started: forget its failures, try now."""
        st = self._pods.get(uid)
        if st is not None:
            st.failures, st.due = 0, 0.0
            st.wake.set()

    def forget(self, uid: str) -> None:
        """The pod is gone."""
        st = self._pods.pop(uid, None)
        if st is not None and st.task is not None:
            st.task.cancel()

    async def close(self) -> None:
        tasks = [st.task for st in self._pods.values() if st.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, uid: str, st: _Pod) -> None:
        loop = asyncio.get_running_loop()
        try:
            while st.want is not None and not st.want.future.done():
                delay = st.due - loop.time()
                if delay > 0:  # backing off: no slot is held while waiting
                    st.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(st.wake.wait(), delay)
                    continue
                d = st.want
                outcome = await self.slots.run(functools.partial(self.attempt, d.pod, d.config, d.verify))
                if outcome.ok:
                    st.failures, st.last = 0, None
                elif outcome.reason in TRANSIENT:
                    st.failures += 1
                    st.last = outcome
                    st.due = loop.time() + self.backoff.delay(st.failures, self.rng)
                else:
                    st.last = outcome
                self.on_outcome(d.pod, outcome)
                if not d.first.done():
                    d.first.set_result(outcome)
                if d is not st.want or d.future.done():
                    continue  # superseded while in flight: deliver the newer config
                if outcome.ok or outcome.reason not in TRANSIENT:
                    d.future.set_result(outcome)
                    if d.left_behind:
                        self.on_settled(d.pod.namespace)
                elif st.failures == 1 and d.left_behind:
                    self.on_settled(d.pod.namespace)  # its status can say why now; later tries report when they end
        finally:
            st.task = None
            if self._pods.get(uid) is st and st.failures == 0 and (st.want is None or st.want.future.done()):
                del self._pods[uid]
