"""The providers' own OpenAPI documents (`../shared/contracts` beside the repo) as request validators.

SendGrid's `tsg_mail_v3.json` is used as published. Twilio's `twilio_api_v2010.json` states two
rules of `POST .../Messages.json` only as `x-twilio.conditional` ("From or MessagingServiceSid",
"Body or MediaUrl or ContentSid"), which no validator reads; `derive_twilio_contract` turns each
group into an `anyOf` of `required` in an `allOf` on the form schema of a copy made at test time.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tools.standins.providers import Captured

REPO_ROOT = Path(__file__).resolve().parents[2]
# PORTALPAY_CONTRACTS_DIR points elsewhere (the test that a missing document fails uses it).
CONTRACTS_DIR = Path(
    os.environ.get("PORTALPAY_CONTRACTS_DIR") or (REPO_ROOT / ".." / "shared" / "contracts")
).resolve()
SENDGRID_DOC = CONTRACTS_DIR / "tsg_mail_v3.json"
TWILIO_DOC = CONTRACTS_DIR / "twilio_api_v2010.json"
SENDGRID_HOST = "https://api.sendgrid.com"
TWILIO_HOST = "https://api.twilio.com"
TWILIO_MESSAGES = "/2010-04-01/Accounts/{AccountSid}/Messages.json"


def contracts_missing_reason() -> str | None:
    for doc in (SENDGRID_DOC, TWILIO_DOC):
        if not doc.is_file():
            return f"provider contracts not found: {doc} (expected ../shared/contracts beside the repo)"
    return None


def load_sendgrid_contract() -> OpenAPI:
    return OpenAPI.from_dict(json.loads(SENDGRID_DOC.read_text()))


def derive_twilio_contract(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of the Twilio document whose Messages create form enforces `x-twilio.conditional`."""
    derived = copy.deepcopy(doc)
    operation = derived["paths"][TWILIO_MESSAGES]["post"]
    schema = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    by_key = {name.replace("_", "").lower(): name for name in schema["properties"]}
    groups = operation.get("x-twilio", {}).get("conditional", [])
    if not groups:
        raise AssertionError("Twilio document no longer states x-twilio.conditional on Messages create")
    rules = []
    for group in groups:
        names = [by_key[snake.replace("_", "").lower()] for snake in group]
        rules.append({"anyOf": [{"required": [name]} for name in names]})
    schema["allOf"] = [*schema.get("allOf", []), *rules]
    return derived


def load_twilio_contract() -> OpenAPI:
    return OpenAPI.from_dict(derive_twilio_contract(json.loads(TWILIO_DOC.read_text())))


class CapturedRequest:
    """An openapi-core `Request` made from what a stand-in captured, as if sent to the real host."""

    def __init__(self, captured: Captured, host_url: str) -> None:
        self.host_url = host_url
        self.path = captured.path
        self.method = captured.method.lower()
        self.body: bytes | None = captured.body or None
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(parse_qsl(captured.query, keep_blank_values=True)),
            header=Headers(list(captured.headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = (captured.headers.get("Content-Type") or "").lower()


def validate_sendgrid(contract: OpenAPI, captured: Captured) -> None:
    contract.validate_request(CapturedRequest(captured, SENDGRID_HOST))


def validate_twilio(contract: OpenAPI, captured: Captured) -> None:
    contract.validate_request(CapturedRequest(captured, TWILIO_HOST))
