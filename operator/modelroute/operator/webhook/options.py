"""Command-line options of ``modelroute webhook``: its listener, its TLS and the sidecar it injects.

Pure translation of options into :class:`InjectionSettings` and a :class:`TlsSource`; the
process around them is ``modelroute.operator.webhook.cli``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from modelroute.operator.injection import InjectionSettings, Resources, StartGate
from modelroute.operator.kube.client import Kube
from modelroute.operator.webhook import certs
from modelroute.operator.webhook.tls import FileTls, ManagedTls, TlsSource

DEFAULT_IMAGE = "ghcr.io/modelroute/modelroute:0.1.0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("sidecar injection webhook")
    g.add_argument("--webhook-listen", default="0.0.0.0:9443", metavar="ADDR",
                   help="serve the injection webhook over HTTPS on HOST:PORT (port 0: any free port)")
    g.add_argument("--webhook-tls", choices=["managed", "files"], default="managed",
                   help="managed: the webhook keeps a CA and certificate in a Secret and sets the caBundle; "
                        "files: serve --webhook-cert-file/--webhook-key-file (e.g. from cert-manager)")
    g.add_argument("--webhook-cert-file", type=Path, help="serving certificate chain (with --webhook-tls files)")
    g.add_argument("--webhook-key-file", type=Path, help="serving key (with --webhook-tls files)")
    g.add_argument("--webhook-tls-secret", default="modelroute-webhook-tls", help="Secret (own namespace) for managed TLS")
    g.add_argument("--webhook-config", default="modelroute",
                   help="MutatingWebhookConfiguration whose caBundle the webhook keeps (managed TLS; '' = none)")
    g.add_argument("--webhook-service", default="modelroute-webhook", help="Service in front of the webhook (certificate names)")
    g.add_argument("--webhook-host", action="append", default=[], metavar="HOST",
                   help="extra DNS name or IP for the serving certificate (repeatable)")
    g.add_argument("--inject-exclude-namespace", action="append", default=[], metavar="NS",
                   help="never inject pods of this namespace (repeatable; system namespaces are always excluded)")
    s = parser.add_argument_group("injected sidecar")
    s.add_argument("--sidecar-image", default=DEFAULT_IMAGE, help="image of the injected sidecar")
    s.add_argument("--sidecar-image-pull-policy", default="IfNotPresent", choices=["Always", "IfNotPresent", "Never"])
    s.add_argument("--sidecar-listen-port", type=int, default=8787, help="loopback port apps call")
    s.add_argument("--sidecar-admin-port", type=int, default=8788, help="admin port the operator pushes to")
    s.add_argument("--sidecar-run-as-user", type=int, default=10001)
    defaults = Resources()
    for flag, value in (("cpu-request", defaults.cpu_request), ("memory-request", defaults.memory_request),
                        ("cpu-limit", defaults.cpu_limit), ("memory-limit", defaults.memory_limit)):
        s.add_argument(f"--sidecar-{flag}", default=value or "", metavar="QUANTITY", help=f"default {value or 'unset'} ('' = unset)")
    gate = StartGate()
    s.add_argument("--sidecar-start-gate-python", type=_command, default=gate.python, metavar="PATH",
                   help="interpreter of the sidecar image that runs the postStart hook holding the app containers back "
                        "until /readyz is 200 (a custom image with its python elsewhere sets it)")
    s.add_argument("--sidecar-start-gate-timeout-seconds", type=_bounded(1, 86_400), default=gate.timeout_seconds,
                   metavar="S", help="the hook fails after S seconds without a 200 (the kubelet restarts the sidecar)")
    s.add_argument("--sidecar-start-gate-poll-interval-ms", type=_bounded(1, 10_000), default=gate.poll_interval_ms,
                   metavar="MS", help="the hook's pause between two /readyz tries")


def _command(raw: str) -> str:
    """An executable for an exec hook: one word (an absolute path, or a name the image's PATH resolves)."""
    if not raw or any(c.isspace() for c in raw):
        raise argparse.ArgumentTypeError(f"{raw!r} is not one executable path")
    return raw


def _bounded(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().isdigit() or not low <= int(raw) <= high:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number from {low} to {high}")
        return int(raw)
    return parse


def operator_namespace(args: argparse.Namespace) -> str:
    """The namespace of the operator and of this webhook (``--operator-namespace``)."""
    return str(args.operator_namespace)


def settings_from_args(args: argparse.Namespace, public_key_pem: str) -> InjectionSettings:
    """The injector's settings (pure)."""
    return InjectionSettings(
        image=args.sidecar_image,
        image_pull_policy=args.sidecar_image_pull_policy,
        operator_public_key_pem=public_key_pem,
        operator_namespace=operator_namespace(args),
        listen_port=args.sidecar_listen_port,
        admin_port=args.sidecar_admin_port,
        run_as_user=args.sidecar_run_as_user,
        resources=Resources(
            cpu_request=args.sidecar_cpu_request or None,
            memory_request=args.sidecar_memory_request or None,
            cpu_limit=args.sidecar_cpu_limit or None,
            memory_limit=args.sidecar_memory_limit or None,
        ),
        start_gate=StartGate(
            timeout_seconds=args.sidecar_start_gate_timeout_seconds,
            poll_interval_ms=args.sidecar_start_gate_poll_interval_ms,
            python=args.sidecar_start_gate_python,
        ),
        excluded_namespaces=frozenset(args.inject_exclude_namespace),
    )


def tls_from_args(args: argparse.Namespace, kube: Kube | None) -> TlsSource:
    """Files (no API client needed), or managed TLS through ``kube``."""
    if args.webhook_tls == "files":
        if not args.webhook_cert_file or not args.webhook_key_file:
            raise SystemExit("--webhook-tls files needs --webhook-cert-file and --webhook-key-file")
        return FileTls(args.webhook_cert_file, args.webhook_key_file)
    if kube is None:
        raise ValueError("managed webhook TLS needs an API client")
    ns = operator_namespace(args)
    hosts = [*certs.service_dns_names(args.webhook_service, ns), *args.webhook_host] if args.webhook_service else list(args.webhook_host)
    return ManagedTls(kube, namespace=ns, secret_name=args.webhook_tls_secret, webhook_config=args.webhook_config or None, hosts=hosts)
