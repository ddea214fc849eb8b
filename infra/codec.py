"""AES-256-GCM payload codec: every payload in history is ciphertext, the key id travels beside it.

Several keys may be configured; the first encrypts and all decrypt, so keys rotate without
breaking histories written under an older one.

Decoding refuses a payload that is not ours (SPEC §11): whoever can reach the Temporal frontend
can start `pay-invoice-X` or send an Update with a plaintext JSON argument, and a worker that
passed it through would act on input nobody holding a codec key wrote. Refused, the worker's
workflow task fails (the run never reaches an activity) and a client's call fails. Search
attributes never pass through a codec. The codec endpoint, which only shows payloads to an
operator, uses `decode_for_display` and passes foreign payloads through unchanged.
"""

import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16


class CodecError(ValueError):
    """An encrypted payload cannot be opened; the message names the key id, never the data."""


class UnknownKeyError(CodecError):
    pass


class PayloadDecryptError(CodecError):
    pass


class UnencryptedPayloadError(CodecError):
    """A payload without our encoding: written by someone who holds no codec key."""


class AesGcmPayloadCodec(PayloadCodec):
    def __init__(self, key_ring: Sequence[tuple[str, bytes]]) -> None:
        if not key_ring:
            raise ValueError("at least one codec key is required")
        seen: set[str] = set()
        for kid, key in key_ring:
            if not kid:
                raise ValueError("a codec key id must not be empty")
            if kid in seen:
                # Two keys under one id would make decryption depend on ring order.
                raise ValueError(f"codec key id {kid!r} appears twice")
            if len(key) != KEY_BYTES:
                raise ValueError(f"codec key {kid!r} must be {KEY_BYTES} bytes (AES-256)")
            seen.add(kid)
        self._encrypt_kid, key = key_ring[0]
        self._encryptor = AESGCM(key)
        self._decryptors = {kid: AESGCM(k) for kid, k in key_ring}

    @property
    def encrypting_key_id(self) -> str:
        return self._encrypt_kid

    @property
    def key_ids(self) -> list[str]:
        return list(self._decryptors)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    async def decode_for_display(self, payloads: Sequence[Payload]) -> list[Payload]:
        """For the operator's eyes only (the codec endpoint): foreign payloads come back as they are."""
        return [self.decode_one(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        nonce = os.urandom(_NONCE_BYTES)
        # The key id is authenticated data: moving ciphertext under another id fails to open.
        sealed = self._encryptor.encrypt(nonce, payload.SerializeToString(), self._encrypt_kid.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: self._encrypt_kid.encode()},
            data=nonce + sealed,
        )

    def decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            raw_encoding = payload.metadata.get("encoding") or b"none"
            raise UnencryptedPayloadError(
                f"refused a payload not encrypted under a codec key (encoding "
                f"{raw_encoding[:40].decode(errors='replace')!r}); was it sent by a client without CODEC_KEYS?"
            )
        raw_kid = payload.metadata.get(KEY_ID_METADATA)
        if not raw_kid:
            raise UnknownKeyError(f"encrypted payload carries no {KEY_ID_METADATA!r} metadata")
        kid = raw_kid.decode(errors="replace")
        aesgcm = self._decryptors.get(kid)
        if aesgcm is None:
            raise UnknownKeyError(
                f"no codec key with id {kid!r} (configured: {', '.join(self._decryptors)}); "
                "keep retired keys in CODEC_KEYS while histories encrypted under them exist"
            )
        if len(payload.data) < _NONCE_BYTES + _TAG_BYTES:
            raise PayloadDecryptError(f"payload under codec key {kid!r} is truncated")
        try:
            plain = aesgcm.decrypt(payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:], kid.encode())
        except InvalidTag:
            raise PayloadDecryptError(
                f"payload under codec key {kid!r} failed authentication "
                "(tampered, or a different key configured under that id)"
            ) from None
        return Payload.FromString(plain)
