"""Where the webhook's TLS material comes from, and keeping the apiserver's trust in it.

Two sources:

* ``ManagedTls`` (the chart's default): the webhook keeps a CA and a serving certificate
  in a Secret of its own namespace (every replica converges on the same Secret), creates or renews them at start and periodically, and
  writes the CA into the ``caBundle`` of every webhook of its MutatingWebhookConfiguration.
  No cert-manager, no certificates in the chart (so ``helm template`` is deterministic and
  an upgrade never rotates the CA). Renewal keeps the CA, so the ``caBundle`` stays valid.
* ``FileTls``: certificate and key files mounted from elsewhere (cert-manager, ...); the
  caBundle is then someone else's job (e.g. cert-manager's CA injector).
"""

from __future__ import annotations

import base64
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from modelroute.operator.kube.client import ApiError, Kube
from modelroute.operator.webhook import certs

log = logging.getLogger("modelroute.webhook")

WEBHOOK_CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
JSON_PATCH = "application/json-patch+json"


class TlsSource(Protocol):
    async def load(self) -> tuple[Path, Path]:
        """(certificate chain file, key file) to serve with; called at start and on every refresh."""
        ...

    async def refresh(self) -> bool:
        """Renew or re-read if needed; True when the files changed."""
        ...


class FileTls:
    """Certificate files provided by the platform (re-read when their mtime changes)."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.cert_file, self.key_file = cert_file, key_file
        self._stamp: tuple[float, float] | None = None

    def _mtimes(self) -> tuple[float, float]:
        return (self.cert_file.stat().st_mtime, self.key_file.stat().st_mtime)

    async def load(self) -> tuple[Path, Path]:
        self._stamp = self._mtimes()
        return self.cert_file, self.key_file

    async def refresh(self) -> bool:
        return self._mtimes() != self._stamp


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class ManagedTls:
    """Webhook-managed CA + serving certificate in ``secret_name``, CA pushed to ``webhook_config``."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        secret_name: str,
        webhook_config: str | None,
        hosts: list[str],
        workdir: Path | None = None,
    ) -> None:
        self.kube = kube
        self.namespace, self.secret_name = namespace, secret_name
        self.webhook_config = webhook_config
        self.hosts = hosts
        self._dir = workdir or Path(tempfile.mkdtemp(prefix="modelroute-webhook-"))
        self._current: certs.WebhookTls | None = None

    @property
    def secret_path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"

    async def load(self) -> tuple[Path, Path]:
        await self.refresh()
        return self._files()

    async def refresh(self) -> bool:
        tls = await self._ensure_secret()
        changed = tls != self._current
        if changed:
            self._current = tls
            self._write_files(tls)
        if self.webhook_config:
            await self._ensure_ca_bundle(tls.ca_cert)
        return changed

    def _files(self) -> tuple[Path, Path]:
        return self._dir / "tls.crt", self._dir / "tls.key"

    def _write_files(self, tls: certs.WebhookTls) -> None:
        cert, key = self._files()
        for path, data in ((cert, tls.cert), (key, tls.key)):
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)

    async def _ensure_secret(self, attempts: int = 3) -> certs.WebhookTls:
        for _ in range(attempts):
            secret = await self.kube.get(self.secret_path)
            data = {k: base64.b64decode(v) for k, v in ((secret or {}).get("data") or {}).items()}
            existing = certs.WebhookTls.from_secret_data(data)
            if existing is not None and not certs.problems(existing, self.hosts):
                return existing
            fresh = self._renew(existing)
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": self.secret_name, "namespace": self.namespace,
                             "labels": {"app.kubernetes.io/part-of": "modelroute", "app.kubernetes.io/component": "webhook-tls"}},
                "data": {k: _b64(v) for k, v in fresh.as_secret_data().items()},
            }
            try:
                if secret is None:
                    await self.kube.create(f"/api/v1/namespaces/{self.namespace}/secrets", body)
                else:
                    body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                    await self.kube.replace(self.secret_path, body)
            except ApiError as e:
                if e.status in (409, 422):  # someone else wrote it first: use theirs
                    continue
                raise
            log.info("webhook TLS: %s certificate for %s", "issued new" if existing is None else "renewed", ", ".join(self.hosts))
            return fresh
        raise RuntimeError(f"could not settle the webhook TLS Secret {self.namespace}/{self.secret_name}")

    def _renew(self, existing: certs.WebhookTls | None) -> certs.WebhookTls:
        if existing is not None and certs.ca_usable(existing):
            # keep the CA: the caBundle the apiserver already trusts stays valid
            return certs.issue(existing.ca_cert, existing.ca_key, self.hosts)
        return certs.generate(self.hosts)

    async def _ensure_ca_bundle(self, ca_pem: bytes) -> None:
        path = f"{WEBHOOK_CONFIGS}/{self.webhook_config}"
        config = await self.kube.get(path)
        if config is None:
            log.warning("MutatingWebhookConfiguration %s not found; sidecar injection is not registered", self.webhook_config)
            return
        want = _b64(ca_pem)
        ops: list[dict[str, Any]] = []
        for i, hook in enumerate(config.get("webhooks") or []):
            if (hook.get("clientConfig") or {}).get("caBundle") != want:
                ops.append({"op": "test", "path": f"/webhooks/{i}/name", "value": hook["name"]})
                ops.append({"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": want})
        if ops:
            await self.kube.request("PATCH", path, ops, JSON_PATCH)
            log.info("webhook TLS: caBundle set on %d webhook(s) of %s", len(ops) // 2, self.webhook_config)
