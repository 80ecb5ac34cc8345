"""`modelroute operator`: command-line options -> ``app.serve``.

The injection webhook is not served here: it is ``modelroute webhook``
(``modelroute.operator.webhook.cli``), a process of its own, so that pods keep being
injected while the operator is down or scaled to 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from modelroute.api.lifecycledate import pin_problem
from modelroute.operator.app import ENV_SIGNING_KEY, Options, default_lease_namespace, serve
from modelroute.operator.metrics import parse_address
from modelroute.operator.registryfile import RegistryFileError, load_registry


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--namespace", "-n", action="append", default=[], dest="namespaces", metavar="NS",
                        help="namespace to serve (repeatable); default: all namespaces")
    parser.add_argument("--signing-key", type=Path, default=os.environ.get(ENV_SIGNING_KEY), metavar="FILE",
                        help=f"Ed25519 private key (PEM, PKCS8) that signs pushes and bundles (env {ENV_SIGNING_KEY})")
    parser.add_argument("--metrics-listen", type=parse_address, default=("0.0.0.0", 8080), metavar="HOST:PORT",
                        help="Prometheus /metrics and /healthz listener (port 0: any free port)")
    parser.add_argument("--kubeconfig", metavar="FILE",
                        help="kubeconfig to use; default: in-cluster service account, else $KUBECONFIG")
    parser.add_argument("--lease-namespace", default=default_lease_namespace(), metavar="NS",
                        help="namespace of the leader Lease (default: the operator's own namespace)")
    parser.add_argument("--lease-name", default="modelroute-operator", metavar="NAME")
    parser.add_argument("--lease-duration", type=float, default=15.0, metavar="SECONDS",
                        help="how long a dead operator blocks a new one")
    parser.add_argument("--push-concurrency", type=int, default=32, metavar="N")
    parser.add_argument("--debounce-ms", type=float, default=30.0, metavar="MS",
                        help="wait this long after an event so a burst becomes one reconcile")
    parser.add_argument("--quota-poll-seconds", type=float, default=30.0, metavar="SECONDS",
                        help="read the sidecars' /stats this often for quota pressure (QuotaPressure Events; 0: never)")
    parser.add_argument("--rebalance-seconds", type=float, default=2.0, metavar="SECONDS",
                        help="split each ProviderQuota into per-pod leases this often (0: never)")
    parser.add_argument("--model-registry", type=Path, default=None, metavar="FILE",
                        help="ModelRegistry (YAML/JSON: contextWindow/maxOutputTokens overrides, allowed model ids) that "
                             "validates routes and is pushed with every config; default: the built-in registry")
    parser.add_argument("--log-level", default=os.environ.get("MODELROUTE_LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"])


def options_from(args: argparse.Namespace) -> Options:
    host, port = args.metrics_listen
    return Options(
        signing_key_file=Path(args.signing_key),
        namespaces=list(args.namespaces),
        kubeconfig=args.kubeconfig,
        metrics_host=host,
        metrics_port=port,
        lease_namespace=args.lease_namespace,
        lease_name=args.lease_name,
        lease_duration=args.lease_duration,
        debounce=args.debounce_ms / 1000,
        push_concurrency=args.push_concurrency,
        quota_poll_seconds=args.quota_poll_seconds,
        rebalance_seconds=args.rebalance_seconds,
        model_registry=load_registry(args.model_registry) if args.model_registry is not None else None,
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.log_level != "debug":
        logging.getLogger("kopf").setLevel(logging.WARNING)  # one line per watch event is noise
    if not args.signing_key:
        print(f"modelroute operator: --signing-key FILE (or {ENV_SIGNING_KEY}) is required", file=sys.stderr)
        return 2
    if not Path(args.signing_key).is_file():
        print(f"modelroute operator: signing key {args.signing_key} does not exist", file=sys.stderr)
        return 2
    if (pin := pin_problem(os.environ)) is not None:  # each reconcile round reads it: refuse a bad one now
        print(f"modelroute operator: {pin}", file=sys.stderr)
        return 2
    try:
        options = options_from(args)
    except RegistryFileError as e:
        print("modelroute operator: --model-registry refused:\n  " + "\n  ".join(e.problems), file=sys.stderr)
        return 2
    try:
        return asyncio.run(serve(options))
    except KeyboardInterrupt:
        return 130
