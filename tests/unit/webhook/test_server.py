"""The webhook over real HTTPS on loopback, with operator-managed TLS against a fake apiserver store."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import jsonpatch
import pytest

from modelroute.operator.injection import InjectionSettings
from modelroute.operator.webhook import FileTls, ManagedTls, WebhookServer, certs, server
from modelroute.testing import fakekube

SETTINGS = InjectionSettings(image="img", operator_public_key_pem="PEM", operator_namespace="modelroute-system")
MWC = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/modelroute"


class FakeKube(fakekube.FakeKube):
    """The shared fake apiserver with the webhook configuration, and JSON patches for ManagedTls."""

    def __init__(self) -> None:
        super().__init__({MWC: {"webhooks": [
            {"name": "pods.inject.modelroute.dev", "clientConfig": {"url": "https://127.0.0.1:1/mutate"}},
            {"name": "namespaces.inject.modelroute.dev", "clientConfig": {"url": "https://127.0.0.1:1/mutate/namespace-enabled"}},
        ]}})

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "") -> Any:
        assert method == "PATCH" and content_type == "application/json-patch+json"
        return self._store("PATCH", path, jsonpatch.apply_patch(self.objects[path], body))


def managed(kube: FakeKube, tmp_path: Path, hosts: list[str] | None = None) -> ManagedTls:
    return ManagedTls(kube, namespace="modelroute-system", secret_name="modelroute-webhook-tls",  # type: ignore[arg-type]
                      webhook_config="modelroute", hosts=hosts or ["127.0.0.1", "modelroute-webhook.modelroute-system.svc"],
                      workdir=tmp_path)


def review_body(annotations: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "apps", "operation": "CREATE",
        "object": {"metadata": {"name": "p", "annotations": annotations}, "spec": {"containers": [{"name": "app", "image": "a"}]}}}}


async def test_managed_tls_creates_secret_and_sets_ca_bundle(tmp_path: Path) -> None:
    kube = FakeKube()
    source = managed(kube, tmp_path)
    cert_file, key_file = await source.load()
    secret = kube.objects["/api/v1/namespaces/modelroute-system/secrets/modelroute-webhook-tls"]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert cert_file.read_bytes() == data["tls.crt"] and key_file.read_bytes() == data["tls.key"]
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    for hook in kube.objects[MWC]["webhooks"]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == data["ca.crt"]
    # a second operator start reuses the Secret and changes nothing
    writes = len(kube.writes)
    (tmp_path / "second").mkdir()
    assert await managed(kube, tmp_path / "second").refresh() is True  # True: its files were written
    assert len(kube.writes) == writes
    assert await source.refresh() is False


async def test_managed_tls_reissues_for_new_hosts_keeping_the_ca(tmp_path: Path) -> None:
    kube = FakeKube()
    await managed(kube, tmp_path).load()
    ca_before = kube.objects[MWC]["webhooks"][0]["clientConfig"]["caBundle"]
    await managed(kube, tmp_path, ["127.0.0.1", "new.example"]).load()
    data = kube.objects["/api/v1/namespaces/modelroute-system/secrets/modelroute-webhook-tls"]["data"]
    tls = certs.WebhookTls.from_secret_data({k: base64.b64decode(v) for k, v in data.items()})
    assert tls is not None and certs.problems(tls, ["new.example"]) == []
    assert kube.objects[MWC]["webhooks"][0]["clientConfig"]["caBundle"] == ca_before


@pytest.fixture
async def running(tmp_path: Path) -> Any:
    kube = FakeKube()
    srv = WebhookServer("127.0.0.1:0", SETTINGS, managed(kube, tmp_path))
    await srv.start()
    ca = base64.b64decode(kube.objects[MWC]["webhooks"][0]["clientConfig"]["caBundle"])
    ctx = ssl.create_default_context(cadata=ca.decode())
    async with aiohttp.ClientSession() as session:
        yield srv, session, ctx
    await srv.stop()


async def test_https_mutate_verified_with_the_ca_bundle(running: Any) -> None:
    srv, session, ctx = running
    async with session.post(f"https://127.0.0.1:{srv.port}/mutate", json=review_body({"modelroute.dev/inject": "true"}), ssl=ctx) as r:
        assert r.status == 200
        answer = await r.json()
    ops = json.loads(base64.b64decode(answer["response"]["patch"]))
    assert any(op["path"] == "/spec/initContainers" for op in ops)
    async with session.post(f"https://127.0.0.1:{srv.port}/mutate", json=review_body({}), ssl=ctx) as r:
        assert "patch" not in (await r.json())["response"]
    async with session.post(f"https://127.0.0.1:{srv.port}/mutate/namespace-enabled", json=review_body({}), ssl=ctx) as r:
        assert "patch" in (await r.json())["response"]
    async with session.get(f"https://127.0.0.1:{srv.port}/healthz", ssl=ctx) as r:
        assert r.status == 200


async def test_malformed_is_400_and_internal_error_is_500(running: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    srv, session, ctx = running
    async with session.post(f"https://127.0.0.1:{srv.port}/mutate", data=b"{not json", ssl=ctx) as r:
        assert r.status == 400
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")
    monkeypatch.setattr(server, "review", boom)
    async with session.post(f"https://127.0.0.1:{srv.port}/mutate", json=review_body({}), ssl=ctx) as r:
        assert r.status == 500
        assert "bug" not in await r.text()


async def test_rotated_certificate_files_are_served_without_a_restart(tmp_path: Path) -> None:
    first, second = certs.generate(["127.0.0.1"]), certs.generate(["127.0.0.1"])
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert)
    key.write_bytes(first.key)
    srv = WebhookServer("127.0.0.1:0", SETTINGS, FileTls(cert, key), refresh_seconds=0.05)
    await srv.start()
    try:
        async with aiohttp.ClientSession() as session:
            async def healthz(ca: bytes) -> bool:
                ctx = ssl.create_default_context(cadata=ca.decode())
                try:
                    async with session.get(f"https://127.0.0.1:{srv.port}/healthz", ssl=ctx) as r:
                        return r.status == 200
                except aiohttp.ClientConnectorCertificateError:
                    return False

            assert await healthz(first.ca_cert) and not await healthz(second.ca_cert)
            cert.write_bytes(second.cert)
            key.write_bytes(second.key)
            os.utime(cert, (1, 1))  # a different mtime even within the filesystem's resolution
            for _ in range(100):
                if await healthz(second.ca_cert):
                    break
                await asyncio.sleep(0.05)
            assert await healthz(second.ca_cert)
    finally:
        await srv.stop()
