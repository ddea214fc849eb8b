"""The one data converter: pydantic payloads, AES-GCM codec, encoded failure attributes.

Built here and only here so the worker, portal, CLI, replayer and tests all read each other's
histories.
"""

import dataclasses
from collections.abc import Sequence

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from infra.codec import AesGcmPayloadCodec


def build_data_converter(key_ring: Sequence[tuple[str, bytes]]) -> DataConverter:
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=AesGcmPayloadCodec(key_ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
