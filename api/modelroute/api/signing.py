"""Ed25519 signatures on operator pushes: the operator holds the private key, sidecars the public one.

A pod that can reach another pod's sidecar still cannot reconfigure it: it cannot sign.
Signing (the operator) uses ``cryptography``; verifying (the sidecar) uses PyNaCl's libsodium binding,
~2 MB resident against cryptography's ~9 MB, so a sidecar never imports ``cryptography``. Both are
imported on first use: a standalone sidecar needs neither.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from nacl.signing import VerifyKey

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


# The PEM ``public_key_pem`` writes: SubjectPublicKeyInfo of an Ed25519 key, whose DER is this fixed
# 12-byte header (SEQUENCE, AlgorithmIdentifier id-Ed25519 1.3.101.112, BIT STRING) and the 32-byte key.
_ED25519_SPKI_HEADER = bytes.fromhex("302a300506032b6570032100")
_ED25519_PEM = rb"-----BEGIN PUBLIC KEY-----\r?\n(MCowBQYDK2VwAyEA[A-Za-z0-9+/]{43}=)\r?\n-----END PUBLIC KEY-----\s*"


def load_public_key(pem: bytes) -> VerifyKey:
    """The verifier for the key in ``pem``; raises ``ValueError`` unless it is an Ed25519 public key.

    The canonical PEM (what ``public_key_pem`` writes, and the operator publishes) is read without
    ``cryptography``; any other text (line breaks, comments: a key file written by hand for the
    webhook's ``--operator-public-key``) goes through cryptography's PEM reader, the rare path.
    """
    from nacl.signing import VerifyKey

    m = re.fullmatch(_ED25519_PEM, pem.lstrip())   # compiled on first use, not at import
    if m is not None:
        der = base64.b64decode(m.group(1), validate=True)
        if base64.b64encode(der) == m.group(1) and der.startswith(_ED25519_SPKI_HEADER):   # canonical base64
            return VerifyKey(der[len(_ED25519_SPKI_HEADER):])
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the operator public key must be an Ed25519 public key (PEM)")
    return VerifyKey(key.public_bytes_raw())


def canonical_public_key_pem(key: VerifyKey) -> bytes:
    """``key`` in the PEM ``public_key_pem`` writes: the form a sidecar reads without ``cryptography``."""
    der = base64.b64encode(_ED25519_SPKI_HEADER + bytes(key))
    return b"-----BEGIN PUBLIC KEY-----\n" + der + b"\n-----END PUBLIC KEY-----\n"


def verify_key(key: Ed25519PrivateKey) -> VerifyKey:
    """The verifier for signatures by ``key`` (the operator reading back its own bundles)."""
    from nacl.signing import VerifyKey

    return VerifyKey(key.public_key().public_bytes_raw())


def sign(key: Ed25519PrivateKey, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "ed25519=" + base64.b64encode(key.sign(body)).decode()


def verify(key: VerifyKey, body: bytes, header: str | None) -> bool:
    """True when ``header`` is a valid signature of ``body`` by the matching private key.

    libsodium refuses non-canonical and small-order encodings that OpenSSL may accept; signatures
    ``sign`` makes are never among them.
    """
    from nacl.exceptions import BadSignatureError

    if not header or not header.startswith("ed25519="):
        return False
    try:
        signature = base64.b64decode(header.removeprefix("ed25519="), validate=True)
    except ValueError:
        return False
    if len(signature) != 64:
        return False
    try:
        key.verify(body, signature)
    except BadSignatureError:
        return False
    return True
