"""One verifying TLS context per process for the product's outbound HTTP clients.

httpx builds a new `ssl.SSLContext` for every client it makes, loading certifi's CA bundle each
time: about 40 ms of CPU on this machine. The worker makes a processor client per worker build and
a client per webhook try (on purpose: nothing pooled from one receiver to the next), and the test
suite spent about a twentieth of its CPU there. A context is safe to share between clients once
configured, and this one is never changed after it is made: the same verification httpx would set
up (certifi's CAs, hostname checks, `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured when it is made).
"""

import functools
import ssl

import httpx


@functools.cache
def verifying_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()
