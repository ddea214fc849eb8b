"""Endpoint signing secrets: made, sealed at rest, and used to sign (SPEC §12, Standard Webhooks).

A secret is `whsec_` + base64 of 32 random bytes. PostgreSQL holds it only sealed with AES-256-GCM
under `WEBHOOK_SECRET_KEYS` (`kid:base64key[,kid2:…]`, the first seals, all open), with the
endpoint id as associated data so a sealed secret moved onto another endpoint does not open.

The signature is `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">` keyed by
the secret's bytes (the base64 after `whsec_`), which is what the `standardwebhooks` package
verifies. During a rotation both secrets sign: two signatures separated by a space.
"""

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.webhooks import SECRET_BYTES, SECRET_PREFIX

_NONCE_BYTES = 12


class SealedSecretError(ValueError):
    """A sealed secret cannot be opened; the message names the key id, never the secret."""


def new_signing_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


@dataclass(frozen=True)
class SealedSecret:
    key_id: str
    sealed: bytes


class SecretBox:
    def __init__(self, key_ring: Sequence[tuple[str, bytes]]) -> None:
        if not key_ring:
            raise ValueError("at least one WEBHOOK_SECRET_KEYS key is required")
        for kid, key in key_ring:
            if not kid or len(key) != 32:
                raise ValueError(f"WEBHOOK_SECRET_KEYS key {kid!r} must be 32 bytes (AES-256)")
        self._kid, first = key_ring[0]
        self._sealer = AESGCM(first)
        self._openers = {kid: AESGCM(key) for kid, key in key_ring}

    def seal(self, endpoint_id: str, secret: str) -> SealedSecret:
        nonce = os.urandom(_NONCE_BYTES)
        aad = f"{self._kid}/{endpoint_id}".encode()
        return SealedSecret(self._kid, nonce + self._sealer.encrypt(nonce, secret.encode(), aad))

    def open(self, endpoint_id: str, sealed: SealedSecret) -> str:
        opener = self._openers.get(sealed.key_id)
        if opener is None:
            raise SealedSecretError(
                f"no WEBHOOK_SECRET_KEYS key {sealed.key_id!r}: keep retired keys while endpoints use them"
            )
        aad = f"{sealed.key_id}/{endpoint_id}".encode()
        try:
            plain = opener.decrypt(sealed.sealed[:_NONCE_BYTES], sealed.sealed[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise SealedSecretError(
                f"endpoint {endpoint_id} secret under key {sealed.key_id!r} fails to open"
            ) from None
        return plain.decode()


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signature_header(secrets_in_use: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The current secret first; a rotated-out one beside it while its overlap lasts."""
    return " ".join(signature(s, webhook_id, timestamp, body) for s in secrets_in_use)
