"""Certificates and keys for a local control plane, generated with ``cryptography``.

One CA signs the apiserver's serving certificate (SANs 127.0.0.1, localhost and the
in-cluster names) and client certificates (the admin is in group ``system:masters``).
A separate key pair signs and verifies service-account tokens. All keys are ECDSA P-256:
fast to generate, accepted by kube-apiserver everywhere it takes a key.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate and its PEM (PKCS#8, unencrypted) private key."""

    cert_pem: bytes
    key_pem: bytes


@dataclass(frozen=True)
class PkiFiles:
    """Where :func:`write_pki` put everything."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, *, ca: bool) -> x509.CertificateBuilder:
    """What a CA and a leaf certificate have in common: names, key, serial, validity, basic usages."""
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )


def make_ca(common_name: str = "modelroute-local-ca") -> CertKey:
    """A self-signed CA certificate."""
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key(), ca=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def issue_cert(
    ca: CertKey,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
) -> CertKey:
    """A leaf certificate signed by ``ca``.

    For client certificates kube-apiserver takes the user name from ``common_name`` and
    the groups from ``organizations``.
    """
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _new_key()
    usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + (
        [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    )
    builder = (
        _builder(_name(common_name, organizations), ca_cert.subject, key.public_key(), ca=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_signing_key() -> tuple[bytes, bytes]:
    """A (private PEM, public PEM) pair for service-account token signing."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public


def _write(path: Path, data: bytes, private: bool) -> None:
    path.write_bytes(data)
    if private:
        os.chmod(path, 0o600)


def pki_files(directory: Path) -> PkiFiles:
    """Where the PKI under ``directory`` lives (nothing is created)."""
    return PkiFiles(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "sa.key",
        service_account_pub=directory / "sa.pub",
    )


def write_pki(directory: Path) -> PkiFiles:
    """Create (or reuse, if complete) the control plane's PKI under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    files = pki_files(directory)
    wanted = [getattr(files, f) for f in files.__dataclass_fields__ if f != "directory"]
    if all(p.is_file() for p in wanted):
        return files
    ca = make_ca()
    serving = issue_cert(
        ca,
        "kube-apiserver",
        dns_names=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"),
        ip_addresses=("127.0.0.1", "10.96.0.1"),
        server=True,
    )
    admin = issue_cert(ca, "modelroute-admin", organizations=("system:masters",), client=True)
    sa_private, sa_public = make_signing_key()
    _write(files.ca_cert, ca.cert_pem, private=False)
    _write(files.ca_key, ca.key_pem, private=True)
    _write(files.serving_cert, serving.cert_pem, private=False)
    _write(files.serving_key, serving.key_pem, private=True)
    _write(files.admin_cert, admin.cert_pem, private=False)
    _write(files.admin_key, admin.key_pem, private=True)
    _write(files.service_account_key, sa_private, private=True)
    _write(files.service_account_pub, sa_public, private=False)
    return files


def load_ca(files: PkiFiles) -> CertKey:
    """The CA, to issue more client certificates later."""
    return CertKey(files.ca_cert.read_bytes(), files.ca_key.read_bytes())
