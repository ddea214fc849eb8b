"""Fixed test keys: the ring is ordered, the first encrypts."""

import base64

KEY_A = ("key-a", b"A" * 32)
KEY_B = ("key-b", b"B" * 32)
OPERATOR_TOKEN = "operator-test-token"
UI_ORIGIN = "http://localhost:8080"


def codec_keys_setting(*ring: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in ring)
