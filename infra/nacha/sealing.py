"""Account numbers and file bodies at rest (SPEC §13): AES-256-GCM under a key derived from
NACHA_ACCOUNT_KEY, bound to what they belong to (an entry id, a file id) so a sealed value copied
onto another row does not open."""

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"n1"


class SealBroken(Exception):
    """The value was not sealed under this key for this row."""


class Sealer:
    def __init__(self, secret: str) -> None:
        # A derived key: the configured secret is any string of at least 32 bytes (SPEC §11).
        self._aead = AESGCM(hashlib.sha256(b"portalpay/nacha-account-key/" + secret.encode()).digest())

    def seal(self, plaintext: bytes, *, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> bytes:
        if sealed[:2] != _VERSION:
            raise SealBroken("unknown seal version")
        try:
            return self._aead.decrypt(sealed[2:14], sealed[14:], bound_to.encode())
        except InvalidTag:
            raise SealBroken(f"seal does not open for {bound_to}") from None
