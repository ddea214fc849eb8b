"""HTTPS to the address checked (SPEC §12): the try connects to the IP the check resolved while the
URL's host stays in the Host header and the TLS server name, so the certificate is verified
against the name the company gave, never against the IP and never after a second DNS lookup."""

import asyncio
import contextlib
import datetime
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from domain.webhooks import TryOutcome
from infra.webhook_address import AddressRules, parse_allowed_networks
from tests.webhooks.conftest import StackFactory
from tests.webhooks.support import delivery_outcome, tries
from tools.standins.webhook_receiver import WebhookReceiver


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_tls(tmp: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A private CA (trusted by the worker's client) and a certificate for `hooks.test` only."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PortalPay test CA")])
    ca = _cert("PortalPay test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("hooks.test", key, ca_name, ca_key, ca=False)
    cert_file, key_file = tmp / "hooks.pem", tmp / "hooks.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    trust = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return trust, cert_file, key_file


@contextlib.asynccontextmanager
async def serve_tls(rec: WebhookReceiver, cert: Path, key: Path) -> AsyncIterator[int]:
    server = uvicorn.Server(
        uvicorn.Config(
            rec.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task


async def test_https_is_pinned_to_the_checked_address_and_verified_against_the_url_host(
    webhook_stack_factory: StackFactory, db_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    trust, cert, key = make_tls(tmp_path)
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        if host in ("hooks.test", "wrong-name.test"):
            return ["127.0.0.1"]
        raise OSError("no such host")

    rec = WebhookReceiver()
    rules = AddressRules(dev=False, allowed_networks=parse_allowed_networks("127.0.0.1/32"))
    async with (
        serve_tls(rec, cert, key) as port,
        webhook_stack_factory(
            retries=(0.2,), address_rules=rules, tls_verify=trust, resolver=resolver
        ) as stack,
    ):
        good_id, secret = await stack.endpoint(f"https://hooks.test:{port}/hook")
        # The same server under a name its certificate does not carry.
        wrong_id, _ = await stack.endpoint(f"https://wrong-name.test:{port}/hook")
        rec.secrets = [secret]
        event_id = await stack.event()
        good = await delivery_outcome(stack.client, good_id, event_id)
        wrong = await delivery_outcome(stack.client, wrong_id, event_id)

    assert good.outcome is TryOutcome.DELIVERED
    assert [t.headers["host"] for t in rec.accepted] == [f"hooks.test:{port}"]
    assert wrong.outcome is TryOutcome.FAILED and wrong.tries == 2
    assert all(
        t["status_code"] is None and t["error"].startswith("ConnectError")
        for t in await tries(db_pool, wrong_id)
    )
    # Each try looked the name up once (the check), and connected to what that lookup said.
    assert lookups.count("hooks.test") == 1 and lookups.count("wrong-name.test") == 2
