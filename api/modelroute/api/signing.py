"""Ed25519 signatures on operator pushes: the operator holds the private key, sidecars the public one.

A pod that can reach another pod's sidecar still cannot reconfigure it: it cannot sign.
``cryptography`` (~7 MB resident) is imported on first use: a standalone sidecar never needs it.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

SIGNATURE_HEADER = "X-Modelroute-Signature"


def generate_private_key_pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def public_key_pem(private_pem: bytes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = load_private_key(private_pem)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the operator signing key must be an Ed25519 private key (PEM, PKCS8)")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the operator public key must be an Ed25519 public key (PEM)")
    return key


def sign(key: Ed25519PrivateKey, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "ed25519=" + base64.b64encode(key.sign(body)).decode()


def verify(key: Ed25519PublicKey, body: bytes, header: str | None) -> bool:
    """True when ``header`` is a valid signature of ``body`` by the matching private key."""
    from cryptography.exceptions import InvalidSignature

    if not header or not header.startswith("ed25519="):
        return False
    try:
        key.verify(base64.b64decode(header.removeprefix("ed25519="), validate=True), body)
    except (InvalidSignature, ValueError):
        return False
    return True
