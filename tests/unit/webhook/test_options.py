"""`modelroute webhook`'s --webhook-* / --sidecar-* options become injector settings and a TLS source."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelroute.api import signing
from modelroute.cli.main import build_parser
from modelroute.operator.injection import Resources, StartGate
from modelroute.operator.webhook import FileTls, ManagedTls
from modelroute.operator.webhook.options import settings_from_args, tls_from_args


def parse(*extra: str) -> object:
    argv = ["webhook", "--signing-key=/k", "--operator-namespace=mr-system", *extra]
    return build_parser(argv).parse_args(argv)


def test_defaults_match_the_injector_defaults() -> None:
    pem = signing.public_key_pem(signing.generate_private_key_pem()).decode()
    s = settings_from_args(parse(), pem)  # type: ignore[arg-type]
    assert s.operator_namespace == "mr-system" and s.operator_public_key_pem == pem
    assert s.resources == Resources()
    assert (s.listen_port, s.admin_port) == (8787, 8788)
    assert s.start_gate == StartGate()


def test_start_gate_options_reach_the_settings() -> None:
    s = settings_from_args(parse("--sidecar-start-gate-python=/usr/local/bin/python3.12",  # type: ignore[arg-type]
                                 "--sidecar-start-gate-timeout-seconds=600",
                                 "--sidecar-start-gate-poll-interval-ms=50"), "pem")
    assert s.start_gate == StartGate(timeout_seconds=600, poll_interval_ms=50, python="/usr/local/bin/python3.12")


@pytest.mark.parametrize("option", ["--sidecar-start-gate-python=", "--sidecar-start-gate-python=/bin/env python",
                                    "--sidecar-start-gate-timeout-seconds=0", "--sidecar-start-gate-timeout-seconds=5m",
                                    "--sidecar-start-gate-poll-interval-ms=-1", "--sidecar-start-gate-poll-interval-ms=10001"])
def test_a_bad_start_gate_option_stops_the_webhook_naming_it(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(option)
    assert option.split("=")[0] in capsys.readouterr().err


def test_sidecar_options_and_empty_quantities() -> None:
    args = parse("--sidecar-image=r/m:1", "--sidecar-cpu-limit=", "--sidecar-memory-limit=", "--sidecar-cpu-request=1",
                 "--sidecar-admin-port=9000", "--inject-exclude-namespace=legacy", "--inject-exclude-namespace=batch")
    s = settings_from_args(args, "pem")  # type: ignore[arg-type]
    assert s.image == "r/m:1" and s.admin_port == 9000
    assert s.resources.as_dict() == {"requests": {"cpu": "1", "memory": "64Mi"}}
    assert s.excluded_namespaces == {"legacy", "batch"}


def test_tls_sources() -> None:
    api = object()  # managed TLS keeps the client for later; nothing is called here
    managed = tls_from_args(parse("--webhook-service=mr-webhook", "--webhook-host=127.0.0.1"), kube=api)  # type: ignore[arg-type]
    assert isinstance(managed, ManagedTls) and managed.kube is api
    assert managed.namespace == "mr-system"
    assert managed.hosts == ["mr-webhook", "mr-webhook.mr-system", "mr-webhook.mr-system.svc",
                             "mr-webhook.mr-system.svc.cluster.local", "127.0.0.1"]
    files = tls_from_args(parse("--webhook-tls=files", "--webhook-cert-file=/c", "--webhook-key-file=/k"), kube=None)  # type: ignore[arg-type]
    assert isinstance(files, FileTls) and files.cert_file == Path("/c")
    with pytest.raises(ValueError, match="API client"):
        tls_from_args(parse(), kube=None)  # type: ignore[arg-type]


def test_the_operator_no_longer_takes_webhook_options() -> None:
    argv = ["operator", "--signing-key=/k", "--webhook-listen=0.0.0.0:9443"]
    with pytest.raises(SystemExit):
        build_parser(argv).parse_args(argv)
