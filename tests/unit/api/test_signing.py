"""Signed pushes: only the holder of the private key can produce a valid signature."""

from __future__ import annotations

from modelroute.api import signing


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
