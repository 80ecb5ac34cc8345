"""The sidecar's verifier (libsodium) accepts every signature the operator's signer (cryptography) makes, and nothing else."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.api import signing
from modelroute.api.config import RouteBundle, SidecarConfig
from modelroute.testing.fresh import run_python
from modelroute.testing.sidecars import OperatorKey

L = 2**252 + 27742317777372353535851937790883648493   # the order of the Ed25519 base point
IDENTITY = (1).to_bytes(32, "little")                  # the neutral point: order 1, "verifies" anything laxly


def public_pem(key: Ed25519PrivateKey) -> bytes:
    """The public key PEM as the operator publishes it (``signing.public_key_pem`` of its private PEM)."""
    return signing.public_key_pem(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def header(sig: bytes) -> str:
    return "ed25519=" + base64.b64encode(sig).decode()


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << bit % 8
    return bytes(out)


@settings(max_examples=200, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), body=st.binary(max_size=2048), bit=st.integers(min_value=0))
def test_operator_signatures_verify_and_tampering_does_not(seed: bytes, body: bytes, bit: int) -> None:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    pub = signing.load_public_key(public_pem(key))
    assert signing.canonical_public_key_pem(pub) == public_pem(key)
    sig = signing.sign(key, body)
    assert signing.verify(pub, body, sig)
    assert signing.verify(signing.verify_key(key), body, sig)
    raw = base64.b64decode(sig.removeprefix("ed25519="))
    assert not signing.verify(pub, flip(body, bit) if body else b"x", sig)
    assert not signing.verify(pub, body, header(flip(raw, bit)))


def test_wrong_key_and_malformed_headers_are_refused() -> None:
    key, other = OperatorKey(), OperatorKey()
    sig = signing.sign(key.private, b"body")
    raw = base64.b64decode(sig.removeprefix("ed25519="))
    assert signing.verify(key.public, b"body", sig)
    assert not signing.verify(other.public, b"body", sig)
    for bad in (None, "", "ed25519=", sig.removeprefix("ed25519="), "rsa=" + sig.removeprefix("ed25519="),
                header(raw[:63]), header(raw + b"\0"), header(b""), sig + "A", "ed25519=not-base64!", sig[:-1]):
        assert not signing.verify(key.public, b"body", bad), bad


def test_non_canonical_and_small_order_encodings_are_refused() -> None:
    key = OperatorKey()
    raw = base64.b64decode(signing.sign(key.private, b"body").removeprefix("ed25519="))
    r, s = raw[:32], int.from_bytes(raw[32:], "little")
    # The same signature with S + L (malleable, non-canonical S): equal modulo L, refused.
    assert not signing.verify(key.public, b"body", header(r + (s + L).to_bytes(32, "little")))
    # A small-order key with R = identity, S = 0 satisfies [S]B = R + [k]A for every message under lax checks.
    forged = header(IDENTITY + bytes(32))
    weak = signing.load_public_key(b"-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(
        bytes.fromhex("302a300506032b6570032100") + IDENTITY) + b"\n-----END PUBLIC KEY-----\n")
    assert not signing.verify(weak, b"body", forged)
    assert not signing.verify(weak, b"other", forged)
    # A real key with the small-order R.
    assert not signing.verify(key.public, b"body", header(IDENTITY + raw[32:]))


def test_the_sidecar_verification_path_never_imports_cryptography(tmp_path: Path) -> None:
    """Bundle and push verification in a fresh sidecar process: signed by cryptography, checked without it."""
    key = OperatorKey()
    bundle = RouteBundle(namespace="team", issued_at=datetime.now(UTC), routes=[])
    body = json.dumps(bundle.model_dump(mode="json", by_alias=True, exclude_none=True)).encode()
    (tmp_path / "bundle.json").write_bytes(body)
    (tmp_path / "bundle.sig").write_text(signing.sign(key.private, body) + "\n")
    (tmp_path / "key.pem").write_bytes(public_pem(key.private))
    push, headers = key.push(SidecarConfig(routes=[]), "team", "web-1")
    code = f"""
import sys
from pathlib import Path
import modelroute.sidecar.cli
from modelroute.api.config import PodRef
from modelroute.api.signing import load_public_key
from modelroute.sidecar.server.auth import AuthSettings, verify_push
from modelroute.sidecar.server.bundle import read_bundle
d = Path({str(tmp_path)!r})
key = load_public_key((d / "key.pem").read_bytes())
got = read_bundle(d, key)
auth = AuthSettings(operator_key=key, pod=PodRef(namespace="team", name="web-1"))
push = verify_push(auth, {push!r}, {headers[signing.SIGNATURE_HEADER]!r}, last_push_at=None, current_version=None)
print(got.namespace, push.audience.name, "nacl.signing" in sys.modules,
      any(m.partition(".")[0] == "cryptography" for m in sys.modules))
"""
    assert run_python(code).split() == ["team", "web-1", "True", "False"]
