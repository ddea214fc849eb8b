"""The AES-GCM codec on its own: ciphertext at rest, rotation, and clear failures."""

import pytest
from temporalio.api.common.v1 import Payload

from infra.codec import (
    ENCODING,
    KEY_ID_METADATA,
    AesGcmPayloadCodec,
    PayloadDecryptError,
    UnencryptedPayloadError,
    UnknownKeyError,
)
from infra.converter import build_data_converter
from tests.codec.keys import KEY_A, KEY_B, codec_keys_setting
from tests.support import test_settings as make_settings

CONTACT = {"email": "ada@example.com", "phone": "+15555550101", "account_number": "000123456789"}


async def test_round_trip_through_the_data_converter() -> None:
    converter = build_data_converter([KEY_A])
    payloads = await converter.encode([CONTACT, "plain text"])
    assert await converter.decode(payloads, [dict, str]) == [CONTACT, "plain text"]


async def test_encoded_payloads_are_ciphertext() -> None:
    converter = build_data_converter([KEY_A])
    [payload] = await converter.encode([CONTACT])
    raw = payload.SerializeToString()
    for secret in CONTACT.values():
        assert secret.encode() not in raw
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"key-a"


async def test_same_input_encrypts_differently_each_time() -> None:
    codec = AesGcmPayloadCodec([KEY_A])
    inner = Payload(metadata={"encoding": b"json/plain"}, data=b'"same"')
    first, second = await codec.encode([inner, inner])
    assert first.data != second.data


async def test_history_written_under_a_decodes_after_b_becomes_the_encrypting_key() -> None:
    old = build_data_converter([KEY_A])
    [written_under_a] = await old.encode([CONTACT])

    rotated = build_data_converter([KEY_B, KEY_A])
    assert await rotated.decode([written_under_a], [dict]) == [CONTACT]
    [written_under_b] = await rotated.encode([CONTACT])
    assert written_under_b.metadata[KEY_ID_METADATA] == b"key-b"
    # Retiring A too early breaks old histories, and says so.
    with pytest.raises(UnknownKeyError, match="key-a"):
        await build_data_converter([KEY_B]).decode([written_under_a], [dict])


async def test_unknown_key_id_fails_clearly() -> None:
    [payload] = await AesGcmPayloadCodec([KEY_A]).encode([Payload(data=b"x")])
    with pytest.raises(UnknownKeyError) as excinfo:
        await AesGcmPayloadCodec([KEY_B]).decode([payload])
    message = str(excinfo.value)
    assert "'key-a'" in message and "key-b" in message and "CODEC_KEYS" in message


async def test_missing_key_id_fails_clearly() -> None:
    [payload] = await AesGcmPayloadCodec([KEY_A]).encode([Payload(data=b"x")])
    del payload.metadata[KEY_ID_METADATA]
    with pytest.raises(UnknownKeyError, match=KEY_ID_METADATA):
        await AesGcmPayloadCodec([KEY_A]).decode([payload])


async def test_tampered_ciphertext_fails_authentication() -> None:
    codec = AesGcmPayloadCodec([KEY_A])
    [payload] = await codec.encode([Payload(data=b"hello")])
    payload.data = payload.data[:-1] + bytes([payload.data[-1] ^ 1])
    with pytest.raises(PayloadDecryptError, match="failed authentication"):
        await codec.decode([payload])


async def test_ciphertext_relabelled_under_another_key_id_does_not_open() -> None:
    # Both keys known: only the authenticated key id may open the payload.
    codec = AesGcmPayloadCodec([KEY_A, KEY_B])
    [payload] = await codec.encode([Payload(data=b"hello")])
    payload.metadata[KEY_ID_METADATA] = b"key-b"
    with pytest.raises(PayloadDecryptError):
        await codec.decode([payload])


async def test_truncated_payload_fails_clearly() -> None:
    payload = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"key-a"}, data=b"short")
    with pytest.raises(PayloadDecryptError, match="truncated"):
        await AesGcmPayloadCodec([KEY_A]).decode([payload])


@pytest.mark.parametrize(
    "plain",
    [
        Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}'),
        Payload(metadata={"encoding": b"binary/null"}),
        Payload(data=b"no metadata at all"),
        Payload(metadata={"encoding": b"binary/encrypted-not"}, data=b"x" * 40),
    ],
)
async def test_unencrypted_payloads_are_refused_by_decode(plain: Payload) -> None:
    # SPEC §11: a worker or client never acts on a payload nobody holding a codec key wrote.
    with pytest.raises(UnencryptedPayloadError, match="not encrypted"):
        await AesGcmPayloadCodec([KEY_A]).decode([plain])
    with pytest.raises(UnencryptedPayloadError):
        await build_data_converter([KEY_A]).decode([plain], [object])


async def test_display_decoding_shows_foreign_payloads_as_they_are() -> None:
    codec = AesGcmPayloadCodec([KEY_A])
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"a": 1}')
    [sealed] = await codec.encode([plain])
    assert await codec.decode_for_display([plain, sealed]) == [plain, plain]


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        ([], "at least one"),
        ([("k", b"short")], "32 bytes"),
        ([("", b"A" * 32)], "empty"),
        ([KEY_A, ("key-a", b"C" * 32)], "twice"),
    ],
)
def test_bad_key_rings_are_refused(ring: list[tuple[str, bytes]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AesGcmPayloadCodec(ring)


def test_codec_keys_setting_order_decides_the_encrypting_key() -> None:
    settings = make_settings(codec_keys=codec_keys_setting(KEY_B, KEY_A))
    codec = AesGcmPayloadCodec(settings.codec_key_ring())
    assert codec.encrypting_key_id == "key-b"
    assert codec.key_ids == ["key-b", "key-a"]
