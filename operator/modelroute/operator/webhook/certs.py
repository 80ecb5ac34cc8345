"""The webhook's own CA and serving certificate (pure: generation and checks, no I/O).

The webhook manages its TLS itself, so the chart works without cert-manager: a
long-lived CA signs a shorter-lived serving certificate for the webhook Service's DNS names;
the CA's certificate becomes the ``caBundle`` of the MutatingWebhookConfiguration.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
SERVING_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class WebhookTls:
    """PEM material: the CA (cert + key, kept to re-issue) and the serving pair."""

    ca_cert: bytes
    ca_key: bytes
    cert: bytes
    key: bytes

    # Secret data keys (kubernetes.io/tls style plus the CA's key).
    def as_secret_data(self) -> dict[str, bytes]:
        return {"ca.crt": self.ca_cert, "ca.key": self.ca_key, "tls.crt": self.cert, "tls.key": self.key}

    @classmethod
    def from_secret_data(cls, data: dict[str, bytes]) -> WebhookTls | None:
        try:
            return cls(ca_cert=data["ca.crt"], ca_key=data["ca.key"], cert=data["tls.crt"], key=data["tls.key"])
        except KeyError:
            return None


def service_dns_names(service: str, namespace: str) -> list[str]:
    """The names the apiserver may use to reach a Service-backed webhook."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _sans(hosts: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for h in hosts:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            out.append(x509.DNSName(h))
    return out


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_ca(common_name: str = "modelroute-webhook-ca", now: datetime.datetime | None = None) -> tuple[bytes, bytes]:
    """(CA cert PEM, CA key PEM)."""
    now = now or _now()
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _pem(key)


def issue(ca_cert_pem: bytes, ca_key_pem: bytes, hosts: Sequence[str], now: datetime.datetime | None = None) -> WebhookTls:
    """A serving certificate for ``hosts`` (DNS names or IP addresses), signed by the CA."""
    if not hosts:
        raise ValueError("a serving certificate needs at least one host name")
    now = now or _now()
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the webhook CA key must be an EC private key")
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + SERVING_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_sans(hosts)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return WebhookTls(ca_cert=ca_cert_pem, ca_key=ca_key_pem, cert=cert.public_bytes(serialization.Encoding.PEM), key=_pem(key))


def generate(hosts: Sequence[str], now: datetime.datetime | None = None) -> WebhookTls:
    """A new CA and a serving certificate for ``hosts``."""
    ca_cert, ca_key = new_ca(now=now)
    return issue(ca_cert, ca_key, hosts, now=now)


def problems(tls: WebhookTls, hosts: Sequence[str], now: datetime.datetime | None = None) -> list[str]:
    """Why ``tls`` cannot serve ``hosts`` for at least ``RENEW_BEFORE`` more (empty: it can)."""
    now = now or _now()
    out: list[str] = []
    try:
        ca = x509.load_pem_x509_certificate(tls.ca_cert)
        cert = x509.load_pem_x509_certificate(tls.cert)
        serialization.load_pem_private_key(tls.key, password=None)
        serialization.load_pem_private_key(tls.ca_key, password=None)
    except ValueError as e:
        return [f"unreadable certificate or key: {e}"]
    if ca.not_valid_after_utc - now < RENEW_BEFORE:
        out.append("the CA expires soon")
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        out.append("the serving certificate expires soon")
    if cert.issuer != ca.subject:
        out.append("the serving certificate was not issued by the CA")
    try:
        have = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [*out, "the serving certificate has no subject alternative names"]
    present = {str(v) for v in have.get_values_for_type(x509.DNSName)}
    present |= {str(v) for v in have.get_values_for_type(x509.IPAddress)}
    missing = [h for h in hosts if _canon(h) not in present]
    if missing:
        out.append(f"the serving certificate does not cover {', '.join(missing)}")
    return out


def _canon(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def ca_usable(tls: WebhookTls, now: datetime.datetime | None = None) -> bool:
    """True when the CA can keep issuing serving certificates (readable, not expiring soon)."""
    now = now or _now()
    try:
        ca = x509.load_pem_x509_certificate(tls.ca_cert)
        key = serialization.load_pem_private_key(tls.ca_key, password=None)
    except ValueError:
        return False
    return isinstance(key, ec.EllipticCurvePrivateKey) and ca.not_valid_after_utc - now >= RENEW_BEFORE + SERVING_VALIDITY
