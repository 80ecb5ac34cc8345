"""Signed pushes: only the holder of the private key can produce a valid signature."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelroute.api import signing
from modelroute.testing.fresh import run_python


def test_sign_and_verify_round_trip() -> None:
    pem = signing.generate_private_key_pem()
    key, pub = signing.load_private_key(pem), signing.load_public_key(signing.public_key_pem(pem))
    sig = signing.sign(key, b"body")
    assert signing.verify(pub, b"body", sig)
    assert not signing.verify(pub, b"body!", sig)
    assert not signing.verify(pub, b"body", None)
    assert not signing.verify(pub, b"body", "ed25519=not-base64!")
    other = signing.load_private_key(signing.generate_private_key_pem())
    assert not signing.verify(pub, b"body", signing.sign(other, b"body"))


def test_the_canonical_public_key_pem_is_read_without_cryptography() -> None:
    code = ("import sys\nfrom modelroute.api import signing\n"
            f"key = signing.load_public_key({signing.public_key_pem(signing.generate_private_key_pem())!r})\n"
            "print(type(key).__name__, any(m.partition('.')[0] == 'cryptography' for m in sys.modules))")
    assert run_python(code).split() == ["VerifyKey", "False"]


def full_parse(pem: bytes) -> object:
    """What cryptography's own PEM reader makes of ``pem``: raw key bytes, or the exception's type and text."""
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as e:
        return (type(e).__name__, str(e))
    if not isinstance(key, Ed25519PublicKey):
        return "not ed25519"
    return key.public_bytes_raw()


def ours(pem: bytes) -> object:
    try:
        key = signing.load_public_key(pem)
    except ValueError as e:
        return "not ed25519" if "must be an Ed25519" in str(e) else (type(e).__name__, str(e))
    return bytes(key)


def pem_variants() -> list[bytes]:
    canonical = signing.public_key_pem(signing.generate_private_key_pem())
    body = canonical.split(b"\n")[1]
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other_pad = alphabet[alphabet.index(body[-2]) ^ 1:][:1]   # the same key bits, a padding bit set: not canonical
    return [
        canonical, canonical.replace(b"\n", b"\r\n"), b"  \n" + canonical + b"\n\n", canonical.rstrip(b"\n"),
        canonical.replace(body, body[:-2] + other_pad + b"="), canonical.replace(body, body[:20] + b"\n" + body[20:]),
        canonical.replace(body, body[:-1]), canonical.replace(body, body[:-5] + b"!!!!="), b"comment\n" + canonical,
        canonical.replace(b"PUBLIC KEY", b"RSA PUBLIC KEY"), rsa_pub, b"", b"not a pem",
        canonical.replace(body, base64.b64encode(bytes.fromhex("302a300506032b6571032100") + bytes(32))),  # Ed448 OID
        canonical.replace(body, base64.b64encode(bytes.fromhex("302a300506032b6570032100") + bytes(range(32)))),
    ]


def test_every_public_key_pem_reads_as_cryptography_reads_it() -> None:
    for pem in pem_variants():
        assert ours(pem) == full_parse(pem), pem
