"""`modelroute webhook`: the sidecar-injection admission webhook as a process of its own.

Why not inside the operator: a namespace labelled ``modelroute.dev/inject=enabled`` has
failurePolicy Fail, so while nothing answers admission no pod is created there at all. The
operator is a single replica that may be scaled to 0, upgraded (Recreate) or crash; the
webhook is stateless (no Lease, no watch, no API call per admission), so the chart runs it as
its own Deployment, with as many replicas as wanted, under a ServiceAccount that may only
keep its TLS Secret and caBundle. Scaling the operator to 0 then leaves injection working,
and new pods load their routes from the signed bundle ConfigMap.

Only the public half of the signing key is used: it is injected into pods, so sidecars can
verify the operator's pushes and bundles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry

from modelroute.api import signing
from modelroute.operator.app import ENV_SIGNING_KEY, default_lease_namespace
from modelroute.operator.kube import connection as kubeconn
from modelroute.operator.kube.client import Kube
from modelroute.operator.metrics import MetricsServer, parse_address
from modelroute.operator.webhook import options
from modelroute.operator.webhook.server import WebhookServer

log = logging.getLogger("modelroute.webhook")


def configure(parser: argparse.ArgumentParser) -> None:
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--operator-public-key", type=Path, metavar="FILE",
                     help="the operator's Ed25519 public key (PEM), injected into pods for the sidecars")
    key.add_argument("--signing-key", type=Path, default=os.environ.get(ENV_SIGNING_KEY), metavar="FILE",
                     help=f"or the operator's private key (PEM, PKCS8): only its public half is used (env {ENV_SIGNING_KEY})")
    parser.add_argument("--operator-namespace", default=default_lease_namespace(), metavar="NS",
                        help="namespace of the operator and of this webhook: its TLS Secret lives there, "
                             "its pods are never injected (default: the pod's own namespace)")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig (managed TLS only); default: in-cluster service account, else $KUBECONFIG")
    parser.add_argument("--metrics-listen", type=parse_address, default=("0.0.0.0", 8080), metavar="HOST:PORT",
                        help="Prometheus /metrics and /healthz over plain HTTP (port 0: any free port)")
    parser.add_argument("--drain-seconds", type=float, default=2.0, metavar="SECONDS",
                        help="after SIGTERM, keep answering this long while the Service drops the pod")
    parser.add_argument("--log-level", default=os.environ.get("MODELROUTE_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])
    options.add_arguments(parser)


def public_key_pem(args: argparse.Namespace) -> str:
    """The PEM public key to inject, from ``--operator-public-key`` or ``--signing-key``.

    Always the canonical form, whatever the file's layout: the sidecar reads that without ``cryptography``.
    """
    if args.operator_public_key:
        # a bad file fails at start, not in every pod
        key = signing.load_public_key(Path(args.operator_public_key).read_bytes())
        return signing.canonical_public_key_pem(key).decode()
    return signing.public_key_pem(Path(args.signing_key).read_bytes()).decode()


async def serve(
    args: argparse.Namespace, *, stop: asyncio.Event | None = None, on_ready: Callable[[int, int], None] | None = None
) -> int:
    """Serve admission until ``stop`` (or SIGTERM/SIGINT), then drain for ``--drain-seconds``.

    ``on_ready(webhook_port, metrics_port)`` is called once both listeners are up.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    settings = options.settings_from_args(args, public_key_pem(args))
    registry = CollectorRegistry()
    host, port = args.metrics_listen
    metrics = MetricsServer(registry, host, port)
    async with aiohttp.ClientSession() as session:
        kube = Kube(kubeconn.load(args.kubeconfig), session) if args.webhook_tls == "managed" else None
        tls = options.tls_from_args(args, kube)
        server = WebhookServer(args.webhook_listen, settings, tls, registry=registry)
        await server.start()
        await metrics.start()
        log.info("webhook: metrics on http://%s:%d/metrics", host, metrics.port)
        if on_ready is not None:
            on_ready(server.port or 0, metrics.port)
        try:
            await stop.wait()
            log.info("webhook: stopping; answering for %.1f s more while endpoints update", args.drain_seconds)
            await asyncio.sleep(args.drain_seconds)
        finally:
            await server.stop()
            await metrics.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    key = args.operator_public_key or args.signing_key
    if not key:
        print(f"modelroute webhook: --operator-public-key FILE or --signing-key FILE (or {ENV_SIGNING_KEY}) is required",
              file=sys.stderr)
        return 2
    if not Path(key).is_file():
        print(f"modelroute webhook: key file {key} does not exist", file=sys.stderr)
        return 2
    try:
        public_key_pem(args)
    except ValueError as e:  # the message names what the file should be, never its content
        print(f"modelroute webhook: {key} is not usable: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 130
