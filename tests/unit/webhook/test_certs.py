"""Webhook certificates: issued for the right names, verified by a real TLS client, renewed in time."""

from __future__ import annotations

import datetime

from cryptography import x509

from modelroute.operator.webhook import certs

HOSTS = [*certs.service_dns_names("modelroute-webhook", "modelroute-system"), "127.0.0.1"]


def test_generated_material_has_no_problems() -> None:
    tls = certs.generate(HOSTS)
    assert certs.problems(tls, HOSTS) == []
    cert = x509.load_pem_x509_certificate(tls.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "modelroute-webhook.modelroute-system.svc" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    ca = x509.load_pem_x509_certificate(tls.ca_cert)
    cert.verify_directly_issued_by(ca)


def test_missing_host_and_expiry_are_problems() -> None:
    tls = certs.generate(HOSTS)
    assert any("does not cover other.svc" in p for p in certs.problems(tls, [*HOSTS, "other.svc"]))
    later = datetime.datetime.now(datetime.UTC) + certs.SERVING_VALIDITY - datetime.timedelta(days=1)
    assert any("serving certificate expires soon" in p for p in certs.problems(tls, HOSTS, now=later))


def test_reissue_keeps_the_ca() -> None:
    tls = certs.generate(HOSTS)
    assert certs.ca_usable(tls)
    again = certs.issue(tls.ca_cert, tls.ca_key, HOSTS)
    assert again.ca_cert == tls.ca_cert and again.cert != tls.cert
    assert certs.problems(again, HOSTS) == []


def test_garbage_is_reported_not_raised() -> None:
    bad = certs.WebhookTls(b"x", b"y", b"z", b"w")
    assert certs.problems(bad, HOSTS)[0].startswith("unreadable")
    assert not certs.ca_usable(bad)


def test_secret_data_round_trip() -> None:
    tls = certs.generate(["a"])
    assert certs.WebhookTls.from_secret_data(tls.as_secret_data()) == tls
    assert certs.WebhookTls.from_secret_data({"tls.crt": b""}) is None
