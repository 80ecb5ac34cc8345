"""The control-plane helpers' pure parts (no cluster needed)."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from pathlib import Path

import yaml
from cryptography import x509

from modelroute.testing.cluster import pki
from modelroute.testing.cluster.kubeconfig import render_kubeconfig
from modelroute.testing.cluster.kubelet import pod_manifest, pod_status
from modelroute.testing.cluster.loopback import LoopbackAddresses
from modelroute.testing.cluster.volumes import (
    configmap_files,
    read_files,
    render_downward_labels,
    volume_files,
    write_atomic,
)


def test_atomic_writer_swaps_whole_sets(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    assert write_atomic(vol, {"a.json": b"1", "b": b"2"})
    assert (vol / "a.json").is_symlink() and os.readlink(vol / "a.json") == "..data/a.json"
    assert (vol / "a.json").read_bytes() == b"1"
    assert not write_atomic(vol, {"a.json": b"1", "b": b"2"})  # unchanged: no swap
    assert write_atomic(vol, {"a.json": b"3"})
    assert read_files(vol) == {"a.json": b"3"}
    assert not (vol / "b").exists()
    snapshots = [p for p in vol.iterdir() if p.name.startswith("..") and p.is_dir() and not p.is_symlink()]
    assert len(snapshots) == 1  # the old snapshot is gone


def test_configmap_and_downward_rendering() -> None:
    cm = {"data": {"bundle.json": "{}", "bundle.sig": "x"}, "binaryData": {"bin": "AAE="}}
    assert configmap_files(cm) == {"bundle.json": b"{}", "bundle.sig": b"x", "bin": b"\x00\x01"}
    assert configmap_files(cm, [{"key": "bundle.json", "path": "b.json"}]) == {"b.json": b"{}"}
    assert render_downward_labels({"z": "1", "app": "a b"}) == 'app="a b"\nz="1"\n'


def test_volume_files_for_each_volume_kind() -> None:
    objects = {
        ("configmaps", "routes"): {"data": {"bundle.json": "{}"}},
        ("secrets", "keys"): {"data": {"pub": "cHVi"}},
    }
    lookup = lambda kind, name: objects.get((kind, name))  # noqa: E731
    meta = {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"a": "1"}}
    assert volume_files({"name": "v", "secret": {"secretName": "keys"}}, meta, lookup) == {"pub": b"pub"}
    assert volume_files({"name": "v", "configMap": {"name": "absent"}}, meta, lookup) is None
    assert volume_files({"name": "v", "configMap": {"name": "absent", "optional": True}}, meta, lookup) == {}
    projected = {
        "name": "v",
        "projected": {
            "sources": [
                {"configMap": {"name": "routes"}},
                {"secret": {"name": "keys", "items": [{"key": "pub", "path": "keys/pub"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
                    }
                },
                {"serviceAccountToken": {"path": "token"}},
            ]
        },
    }
    assert volume_files(projected, meta, lookup) == {
        "bundle.json": b"{}",
        "keys/pub": b"pub",
        "labels": b'a="1"\n',
    }
    assert volume_files({"name": "v", "emptyDir": {}}, meta, lookup) is None


def test_pod_status_reports_ip_and_readiness() -> None:
    spec = pod_manifest("ns", "p", containers=[{"name": "c", "image": "i"}])["spec"]
    status = pod_status(spec, "127.9.9.9", ready=False, started_at="2026-01-01T00:00:00Z")
    assert status["phase"] == "Running"
    assert status["podIPs"] == [{"ip": "127.9.9.9"}]
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == "False" and ready["PodScheduled"] == "True"
    assert status["containerStatuses"][0]["name"] == "c"


def test_loopback_blocks_are_exclusive_and_bindable(tmp_path: Path) -> None:
    first, second = LoopbackAddresses(tmp_path), LoopbackAddresses(tmp_path)
    a, b = first.allocate(), second.allocate()
    assert a.rsplit(".", 1)[0] != b.rsplit(".", 1)[0]  # different /24 blocks
    addresses = {first.allocate() for _ in range(300)}  # spills into a second block
    assert len(addresses) == 300
    with socket.socket() as s1, socket.socket() as s2:
        s1.bind((a, 0))
        s2.bind((b, s1.getsockname()[1]))  # same port, other address
    first.close()
    second.close()


def test_pki_serves_tls_and_identifies_clients(tmp_path: Path) -> None:
    files = pki.write_pki(tmp_path / "pki")
    serving = x509.load_pem_x509_certificate(files.serving_cert.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    admin = x509.load_pem_x509_certificate(files.admin_cert.read_bytes())
    orgs = [a.value for a in admin.subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_NAME)]
    assert orgs == ["system:masters"]
    assert pki.write_pki(tmp_path / "pki").ca_cert.read_bytes() == files.ca_cert.read_bytes()  # reused

    # a real TLS handshake with client auth, both sides from this PKI
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(files.serving_cert, files.serving_key)
    server_ctx.load_verify_locations(files.ca_cert)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    client_ctx = ssl.create_default_context(cafile=str(files.ca_cert))
    client_ctx.load_cert_chain(files.admin_cert, files.admin_key)
    listener = socket.create_server(("127.0.0.1", 0))
    peer: dict[str, object] = {}

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            peer.update(tls.getpeercert() or {})

    thread = threading.Thread(target=serve)
    thread.start()
    with (
        socket.create_connection(listener.getsockname()) as raw,
        client_ctx.wrap_socket(raw, server_hostname="localhost"),
    ):
        pass
    thread.join(5)
    listener.close()
    assert (("commonName", "modelroute-admin"),) in peer["subject"]  # type: ignore[operator]


def test_kubeconfig_rendering() -> None:
    doc = yaml.safe_load(
        render_kubeconfig(cluster_name="c", server="https://127.0.0.1:1", ca_pem=b"ca", user="u", token="t")
    )
    assert doc["current-context"] == "c"
    assert doc["users"][0]["user"] == {"token": "t"}
    assert doc["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:1"
