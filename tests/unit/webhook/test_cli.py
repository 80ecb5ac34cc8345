"""`modelroute webhook`: the injection webhook as a process of its own (no operator, no Lease).

Started with file TLS it answers admission over HTTPS with the operator's public key in the
patch (from the private key file or the public one), counts admissions on its own /metrics,
and stops cleanly; a missing or unusable key is a usage error, not a crash.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from pathlib import Path

import aiohttp
import pytest

from modelroute.api import signing
from modelroute.cli.main import build_parser
from modelroute.operator.injection import names
from modelroute.operator.webhook import certs
from modelroute.operator.webhook import cli as webhook_cli

from .test_server import review_body


def _args(tmp_path: Path, *key: str) -> object:
    tls = certs.generate(["127.0.0.1"])
    (tmp_path / "tls.crt").write_bytes(tls.cert)
    (tmp_path / "tls.key").write_bytes(tls.key)
    (tmp_path / "ca.crt").write_bytes(tls.ca_cert)
    argv = ["webhook", *key, "--operator-namespace=mr-system", "--webhook-listen=127.0.0.1:0",
            "--metrics-listen=127.0.0.1:0", "--drain-seconds=0", "--webhook-tls=files",
            f"--webhook-cert-file={tmp_path / 'tls.crt'}", f"--webhook-key-file={tmp_path / 'tls.key'}"]
    return build_parser(argv).parse_args(argv)


def test_a_public_key_file_in_any_layout_is_injected_in_the_canonical_form(tmp_path: Path) -> None:
    canonical = signing.public_key_pem(signing.generate_private_key_pem())
    (tmp_path / "key.pem").write_bytes(b"operator key, 2026\r\n" + canonical.replace(b"\n", b"\r\n") + b"\r\n")
    args = _args(tmp_path, f"--operator-public-key={tmp_path / 'key.pem'}")
    assert webhook_cli.public_key_pem(args) == canonical.decode()  # type: ignore[arg-type]


@pytest.mark.parametrize("which", ["private", "public"])
async def test_serves_admission_and_metrics_without_an_operator(tmp_path: Path, which: str) -> None:
    private = signing.generate_private_key_pem()
    public = signing.public_key_pem(private)
    (tmp_path / "key.pem").write_bytes(private if which == "private" else public)
    flag = "--signing-key" if which == "private" else "--operator-public-key"
    args = _args(tmp_path, f"{flag}={tmp_path / 'key.pem'}")
    stop, ready = asyncio.Event(), asyncio.Event()
    ports: list[int] = []

    def on_ready(webhook: int, metrics: int) -> None:
        ports.extend((webhook, metrics))
        ready.set()

    task = asyncio.create_task(webhook_cli.serve(args, stop=stop, on_ready=on_ready))  # type: ignore[arg-type]
    await asyncio.wait({task, asyncio.create_task(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), task.exception()
    webhook, metrics = ports
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    async with aiohttp.ClientSession() as session:
        async with session.post(f"https://127.0.0.1:{webhook}/mutate/namespace-enabled", json=review_body({}), ssl=ctx) as r:
            assert r.status == 200
            ops = json.loads(base64.b64decode((await r.json())["response"]["patch"]))
        key_path = "/metadata/annotations/" + names.OPERATOR_PUBLIC_KEY.replace("~", "~0").replace("/", "~1")
        injected = [op["value"] for op in ops if op["path"] == key_path]
        injected += [op["value"][names.OPERATOR_PUBLIC_KEY] for op in ops if op["path"] == "/metadata/annotations"]
        assert injected == [public.decode()], ops
        async with session.get(f"http://127.0.0.1:{metrics}/metrics") as r:
            assert 'modelroute_webhook_admissions_total{result="injected"} 1.0' in await r.text()
    stop.set()
    assert await task == 0


def test_a_missing_or_unusable_key_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert webhook_cli.run(_args(tmp_path)) == 2  # type: ignore[arg-type]
    assert "--operator-public-key" in capsys.readouterr().err
    assert webhook_cli.run(_args(tmp_path, f"--signing-key={tmp_path / 'absent.pem'}")) == 2  # type: ignore[arg-type]
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "rsa.pem").write_bytes(b"-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    assert webhook_cli.run(_args(tmp_path, f"--operator-public-key={tmp_path / 'rsa.pem'}")) == 2  # type: ignore[arg-type]
    assert "is not usable" in capsys.readouterr().err
    private = signing.generate_private_key_pem()
    (tmp_path / "swapped.pem").write_bytes(private)  # a private key where the public one belongs
    assert webhook_cli.run(_args(tmp_path, f"--operator-public-key={tmp_path / 'swapped.pem'}")) == 2  # type: ignore[arg-type]
    assert "is not usable" in capsys.readouterr().err
