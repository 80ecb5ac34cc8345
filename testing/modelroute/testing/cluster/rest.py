"""A minimal JSON REST client for the local apiserver (plain dicts in, plain dicts out).

The kubelet player needs a handful of calls (create/get/list/patch/delete) and predictable
patch content types; a few lines over ``http.client`` with the admin client certificate are
simpler than the generated client. Tests that want the official client use
``ControlPlane.api_client()``.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from pathlib import Path
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class ApiError(RuntimeError):
    """A non-2xx answer; ``status`` is the HTTP code, ``body`` the decoded Status."""

    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        message = body.get("message", body) if isinstance(body, dict) else body
        super().__init__(f"{method} {path}: {status} {message}")
        self.status = status
        self.body = body


class KubeRest:
    """JSON over HTTPS to ``server``, authenticated with a client certificate.

    Keeps one connection per thread alive (the kubelet player's loop calls often).
    """

    def __init__(self, server: str, ca_cert: Path, client_cert: Path, client_key: Path) -> None:
        self.server = server.rstrip("/")
        parsed = urllib.parse.urlsplit(self.server)
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or 443
        self._ctx = ssl.create_default_context(cafile=str(ca_cert))
        self._ctx.load_cert_chain(str(client_cert), str(client_key))
        self._local = threading.local()

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        conn: http.client.HTTPSConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self._host, self._port, context=self._ctx, timeout=timeout)
            self._local.conn = conn
        conn.timeout = timeout
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> Any:
        target = path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        while True:
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection(timeout)
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                break
            except (http.client.HTTPException, ConnectionError, ssl.SSLError):
                self._drop_connection()
                if not reused:  # only a kept-alive connection the server closed is retried
                    raise
            except OSError:
                self._drop_connection()
                raise
        if resp.status >= 300:
            try:
                decoded: Any = json.loads(raw)
            except ValueError:
                decoded = raw.decode(errors="replace")
            raise ApiError(method, path, resp.status, decoded)
        return json.loads(raw) if raw else None

    def close(self) -> None:
        """Close this thread's connection."""
        self._drop_connection()

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any, content_type: str = MERGE_PATCH) -> Any:
        return self.request("PATCH", path, body, content_type=content_type)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as err:
            if err.status == 404:
                return None
            raise


def pod_path(namespace: str, name: str = "") -> str:
    base = f"/api/v1/namespaces/{namespace}/pods"
    return f"{base}/{name}" if name else base


def configmap_path(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/{name}"
