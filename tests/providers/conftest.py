"""Fixtures for the provider tests: stand-in servers and the providers' contracts (loaded once).

Without the contracts (`../shared/contracts` beside the repo) every test that checks a request
against them fails with the path it looked at: a missing document must not pass as a skip.
"""

from collections.abc import Iterator

import pytest
from openapi_core import OpenAPI

from tools.standins.providers import SendGridStandIn, TwilioStandIn

from .contracts import contracts_missing_reason, load_sendgrid_contract, load_twilio_contract


@pytest.fixture(scope="session")
def sendgrid_contract() -> OpenAPI:
    reason = contracts_missing_reason()
    if reason:
        pytest.fail(reason, pytrace=False)
    return load_sendgrid_contract()


@pytest.fixture(scope="session")
def twilio_contract() -> OpenAPI:
    reason = contracts_missing_reason()
    if reason:
        pytest.fail(reason, pytrace=False)
    return load_twilio_contract()  # 1.9 MB: once per session


@pytest.fixture
def sendgrid_standin() -> Iterator[SendGridStandIn]:
    server = SendGridStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def twilio_standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn().start()
    yield server
    server.stop()
