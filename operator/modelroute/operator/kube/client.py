"""A minimal async Kubernetes REST client over one reused aiohttp session.

Only what the operator writes and reads besides kopf's watches: ConfigMaps, Secrets (key
names only), pod annotations, ModelRoute status, Leases, and finished ModelRouteEvals (deleted). Raw JSON in, raw JSON out.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from modelroute.api.v1alpha1 import GROUP, PLURAL, VERSION
from modelroute.operator.kube.connection import KubeConnection

MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


class Kube:
    """``timeout`` bounds every call (aiohttp's own default is 300 s: a stalled apiserver must not hold a caller that long)."""

    def __init__(self, connection: KubeConnection, session: aiohttp.ClientSession,
                 timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT) -> None:
        self.connection = connection
        self.session = session
        self.timeout = timeout
        self._ssl = connection.ssl_context()

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        auth = self.connection.auth_header()
        if auth:
            headers["Authorization"] = auth
        data = json.dumps(body).encode() if body is not None else None
        async with self.session.request(
            method, self.connection.server + path, data=data, headers=headers, ssl=self._ssl, timeout=self.timeout
        ) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    err = json.loads(text)
                    raise ApiError(resp.status, err.get("reason", ""), err.get("message", text))
                except (ValueError, AttributeError):
                    raise ApiError(resp.status, resp.reason or "", text[:500]) from None
            return json.loads(text) if text else None

    async def get(self, path: str) -> Any:
        """The object, or None when it does not exist."""
        try:
            return await self.request("GET", path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    async def create(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body)

    async def replace(self, path: str, body: Any) -> Any:
        return await self.request("PUT", path, body)

    async def merge_patch(self, path: str, body: Any) -> Any:
        return await self.request("PATCH", path, body, MERGE_PATCH)

    async def delete(self, path: str, body: Any = None) -> Any:
        """DELETE, with ``body`` as its DeleteOptions (e.g. ``{"preconditions": {"uid": ...}}``)."""
        return await self.request("DELETE", path, body)


def configmaps(ns: str, name: str | None = None) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps" + (f"/{name}" if name else "")


def secret(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/secrets/{name}"


def pod(ns: str, name: str) -> str:
    return f"/api/v1/namespaces/{ns}/pods/{name}"


def modelroute_status(ns: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{PLURAL}/{name}/status"


def providerquota_status(ns: str, name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/providerquotas/{name}/status"


def leases(ns: str, name: str | None = None) -> str:
    return f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases" + (f"/{name}" if name else "")
