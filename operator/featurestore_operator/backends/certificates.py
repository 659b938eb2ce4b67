"""The one X.509 builder: ECDSA P-256 keys and certificates for the per-store serving CA and server
certificates (backends/tls.py) and the admission webhook's self-signed certificate
(handlers/admission.py). Not pure (keys and serials are random)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey
#: Certificates start a little in the past: clocks of clients may lag.
BACKDATE = dt.timedelta(minutes=5)
#: X.509's upper bound of a common name. Clients match the SANs; the CN is a label only, cut to fit
#: (a 63-character namespace and store name made an unbounded CN crash the pass).
CN_MAX = 64


@dataclass(frozen=True)
class Issuer:
    """Who signs: the issuer's key and subject (a self-signed certificate is its own issuer)."""

    key: Key
    subject: x509.Name


def new_key() -> Key:
    return ec.generate_private_key(ec.SECP256R1())


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _constraints(permitted: list[str]) -> x509.NameConstraints:
    nowhere = [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))]
    return x509.NameConstraints(permitted_subtrees=[x509.DNSName(n) for n in permitted], excluded_subtrees=nowhere)


def issue(
    key: Key,
    common_name: str,
    *,
    now: dt.datetime,
    validity: dt.timedelta,
    names: list[str] | None = None,
    issuer: Issuer | None = None,
    ca: bool = False,
    permitted: list[str] | None = None,
) -> x509.Certificate:
    """A certificate for ``key``: a CA (``ca``), a server certificate for ``names`` (DNS names or IP
    addresses), or both (a self-signed server certificate that is its own CA). Without ``issuer`` it
    is self-signed. ``permitted`` (a CA): the DNS subtrees it may sign for (a critical X.509 name
    constraint; every IP address excluded), so a leaf for any other name fails verification."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:CN_MAX])])
    signer = issuer or Issuer(key, subject)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(_ca_usage(), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if ca and permitted is not None:
        builder = builder.add_extension(_constraints(permitted), critical=True)
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(signer.key, hashes.SHA256())


def pem_key(key: Key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def pem_cert(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def write_self_signed(names: list[str], directory: Path, validity: dt.timedelta) -> tuple[Path, Path]:
    """A self-signed server certificate (its own CA) for ``names`` in ``directory``: (certfile, keyfile)."""
    key = new_key()
    cert = issue(key, names[0], now=dt.datetime.now(dt.UTC), validity=validity, names=names, ca=True)
    certfile, keyfile = directory / "tls.crt", directory / "tls.key"
    certfile.write_text(pem_cert(cert))
    keyfile.touch(mode=0o600)
    keyfile.write_text(pem_key(key))
    return certfile, keyfile


if __name__ == "__main__":  # python -m ...certificates DAYS DIRECTORY NAME... (see handlers/admission.py)
    write_self_signed(sys.argv[3:], Path(sys.argv[2]), dt.timedelta(days=int(sys.argv[1])))
