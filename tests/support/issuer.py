"""A stand-in for cert-manager's CA issuer (cert-manager cannot run here): it signs a Certificate's
dnsNames with a test CA and returns the Secret data cert-manager would write (tls.crt, tls.key,
ca.crt)."""

from __future__ import annotations

import datetime as dt

from featurestore_operator.backends.certificates import Issuer, issue, new_key, pem_cert, pem_key


class TestIssuer:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.key = new_key()
        now = dt.datetime.now(dt.UTC)
        self.ca = issue(self.key, "test cluster issuer", now=now, validity=dt.timedelta(days=30), ca=True)
        self.ca_pem = pem_cert(self.ca)

    def secret_data(self, dns_names: list[str]) -> dict[str, str]:
        """A new key pair for ``dns_names`` signed by the test CA (each call: a renewal)."""
        key = new_key()
        cert = issue(
            key,
            dns_names[0],
            now=dt.datetime.now(dt.UTC),
            validity=dt.timedelta(days=1),
            names=dns_names,
            issuer=Issuer(self.key, self.ca.subject),
        )
        return {"tls.crt": pem_cert(cert), "tls.key": pem_key(key), "ca.crt": self.ca_pem}
