"""NACHA fixtures: the bank's settings, and a real OpenSSH sshd on loopback (tests/bank_direct/sshd.py)."""

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bank_direct.sshd import SSHD, SshServer

BANK_ROUTING = "011000015"  # passes the ABA check digit


def bank_settings(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "processor": "nacha",
        "nacha_immediate_destination": BANK_ROUTING,
        "nacha_immediate_origin": "1234567890",
        "nacha_destination_name": "FIRST TEST BANK",
        "nacha_origin_name": "PORTALPAY MOVERS",
        "nacha_company_name": "PORTALPAY MOVERS",
        "nacha_company_id": "1234567890",
        "nacha_odfi_id": "01100001",
        "nacha_account_key": "nacha-account-key-for-tests-0123456789abcdef",
    }
    values.update(overrides)
    return values


@pytest.fixture
def sshd() -> Iterator[SshServer]:
    assert SSHD.exists(), "OpenSSH sshd is missing: run `make sshd` (Debian's openssh-server)"
    server = SshServer(Path(tempfile.mkdtemp(prefix="portalpay-sshd-")))
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
