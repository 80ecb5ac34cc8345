"""``trustdir``: CA anchors looked up by hashed directory while the sidecar imports, and only when nobody chose.

The TLS tests run in a fresh interpreter each: aiohttp makes its contexts once, when imported,
from the environment of that moment. A throwaway CA sits only in a temporary directory made
hashed by ``openssl rehash`` (the ``openssl`` package: ``hack/node-deps``); the handshake goes over
loopback through the sidecar's own TLS context (``providers.transport.tls_context``).
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelroute.sidecar import trustdir
from modelroute.testing.cluster.pki import CertKey, issue_cert, make_ca

SSL_VARS = (trustdir.FILE_ENV, trustdir.DIR_ENV)

CHILD = r"""
import json, os, socket, ssl, sys, threading
from modelroute.sidecar import trustdir
capath, cafile, cert, key = sys.argv[1:5]
paths = ssl.DefaultVerifyPaths(cafile, capath, "SSL_CERT_FILE", cafile, "SSL_CERT_DIR", capath)
names = ("SSL_CERT_FILE", "SSL_CERT_DIR")
switched = trustdir.prefer_directory(paths=paths)
during = {n: os.environ.get(n) for n in names}
from modelroute.sidecar.providers.transport import tls_context  # imports aiohttp: its contexts are made now
trustdir.restore()
after = {n: os.environ.get(n) for n in names}
server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
server.load_cert_chain(cert, key)
listener = socket.create_server(("127.0.0.1", 0))
def serve():
    conn, _ = listener.accept()
    with conn:
        try:
            server.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass
thread = threading.Thread(target=serve)
thread.start()
try:
    with socket.create_connection(listener.getsockname()) as raw, tls_context().wrap_socket(raw, server_hostname="localhost"):
        result = "verified"
except ssl.SSLCertVerificationError as e:
    result = e.verify_message
thread.join()
listener.close()
print(json.dumps({"switched": switched, "during": during, "after": after, "result": result}))
"""


@pytest.fixture(scope="module")
def ca() -> CertKey:
    return make_ca("modelroute-trustdir-test-ca")


def hashed_dir(path: Path, *anchors: CertKey) -> Path:
    """``path`` holding ``anchors`` under the names OpenSSL's directory lookup opens (``openssl rehash``)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (Debian package openssl; hack/node-deps installs it)")
    path.mkdir()
    for i, a in enumerate(anchors):
        (path / f"anchor{i}.pem").write_bytes(a.cert_pem)
    subprocess.run(["openssl", "rehash", str(path)], check=True, capture_output=True)
    return path


def old_file(path: Path, data: bytes = b"") -> Path:
    """A bundle written before any directory of the test changed (``bundle_edited_later`` is False)."""
    path.write_bytes(data)
    os.utime(path, ns=(0, 0))
    return path


def handshake(tmp_path: Path, capath: Path, cafile: Path, server: CertKey, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``CHILD`` in a fresh interpreter: its switch, its environment during and after, the handshake's result."""
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(server.cert_pem)
    key.write_bytes(server.key_pem)
    child_env = {k: v for k, v in os.environ.items() if k not in SSL_VARS} | (env or {})
    done = subprocess.run([sys.executable, "-c", CHILD, str(capath), str(cafile), str(cert), str(key)],
                          env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_an_anchor_only_in_the_hashed_directory_verifies_the_upstream(tmp_path: Path, ca: CertKey) -> None:
    anchors = hashed_dir(tmp_path / "certs", ca)
    server = issue_cert(ca, "localhost", dns_names=("localhost",), server=True)
    got = handshake(tmp_path, anchors, old_file(tmp_path / "bundle.crt"), server)
    assert got["switched"] is True
    assert got["during"] == {"SSL_CERT_FILE": os.devnull, "SSL_CERT_DIR": str(anchors)}
    assert got["after"] == {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}  # put back once aiohttp's contexts exist
    assert got["result"] == "verified"


def test_a_server_of_an_unknown_ca_still_fails_verification(tmp_path: Path, ca: CertKey) -> None:
    anchors = hashed_dir(tmp_path / "certs", ca)
    stranger = issue_cert(make_ca("someone-else"), "localhost", dns_names=("localhost",), server=True)
    got = handshake(tmp_path, anchors, old_file(tmp_path / "bundle.crt"), stranger)
    assert got["switched"] is True
    assert got["result"] == "unable to get local issuer certificate"


def test_a_user_set_cert_file_is_left_alone(tmp_path: Path, ca: CertKey) -> None:
    anchors = hashed_dir(tmp_path / "certs", make_ca("not-the-one"))
    mine = tmp_path / "mine.crt"
    mine.write_bytes(ca.cert_pem)
    server = issue_cert(ca, "localhost", dns_names=("localhost",), server=True)
    got = handshake(tmp_path, anchors, old_file(tmp_path / "bundle.crt"), server, {"SSL_CERT_FILE": str(mine)})
    assert got["switched"] is False
    assert got["during"] == got["after"] == {"SSL_CERT_FILE": str(mine), "SSL_CERT_DIR": None}
    assert got["result"] == "verified"  # from the user's file


def test_a_user_set_cert_dir_is_left_alone(tmp_path: Path, ca: CertKey) -> None:
    anchors = hashed_dir(tmp_path / "certs", ca)
    got = handshake(tmp_path, anchors, old_file(tmp_path / "bundle.crt"),
                    issue_cert(ca, "localhost", dns_names=("localhost",), server=True), {"SSL_CERT_DIR": str(anchors)})
    assert got["switched"] is False
    assert got["during"] == got["after"] == {"SSL_CERT_FILE": None, "SSL_CERT_DIR": str(anchors)}
    assert got["result"] == "verified"  # OpenSSL's own reading of SSL_CERT_DIR


def test_without_hashed_links_nothing_changes(tmp_path: Path, ca: CertKey) -> None:
    plain = tmp_path / "certs"
    plain.mkdir()
    (plain / "ca.pem").write_bytes(ca.cert_pem)  # a PEM, but not under a hash name: directory lookup would miss it
    got = handshake(tmp_path, plain, old_file(tmp_path / "bundle.crt"),
                    issue_cert(ca, "localhost", dns_names=("localhost",), server=True))
    assert got["switched"] is False
    assert got["during"] == got["after"] == {"SSL_CERT_FILE": None, "SSL_CERT_DIR": None}


def test_has_hashed_links(tmp_path: Path) -> None:
    assert not trustdir.has_hashed_links(str(tmp_path / "missing"))
    for name in ("ca.pem", "0123abcd.pem", "0123abc.0", "0123abcg.0", "0123abcd."):
        (tmp_path / name).write_text("")
    assert not trustdir.has_hashed_links(str(tmp_path))
    (tmp_path / "0123abcd.1").write_text("")
    assert trustdir.has_hashed_links(str(tmp_path))


def test_a_bundle_edited_after_the_directory_keeps_eager_loading(tmp_path: Path) -> None:
    anchors = tmp_path / "certs"
    anchors.mkdir()
    (anchors / "0123abcd.0").write_text("")
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("")
    os.utime(anchors, ns=(1_000, 1_000))
    os.utime(bundle, ns=(2_000, 2_000))  # `cat my-ca.pem >> ca-certificates.crt` after update-ca-certificates
    paths = ssl.DefaultVerifyPaths(str(bundle), str(anchors), "SSL_CERT_FILE", str(bundle), "SSL_CERT_DIR", str(anchors))
    assert trustdir.bundle_edited_later(str(bundle), str(anchors))
    assert trustdir.directory_settings({}, paths) is None
    os.utime(bundle, ns=(500, 500))
    assert trustdir.directory_settings({}, paths) == {"SSL_CERT_FILE": os.devnull, "SSL_CERT_DIR": str(anchors)}
    assert not trustdir.bundle_edited_later(str(tmp_path / "no-bundle"), str(anchors))
    assert trustdir.directory_settings({"SSL_CERT_FILE": ""}, paths) is None  # set, even empty: the user's choice


def test_prefer_directory_and_restore_touch_only_what_they_set(tmp_path: Path) -> None:
    anchors = tmp_path / "certs"
    anchors.mkdir()
    (anchors / "0123abcd.0").write_text("")
    paths = ssl.DefaultVerifyPaths(None, str(anchors), "SSL_CERT_FILE", "", "SSL_CERT_DIR", str(anchors))  # type: ignore[arg-type]
    env = {"OTHER": "x"}
    assert trustdir.prefer_directory(env, paths)
    assert env == {"OTHER": "x", "SSL_CERT_FILE": os.devnull, "SSL_CERT_DIR": str(anchors)}
    trustdir.restore(env)
    assert env == {"OTHER": "x"}
    mine = {"SSL_CERT_DIR": "/elsewhere"}
    assert not trustdir.prefer_directory(mine, paths)
    trustdir.restore(mine)
    assert mine == {"SSL_CERT_DIR": "/elsewhere"}
