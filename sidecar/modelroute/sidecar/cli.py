"""`modelroute sidecar`: run the per-pod LLM routing proxy.

Standalone: ``modelroute sidecar --config routes.yaml`` (a config with problems fails here, one
line per problem on stderr, exit 2). In a cluster (no ``--config``): start not ready and wait
for the signed route bundle (``--bundle-dir``) or an operator push. SIGTERM/SIGINT drain the
requests in flight (``--grace-seconds``) before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelroute.api.config import PodRef, SidecarConfig
from modelroute.api.lifecycledate import pin_problem
from modelroute.api.signing import load_public_key
from modelroute.sidecar.config import loader
from modelroute.sidecar.config.loader import ConfigError
from modelroute.sidecar.config.secrets import KeyResolver
from modelroute.sidecar.metrics import otelenv
from modelroute.sidecar.rollout.mirror import DEFAULT_LIMIT as DEFAULT_MIRROR_LIMIT
from modelroute.sidecar.server import memory
from modelroute.sidecar.server.auth import AuthSettings
from modelroute.sidecar.server.bundle import BundleSource
from modelroute.sidecar.server.floor import FloorFile
from modelroute.sidecar.server.guard import (
    DEFAULT_ADMIN_BODY_SECONDS,
    DEFAULT_ADMIN_MAX_BODY_BYTES,
    AdminLimits,
)
from modelroute.sidecar.server.inbound import DEFAULT_MAX_BODY_BYTES
from modelroute.sidecar.server.sidecar import Sidecar
from modelroute.sidecar.server.state import SidecarState

if TYPE_CHECKING:
    from modelroute.sidecar.metrics.telemetry import Telemetry

EXIT_CONFIG = 2

ENV_ADMIN_TOKEN = "MODELROUTE_ADMIN_TOKEN"
ENV_OPERATOR_KEY = "MODELROUTE_OPERATOR_PUBLIC_KEY_FILE"
ENV_BUNDLE_DIR = "MODELROUTE_BUNDLE_DIR"
ENV_POD_LABELS = "MODELROUTE_POD_LABELS_FILE"
ENV_POD_NAMESPACE = "MODELROUTE_POD_NAMESPACE"
ENV_POD_NAME = "MODELROUTE_POD_NAME"
ENV_POD_UID = "MODELROUTE_POD_UID"
ENV_STATE_DIR = "MODELROUTE_STATE_DIR"

log = logging.getLogger("modelroute.sidecar")

QUIET_LOGGERS = ("httpx2", "httpx", "httpcore2", "httpcore", "openai", "anthropic", "google_genai")
"""SDK and HTTP-client loggers held at WARNING or above: they log every request at INFO/DEBUG."""


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def configure(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--config", action="append", default=[], metavar="FILE",
                        help="YAML or JSON file of ModelRoute documents (repeatable). Without it the sidecar starts "
                             "not ready and waits for the route bundle or an operator push.")
    parser.add_argument("--listen", type=parse_address, default=("127.0.0.1", 8787), metavar="HOST:PORT",
                        help="inbound address: OpenAI, Anthropic and Gemini APIs (default 127.0.0.1:8787)")
    parser.add_argument("--admin-listen", type=parse_address, default=("127.0.0.1", 8788), metavar="HOST:PORT",
                        help="admin address: /healthz /readyz /config /stats /metrics (default 127.0.0.1:8788)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES, metavar="N",
                        help="largest accepted request body; bigger gets 413 (default 4 MiB)")
    parser.add_argument("--admin-token-file", type=Path, metavar="FILE",
                        help=f"file holding the bearer token for PUT /config (or env {ENV_ADMIN_TOKEN})")
    parser.add_argument("--operator-public-key", type=Path, default=env(ENV_OPERATOR_KEY), metavar="FILE",
                        help=f"the operator's Ed25519 public key (PEM): accept signed pushes and bundles (env {ENV_OPERATOR_KEY})")
    parser.add_argument("--bundle-dir", type=Path, default=env(ENV_BUNDLE_DIR), metavar="DIR",
                        help=f"mounted ConfigMap with bundle.json + bundle.sig, polled for changes (env {ENV_BUNDLE_DIR})")
    parser.add_argument("--pod-labels-file", type=Path, default=env(ENV_POD_LABELS), metavar="FILE",
                        help=f"downward-API labels file used to select routes from the bundle (env {ENV_POD_LABELS})")
    parser.add_argument("--pod-namespace", default=env(ENV_POD_NAMESPACE),
                        help=f"this pod's namespace: the audience of signed pushes (env {ENV_POD_NAMESPACE})")
    parser.add_argument("--pod-name", default=env(ENV_POD_NAME),
                        help=f"this pod's name: the audience of signed pushes (env {ENV_POD_NAME})")
    parser.add_argument("--pod-uid", default=env(ENV_POD_UID),
                        help=f"this pod's UID: signed pushes for another UID are refused (env {ENV_POD_UID})")
    parser.add_argument("--state-dir", type=Path, default=env(ENV_STATE_DIR), metavar="DIR",
                        help="writable directory kept across container restarts (a pod emptyDir): the replay floor "
                             f"of signed pushes lives there (env {ENV_STATE_DIR})")
    parser.add_argument("--admin-max-body-bytes", type=int, default=DEFAULT_ADMIN_MAX_BODY_BYTES, metavar="N",
                        help="largest admin request body (PUT /config, POST /eval); bigger gets 413 before it is read "
                             "(default 4 MiB)")
    parser.add_argument("--admin-body-seconds", type=float, default=DEFAULT_ADMIN_BODY_SECONDS, metavar="S",
                        help="an admin request body must arrive within this (else 408; default 10)")
    parser.add_argument("--grace-seconds", type=float, default=20.0, metavar="S",
                        help="on SIGTERM, how long requests in flight may take to finish (default 20)")
    parser.add_argument("--mirror-limit", type=int, default=int(env("MODELROUTE_MIRROR_LIMIT", str(DEFAULT_MIRROR_LIMIT))),
                        metavar="N", help="most mirror copies to canaries in flight; more are dropped (default "
                                          f"{DEFAULT_MIRROR_LIMIT}, env MODELROUTE_MIRROR_LIMIT)")
    parser.add_argument("--log-level", default=env("MODELROUTE_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"], help="log level (default info)")


def _fail(lines: list[str]) -> int:
    for line in lines:
        print(f"modelroute sidecar: {line}", file=sys.stderr)
    return EXIT_CONFIG


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    finally:  # a start that failed too: an in-process caller gets its collector back
        memory.resume_collector()


def _run(args: argparse.Namespace) -> int:
    memory.tune_allocator()  # before anything of size is allocated
    memory.tune_collector()
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in QUIET_LOGGERS:  # an INFO line per upstream request costs more than the rest of the proxying
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
    problems: list[str] = []
    token = os.environ.get(ENV_ADMIN_TOKEN) or None
    if args.admin_token_file is not None:
        try:
            token = args.admin_token_file.read_text(encoding="utf-8").strip() or None
        except OSError as e:
            problems.append(f"--admin-token-file {args.admin_token_file}: cannot be read ({type(e).__name__})")
        if token is None and not problems:
            problems.append(f"--admin-token-file {args.admin_token_file}: is empty")
    operator_key = None
    if args.operator_public_key:
        try:
            operator_key = load_public_key(Path(args.operator_public_key).read_bytes())
        except (OSError, ValueError) as e:
            problems.append(f"--operator-public-key {args.operator_public_key}: {type(e).__name__}: {e}")
    if (args.pod_namespace is None) != (args.pod_name is None):
        problems.append("--pod-namespace and --pod-name must be given together")
    if args.pod_uid and not (args.pod_namespace and args.pod_name):
        problems.append("--pod-uid needs --pod-namespace and --pod-name")
    pod = (PodRef(namespace=args.pod_namespace, name=args.pod_name, uid=args.pod_uid or None)
           if args.pod_namespace and args.pod_name else None)
    bundle = None
    if args.bundle_dir:
        if operator_key is None:
            problems.append("--bundle-dir needs --operator-public-key to verify the bundle's signature")
        else:
            bundle = BundleSource(Path(args.bundle_dir), operator_key,
                                  Path(args.pod_labels_file) if args.pod_labels_file else None, args.pod_namespace)
    if args.max_body_bytes < 1024:
        problems.append("--max-body-bytes must be at least 1024")
    if args.admin_max_body_bytes < 1024:
        problems.append("--admin-max-body-bytes must be at least 1024")
    if args.admin_body_seconds <= 0:
        problems.append("--admin-body-seconds must be more than 0")
    if args.mirror_limit < 0:
        problems.append("--mirror-limit must be 0 or more")

    if not args.config and (pin := pin_problem(os.environ)) is not None:
        problems.append(pin)  # with --config the loader reports it; else a PUT /config would meet it first
    keys = KeyResolver()
    config: SidecarConfig | None = None
    if args.config:
        try:
            config = loader.load(args.config, keys)
        except ConfigError as e:
            problems += e.problems
    elif bundle is None and operator_key is None and token is None:
        problems.append("nothing to serve: give --config FILE (standalone), or --bundle-dir / --operator-public-key "
                        f"(in a cluster), or {ENV_ADMIN_TOKEN} to accept configs over PUT /config")
    if problems:
        return _fail(problems)

    auth = AuthSettings(operator_key=operator_key, admin_token=token, pod=pod)
    return asyncio.run(_serve(args, keys, auth, bundle, config))


def telemetry_from_env(environ: Mapping[str, str]) -> Telemetry | None:
    """OpenTelemetry as the ``OTEL_*`` variables say; None, with no OpenTelemetry import at all, when
    nothing is to be exported (``metrics/otelenv.py``: ~30 ms of every start otherwise)."""
    wanted = otelenv.endpoints(environ)
    if wanted is None:
        return None
    from modelroute.sidecar.metrics import telemetry
    return telemetry.build(traces_endpoint=wanted[0], metrics_endpoint=wanted[1])


async def _first(*waits: Coroutine[Any, Any, object]) -> None:
    """Until the first of ``waits`` finishes; the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def _serve(
    args: argparse.Namespace, keys: KeyResolver, auth: AuthSettings, bundle: BundleSource | None, config: SidecarConfig | None
) -> int:
    tel = telemetry_from_env(os.environ)
    try:
        return await _serve_with(args, keys, auth, bundle, config, tel)
    finally:
        if tel is not None:
            await asyncio.to_thread(tel.shutdown)  # flush buffered spans and metrics


async def _serve_with(
    args: argparse.Namespace, keys: KeyResolver, auth: AuthSettings, bundle: BundleSource | None,
    config: SidecarConfig | None, tel: Telemetry | None,
) -> int:
    floor = FloorFile(Path(args.state_dir)) if args.state_dir else None
    state = SidecarState(keys=keys, max_body_bytes=args.max_body_bytes, telemetry=tel, mirror_limit=args.mirror_limit,
                         floor_file=floor)
    if config is not None:
        try:
            await state.apply(config, source="file")
        except ConfigError as e:
            return _fail(e.problems)
    sidecar = Sidecar(state, auth, listen=args.listen, admin_listen=args.admin_listen, bundle=bundle,
                      grace_seconds=args.grace_seconds,
                      admin_limits=AdminLimits(args.admin_max_body_bytes, args.admin_body_seconds))
    try:
        await sidecar.start()
    except OSError as e:
        print(f"modelroute sidecar: cannot listen: {e}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if config is None:
        log.info("no --config: not ready until the route bundle or an operator push provides a config")
    if bundle is not None:
        await _first(bundle.tried.wait(), stop.wait())  # the bundle's first load belongs to the start
    if memory.resume_collector():  # started: the collector, paused by modelroute.sidecar.prelude, runs again
        log.debug("started: %d start-up objects frozen, the collector resumed", gc.get_freeze_count())
    await stop.wait()
    log.info("shutting down")
    await sidecar.stop()
    return 0
