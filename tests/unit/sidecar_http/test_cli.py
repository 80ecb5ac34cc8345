"""`modelroute sidecar` start-up checks: configuration problems fail at start, one line each, exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from modelroute.cli.main import build_parser
from modelroute.sidecar import cli


def parse(*argv: str) -> argparse.Namespace:
    args = ["sidecar", *argv]
    return build_parser(args).parse_args(args)


def test_defaults() -> None:
    args = parse("--config", "a.yaml", "--config", "b.yaml")
    assert args.config == ["a.yaml", "b.yaml"]
    assert args.listen == ("127.0.0.1", 8787)
    assert args.admin_listen == ("127.0.0.1", 8788)
    assert args.max_body_bytes == 4 * 1024 * 1024


def test_listen_parsing() -> None:
    assert cli.parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert cli.parse_address("[::1]:9000") == ("::1", 9000)
    with pytest.raises(argparse.ArgumentTypeError):
        cli.parse_address("9000")


def test_semantic_errors_fail_at_start(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    f = tmp_path / "routes.yaml"
    f.write_text("""\
apiVersion: modelroute.dev/v1alpha1
kind: ModelRoute
metadata: {name: a}
spec:
  route: classify
  targets: [{name: t, provider: openai, model: gpt-4o-mini, apiKey: {env: OPENAI_API_KEY}}]
---
apiVersion: modelroute.dev/v1alpha1
kind: ModelRoute
metadata: {name: b}
spec:
  route: classify
  targets: [{name: t, provider: mistral, model: m}]
""")
    assert cli.run(parse("--config", str(f))) == 2
    err = capsys.readouterr().err.splitlines()
    # schema problems first, then cross-document and key checks
    assert err == [
        f"modelroute sidecar: {f} doc 2 (b): spec.targets[0].provider: "
        "Input should be 'openai', 'anthropic', 'gemini' or 'openai-compatible'",
        f"modelroute sidecar: {f} doc 2 (b): spec.route: route name 'classify' is already defined by {f} doc 1 (a)",
        f"modelroute sidecar: {f} doc 1 (a): spec.targets[0].apiKey.env: environment variable OPENAI_API_KEY is not set",
    ]


def test_nothing_to_serve(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MODELROUTE_ADMIN_TOKEN", "MODELROUTE_OPERATOR_PUBLIC_KEY_FILE", "MODELROUTE_BUNDLE_DIR"):
        monkeypatch.delenv(var, raising=False)
    assert cli.run(parse()) == 2
    assert "nothing to serve" in capsys.readouterr().err


def test_bundle_needs_public_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELROUTE_OPERATOR_PUBLIC_KEY_FILE", raising=False)
    assert cli.run(parse("--bundle-dir", str(tmp_path))) == 2
    assert "--bundle-dir needs --operator-public-key" in capsys.readouterr().err


def test_bad_public_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pub.pem").write_text("not a key")
    assert cli.run(parse("--operator-public-key", str(tmp_path / "pub.pem"))) == 2
    assert "--operator-public-key" in capsys.readouterr().err


def test_admin_limits_and_pod_uid_are_checked(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MODELROUTE_POD_NAME", "MODELROUTE_POD_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    args = parse("--admin-max-body-bytes", "10", "--admin-body-seconds", "0", "--pod-uid", "u-1")
    assert (args.admin_max_body_bytes, args.admin_body_seconds) == (10, 0)
    assert cli.run(args) == 2
    err = capsys.readouterr().err
    assert "--admin-max-body-bytes must be at least 1024" in err
    assert "--admin-body-seconds must be more than 0" in err
    assert "--pod-uid needs --pod-namespace and --pod-name" in err
    defaults = parse()
    assert (defaults.admin_max_body_bytes, defaults.admin_body_seconds) == (4 * 1024 * 1024, 10.0)


def test_telemetry_only_when_a_signal_is_exported() -> None:
    assert cli.telemetry_from_env({}) is None
    assert cli.telemetry_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_SDK_DISABLED": "true"}) is None
    tel = cli.telemetry_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:9/v1/traces",
                                  "OTEL_METRICS_EXPORTER": "none"})
    assert tel is not None
    tel.shutdown()  # nothing was recorded: nothing is sent
