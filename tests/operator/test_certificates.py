"""The backups' private CA and the one certificate every pgBackRest party presents."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from brainai_operator import certificates

DNS = ["*.c-postgres.ns.svc", "*.c-postgres-repo.ns.svc.cluster.local"]
# Far from today, both ways: a certificate dated by the clock instead of `now` would not cover them.
MOMENTS = [dt.datetime(2001, 2, 3, 4, 5, tzinfo=dt.UTC), dt.datetime(2061, 2, 3, 4, 5, tzinfo=dt.UTC)]
NOW = MOMENTS[0]


def load(material: dict[str, str]) -> tuple[x509.Certificate, x509.Certificate]:
    ca = x509.load_pem_x509_certificate(material["ca.crt"].encode())
    leaf = x509.load_pem_x509_certificate(material["tls.crt"].encode())
    return ca, leaf


def spki(key: Any) -> bytes:
    """A public key's bytes, to compare keys by."""
    encoded: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return encoded


def test_the_material_is_pem_under_the_secrets_keys() -> None:
    material = certificates.issue("pgbackrest", DNS, NOW)
    assert set(material) == set(certificates.KEYS) == {"ca.crt", "tls.crt", "tls.key"}
    assert material["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    assert material["tls.key"].startswith("-----BEGIN PRIVATE KEY-----")  # PKCS 8, unencrypted


def test_the_ca_signed_the_leaf_and_is_a_ca() -> None:
    ca, leaf = load(certificates.issue("pgbackrest", DNS, NOW))
    leaf.verify_directly_issued_by(ca)  # raises unless the CA's key signed it
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert leaf.issuer == ca.subject and ca.issuer == ca.subject  # self-signed root
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pgbackrest"


def test_the_leaf_names_the_hosts_and_serves_both_ends() -> None:
    _, leaf = load(certificates.issue("pgbackrest", DNS, NOW))
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == DNS
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_the_key_is_the_leafs() -> None:
    material = certificates.issue("pgbackrest", DNS, NOW)
    ca, leaf = load(material)
    key = serialization.load_pem_private_key(material["tls.key"].encode(), password=None)
    assert spki(key.public_key()) == spki(leaf.public_key())
    assert spki(key.public_key()) != spki(ca.public_key())  # not the CA's key handed out


@pytest.mark.parametrize("now", MOMENTS)
def test_validity_covers_now(now: dt.datetime) -> None:
    for cert in load(certificates.issue("pgbackrest", DNS, now)):
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
        assert cert.not_valid_after_utc - now > dt.timedelta(days=365)


def test_each_issue_is_a_new_ca() -> None:
    first, second = certificates.issue("pgbackrest", DNS, NOW), certificates.issue("pgbackrest", DNS, NOW)
    ca1, leaf1 = load(first)
    ca2, leaf2 = load(second)
    assert ca1 != ca2 and spki(ca1.public_key()) != spki(ca2.public_key())
    leaf2.verify_directly_issued_by(ca2)
    # Another cluster's CA (same name, other key) does not vouch for this cluster's certificate.
    with pytest.raises(InvalidSignature):
        leaf1.verify_directly_issued_by(ca2)
