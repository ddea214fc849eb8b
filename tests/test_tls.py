"""The product's outbound HTTP clients share one TLS context (infra/tls.py): it must verify exactly as
a client httpx builds for itself would, or sharing it would have quietly turned verification off."""

import ssl

import httpx

from infra.tls import verifying_context


def test_the_shared_context_verifies_certificates_and_hostnames_like_httpx() -> None:
    shared = verifying_context()
    assert shared is verifying_context()  # made once per process
    own = httpx.create_ssl_context()
    assert shared.verify_mode is ssl.CERT_REQUIRED and shared.check_hostname
    assert (shared.verify_mode, shared.check_hostname, shared.minimum_version, shared.options) == (
        own.verify_mode,
        own.check_hostname,
        own.minimum_version,
        own.options,
    )
    assert shared.cert_store_stats()["x509_ca"] == own.cert_store_stats()["x509_ca"] > 0
