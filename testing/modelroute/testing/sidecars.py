"""Real sidecars for tests: started in-process on ephemeral ports, driven over HTTP.

The unit and integration suites start sidecars the same way (state, then ``Sidecar``, then a
client session, all closed together) and speak to them the same way (``/stats``,
``/metrics``, ``PUT /config`` with a bearer token or an operator-signed push). This module is
that one way, plus the route documents aimed at the provider emulators.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import VerifyKey

from modelroute.api.config import SidecarConfig
from modelroute.api.signing import generate_private_key_pem, load_private_key, load_public_key, public_key_pem
from modelroute.operator.push.plan import signed_body
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState
from modelroute.testing.emulators.server import EmulatorServer

Json = dict[str, Any]
ADMIN_TOKEN = "test-admin-token"
ENV = {"KEY_OPENAI": "sk-openai-test", "KEY_ANTHROPIC": "sk-ant-test", "KEY_GEMINI": "gemini-test-key"}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash"}


def target(emu: EmulatorServer, provider: str, name: str | None = None, **extra: Any) -> Json:
    """A target at the emulator, keyed by ``KEY_<PROVIDER>`` from ``ENV`` unless ``apiKey`` is given."""
    base = emu.openai_url if provider == "openai" else emu.url
    return {"name": name or provider, "provider": provider, "model": extra.pop("model", MODELS[provider]),
            "baseUrl": base, "apiKey": extra.pop("apiKey", {"env": f"KEY_{provider.upper()}"}), **extra}


def route(name: str, targets: list[Json], **spec: Any) -> Json:
    """A ModelRoute document: one attempt, a 10 s timeout, unless ``spec`` says otherwise."""
    spec.setdefault("retry", {"attempts": 1, "backoff": {"initialMs": 10, "maxMs": 200}})
    spec.setdefault("timeoutSeconds", 10)
    return {"apiVersion": "modelroute.dev/v1alpha1", "kind": "ModelRoute", "metadata": {"name": name},
            "spec": {"route": name, "targets": targets, **spec}}


class OperatorKey:
    """A throwaway operator signing key; signs pushes exactly as the operator does."""

    def __init__(self) -> None:
        pem = generate_private_key_pem()
        self.private: Ed25519PrivateKey = load_private_key(pem)
        self.public: VerifyKey = load_public_key(public_key_pem(pem))

    def push(self, config: SidecarConfig, namespace: str, pod: str,
             issued_at: datetime | None = None) -> tuple[bytes, dict[str, str]]:
        """Body and headers of a signed ``ConfigPush`` to one pod."""
        return signed_body(self.private, namespace, pod, config, issued_at or datetime.now(UTC))


class SidecarClient:
    """A started sidecar and an HTTP session to talk to it."""

    def __init__(self, sidecar: Sidecar, http: aiohttp.ClientSession) -> None:
        self.sidecar = sidecar
        self.http = http

    @property
    def state(self) -> SidecarState:
        return self.sidecar.state

    @property
    def url(self) -> str:
        return self.sidecar.inbound_url

    async def put_config(self, body: Any) -> tuple[int, Json]:
        """``PUT /config`` with the admin bearer token (sidecars started with ``ADMIN_TOKEN``)."""
        async with self.http.put(self.sidecar.admin_url + "/config", data=json.dumps(body),
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as r:
            data: Json = await r.json()
            return r.status, data

    async def stats(self) -> Json:
        async with self.http.get(self.sidecar.admin_url + "/stats") as r:
            data: Json = await r.json()
            return data

    async def metrics(self) -> str:
        async with self.http.get(self.sidecar.admin_url + "/metrics") as r:
            return await r.text()


async def start_sidecar(stack: AsyncExitStack, state: SidecarState, auth: AuthSettings | None = None, *,
                        grace_seconds: float = 5) -> tuple[Sidecar, aiohttp.ClientSession]:
    """Start a sidecar on ``state`` and open a session to it; both close with ``stack``.

    ``auth``: the admin bearer token ``ADMIN_TOKEN`` unless given.
    """
    auth = auth if auth is not None else AuthSettings(admin_token=ADMIN_TOKEN)
    sidecar = await stack.enter_async_context(Sidecar(state, auth, grace_seconds=grace_seconds))
    http = await stack.enter_async_context(aiohttp.ClientSession())
    return sidecar, http
