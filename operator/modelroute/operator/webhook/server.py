"""The HTTPS server the apiserver calls for sidecar injection (``modelroute webhook``).

``POST /mutate``: the webhook entry for annotated pods anywhere (failurePolicy Ignore).
``POST /mutate/namespace-enabled``: the entry whose namespaceSelector matches namespaces
labelled ``modelroute.dev/inject=enabled`` (failurePolicy Fail); being called there *is*
the namespace label, so the webhook needs no namespace read permission and no API call per
admission. ``GET /healthz`` for probes.

Malformed reviews get 400; an internal error gets 500 so the apiserver applies the entry's
failurePolicy (it counts any non-200 as a call failure) -- the policy, not this code,
decides whether a failure blocks pod creation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from modelroute.operator.injection import InjectionSettings
from modelroute.operator.webhook.review import BadReview, enabled_namespace_labels, review
from modelroute.operator.webhook.tls import TlsSource

log = logging.getLogger("modelroute.webhook")



class WebhookMetrics:
    """Registered in the webhook process's registry, so they appear on its ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry or CollectorRegistry()
        self.admissions = Counter("modelroute_webhook_admissions_total", "Pod admissions seen by the injector, by result.",
                                  ["result"], registry=r)
        self.latency = Histogram("modelroute_webhook_admission_seconds", "Time to answer one AdmissionReview.",
                                 buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0), registry=r)


MAX_BODY = 8 * 1024 * 1024  # pods are bounded by etcd's 1.5 MiB object limit; leave headroom


def _handler(settings: InjectionSettings, namespace_labels: Mapping[str, str], metrics: WebhookMetrics) -> Any:
    async def handle(request: web.Request) -> web.Response:
        with metrics.latency.time():
            try:
                body = json.loads(await request.read())
                if not isinstance(body, dict):
                    raise BadReview("the body is not a JSON object")
                answer, outcome = review(body, settings, namespace_labels=namespace_labels)
            except (BadReview, ValueError) as e:
                metrics.admissions.labels("bad_request").inc()
                log.warning("webhook: rejected malformed AdmissionReview: %s", e)
                return web.json_response({"error": str(e)}, status=400)
            except Exception:
                metrics.admissions.labels("error").inc()
                log.exception("webhook: internal error; the apiserver applies the webhook's failurePolicy")
                return web.json_response({"error": "internal error"}, status=500)
        result = "injected" if outcome.injected else ("patched" if outcome.patch_ops else "skipped")
        metrics.admissions.labels(result).inc()
        log.info("webhook: %s pod %s/%s: %s (%d patch ops)", result, outcome.namespace, outcome.pod, outcome.reason, outcome.patch_ops)
        return web.json_response(answer)

    return handle


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def build_app(settings: InjectionSettings, metrics: WebhookMetrics | None = None) -> web.Application:
    metrics = metrics or WebhookMetrics()
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/mutate", _handler(settings, {}, metrics))
    app.router.add_post("/mutate/namespace-enabled", _handler(settings, enabled_namespace_labels(), metrics))
    app.router.add_get("/healthz", _healthz)
    return app


def _split(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class WebhookServer:
    """Start, serve, refresh TLS periodically, stop. ``port`` is known after ``start``."""

    def __init__(
        self, listen: str, settings: InjectionSettings, tls: TlsSource, *,
        refresh_seconds: float = 3600, registry: CollectorRegistry | None = None,
    ) -> None:
        self.listen, self.settings, self.tls = listen, settings, tls
        self.metrics = WebhookMetrics(registry)
        self.refresh_seconds = refresh_seconds
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        cert, key = await self.tls.load()
        self._ssl.load_cert_chain(cert, key)
        self._runner = web.AppRunner(build_app(self.settings, self.metrics), access_log=None, handle_signals=False)
        await self._runner.setup()
        host, port = _split(self.listen)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, reuse_port=False)
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock, ssl_context=self._ssl).start()
        self._refresher = asyncio.create_task(self._refresh_loop(), name="webhook-tls-refresh")
        log.info("webhook: serving sidecar injection on https://%s:%d", host, self.port)
        return self.port

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                if await self.tls.refresh():
                    cert, key = await self.tls.load()
                    self._ssl.load_cert_chain(cert, key)  # applies to new handshakes
                    log.info("webhook: reloaded its TLS certificate")
            except Exception:
                log.exception("webhook: TLS refresh failed; serving the current certificate")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()


async def run_webhook(
    listen: str, settings: InjectionSettings, tls: TlsSource, *,
    refresh_seconds: float = 3600, registry: CollectorRegistry | None = None,
) -> None:
    """Serve until cancelled (run it as a task next to kopf)."""
    server = WebhookServer(listen, settings, tls, refresh_seconds=refresh_seconds, registry=registry)
    await server.start()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
