"""The operator's Prometheus metrics and the small HTTP server that exposes them (the
webhook process serves its own registry with the same server).

``modelroute_operator_convergence_seconds``: from receiving a ModelRoute change event to
the last sidecar of the namespace acknowledging the config that includes it.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.convergence = Histogram(
            "modelroute_operator_convergence_seconds",
            "Time from a ModelRoute change event to the last sidecar of its namespace acknowledging the new config.",
            buckets=BUCKETS, registry=r,
        )
        self.pushes = Counter("modelroute_operator_pushes_total", "Config pushes to sidecars by outcome.",
                              ["outcome"], registry=r)
        self.reconcile = Histogram("modelroute_operator_reconcile_seconds", "Duration of one namespace reconcile.",
                                   buckets=BUCKETS, registry=r)
        self.reconciles = Counter("modelroute_operator_reconciles_total", "Namespace reconciles by result.",
                                  ["result"], registry=r)
        self.routes = Gauge("modelroute_operator_routes", "ModelRoutes by phase (last reconcile of each namespace).",
                            ["namespace", "phase"], registry=r)
        self.pods = Gauge("modelroute_operator_sidecar_pods", "Sidecar pods known per namespace.",
                          ["namespace"], registry=r)
        self.leader = Gauge("modelroute_operator_leader", "1 while this operator holds the leader lease.", registry=r)

    def text(self) -> bytes:
        return bytes(generate_latest(self.registry))


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` of a listener option (``--metrics-listen``); an empty host means all."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)


class MetricsServer:
    """``GET /metrics`` (Prometheus text of ``registry``) and ``GET /healthz`` on one listener."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self.registry, self.host, self.port = registry, host, port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # the bound port when 0 was asked
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=bytes(generate_latest(self.registry)), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")
