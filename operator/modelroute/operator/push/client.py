"""Signed ``PUT /config`` pushes to sidecar admin endpoints: bounded, retried, one session.

Transient failures (connection errors, timeouts, 5xx, 429) are retried with jittered
exponential backoff; a sidecar's refusal (401/403: it does not trust our key; 422: it
rejected the config) is final for this round and reported with the sidecar's message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from modelroute.api import signing
from modelroute.api.admin import ConfigApplied, ServedConfig, error_summary
from modelroute.api.config import SidecarConfig
from modelroute.api.leases import LeasePush, LeasesHeld
from modelroute.api.stats import SidecarStats
from modelroute.operator.pods import SidecarPod
from modelroute.operator.push.plan import signed_body

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushOutcome:
    served_hash: str | None  # what the sidecar serves after this push (None: unknown)
    pushed: bool  # a PUT was acknowledged (False: nothing sent, or it failed)
    reason: str | None = None  # CamelCase failure reason
    message: str = ""
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def outcome(self) -> str:
        """Metric label."""
        return "ok" if self.ok and self.pushed else ("already_served" if self.ok else self.reason or "error")


TRANSIENT = frozenset({"Timeout", "Unreachable", "SidecarError"})  # worth another try later; the rest need a change


class _Retry(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


class Pusher:
    def __init__(
        self,
        key: Ed25519PrivateKey,
        session: aiohttp.ClientSession,
        *,
        concurrency: int = 32,
        attempts: int = 3,
        timeout: float = 3.0,
        backoff: float = 0.1,
    ) -> None:
        self.key = key
        self.session = session
        self.semaphore = asyncio.Semaphore(concurrency)
        self.attempts = attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 1.0))
        self.backoff = backoff

    async def served_version(self, pod: SidecarPod) -> str | None:
        """``GET /config``'s version, or None when the sidecar cannot say."""
        try:
            async with self.semaphore:
                return await self._served(pod)
        except _Retry:
            return None

    async def _served(self, pod: SidecarPod) -> str | None:
        """``GET /config``'s version (None: the sidecar cannot say); raises ``_Retry`` when it does not answer."""
        try:
            async with self.session.get(pod.admin_url + "/config", timeout=self.timeout) as resp:
                if resp.status != 200:
                    return None
                return ServedConfig.model_validate_json(await resp.read()).version or None
        except TimeoutError:
            raise _Retry("Timeout", f"no answer from {pod.admin_url} within {self.timeout.total}s") from None
        except aiohttp.ClientError as e:
            raise _Retry("Unreachable", f"{pod.admin_url}: {type(e).__name__}: {e}") from None
        except ValueError:   # also pydantic's ValidationError
            return None

    async def attempt(self, pod: SidecarPod, config: SidecarConfig, verify_first: bool) -> PushOutcome:
        """One try without a slot (``dispatch.Slots`` holds it): ``GET /config`` first when asked (no push when the
        sidecar serves ``config`` already), then the signed PUT. Retrying is the caller's (``dispatch.Deliveries``)."""
        try:
            if verify_first and await self._served(pod) == config.hash:
                return PushOutcome(served_hash=config.hash, pushed=False, attempts=1)
            return await self._put(pod, config, 1)
        except _Retry as e:
            return PushOutcome(served_hash=None, pushed=False, reason=e.reason, message=e.message, attempts=1)

    async def stats(self, pod: SidecarPod) -> SidecarStats | None:
        """``GET /stats`` as the operator reads it (rollout evidence, limiter state), or None when the sidecar cannot say."""
        try:
            async with self.semaphore, self.session.get(pod.admin_url + "/stats", timeout=self.timeout) as resp:
                if resp.status != 200:
                    return None
                return SidecarStats.model_validate_json(await resp.read())
        except ValidationError as e:
            log.warning("pod %s/%s: /stats does not match modelroute.api.stats.SidecarStats: %s",
                        pod.namespace, pod.name, e.errors(include_url=False, include_input=False)[:3])
            return None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def put_leases(self, pod: SidecarPod, push: LeasePush) -> dict[str, int] | None:
        """Signed ``PUT /leases``, one attempt (the next round is the retry): the generation the sidecar holds per quota,
        or None when it did not say (the lease may or may not be applied: the arithmetic assumes either)."""
        body = push.model_dump_json(by_alias=True, exclude_none=True).encode()
        headers = {signing.SIGNATURE_HEADER: signing.sign(self.key, body), "Content-Type": "application/json"}
        try:
            async with self.semaphore, self.session.put(pod.admin_url + "/leases", data=body, headers=headers,
                                                        timeout=self.timeout) as resp:
                text = await resp.text()
                if resp.status != 200:
                    log.warning("PUT /leases to %s/%s: HTTP %d: %s", pod.namespace, pod.name, resp.status, error_summary(text))
                    return None
                return LeasesHeld.model_validate_json(text).generations
        except (aiohttp.ClientError, TimeoutError, ValueError):   # ValueError: also pydantic's ValidationError
            return None

    async def push(self, pod: SidecarPod, config: SidecarConfig, *, verify_first: bool = False) -> PushOutcome:
        """A one-off push: up to ``attempts`` tries, each in a slot, jittered backoff after a transient failure.
        The reconciler's pushes go through ``dispatch.Deliveries`` (per-pod retries that hold nobody up)."""
        for n in range(1, self.attempts + 1):
            async with self.semaphore:
                outcome = await self.attempt(pod, config, verify_first and n == 1)
            if outcome.ok or outcome.reason not in TRANSIENT or n == self.attempts:
                return replace(outcome, attempts=n)
            await asyncio.sleep(random.uniform(0, self.backoff * 2 ** (n - 1)))
        raise AssertionError("unreachable: the last try returns")

    async def _put(self, pod: SidecarPod, config: SidecarConfig, attempt: int) -> PushOutcome:
        body, headers = signed_body(self.key, pod.namespace, pod.name, config, datetime.now(UTC), pod.uid)
        try:
            async with self.session.put(pod.admin_url + "/config", data=body, headers=headers, timeout=self.timeout) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise _Retry("Timeout", f"no answer from {pod.admin_url} within {self.timeout.total}s") from None
        except aiohttp.ClientError as e:
            raise _Retry("Unreachable", f"{pod.admin_url}: {type(e).__name__}: {e}") from None
        if status == 200:
            try:
                version: str | None = ConfigApplied.model_validate_json(text).version
            except ValidationError:
                version = None
            if version and version != config.hash:
                return PushOutcome(None, False, "HashMismatch",
                                   f"the sidecar reports {version} after a push of {config.hash}", attempt)
            return PushOutcome(served_hash=config.hash, pushed=True, attempts=attempt)
        message = f"HTTP {status}: {error_summary(text)}"
        if status in (401, 403):
            return PushOutcome(None, False, "Unauthorized", message + " (does the sidecar's --operator-public-key "
                               "match the operator's signing key?)", attempt)
        if status == 422:
            return PushOutcome(None, False, "Rejected", message, attempt)
        if status == 429 or status >= 500:
            raise _Retry("SidecarError", message)
        return PushOutcome(None, False, "HttpError", message, attempt)
