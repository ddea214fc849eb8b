"""AES-256-GCM payload codec: every payload in history is ciphertext, the key id travels beside it.

Several keys may be configured; the first encrypts and all decrypt, so keys rotate without
breaking histories written under an older one.
"""

import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"


class UnknownKeyError(ValueError):
    pass


class AesGcmPayloadCodec(PayloadCodec):
    def __init__(self, key_ring: Sequence[tuple[str, bytes]]) -> None:
        if not key_ring:
            raise ValueError("at least one codec key is required")
        self._encrypt_kid, key = key_ring[0]
        self._encryptor = AESGCM(key)
        self._decryptors = {kid: AESGCM(k) for kid, k in key_ring}

    @property
    def encrypting_key_id(self) -> str:
        return self._encrypt_kid

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(12)
        sealed = self._encryptor.encrypt(nonce, payload.SerializeToString(), self._encrypt_kid.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._encrypt_kid.encode()},
            data=nonce + sealed,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        kid = payload.metadata.get(KEY_ID_METADATA, b"").decode()
        aesgcm = self._decryptors.get(kid)
        if aesgcm is None:
            raise UnknownKeyError(f"no codec key with id {kid!r}")
        plain = aesgcm.decrypt(payload.data[:12], payload.data[12:], kid.encode())
        return Payload.FromString(plain)
