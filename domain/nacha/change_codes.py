"""Notification of change codes (C01-C13): what the receiving bank says was wrong with an entry.

PortalPay does not apply a correction by itself (SPEC §13): a notice marks the bank account as
needing new details, and the customer enters them. The meaning is for staff and the audit trail;
`holds_account_number` says whose corrected data must be stored encrypted or masked.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ChangeCode:
    code: str
    meaning: str
    holds_account_number: bool


_TABLE = (
    ChangeCode("C01", "incorrect account number", True),
    ChangeCode("C02", "incorrect routing number", False),
    ChangeCode("C03", "incorrect routing number and account number", True),
    ChangeCode("C04", "incorrect individual name", False),
    ChangeCode("C05", "incorrect transaction code (checking or savings)", False),
    ChangeCode("C06", "incorrect account number and transaction code", True),
    ChangeCode("C07", "incorrect routing number, account number and transaction code", True),
    ChangeCode("C08", "incorrect receiving DFI identification (IAT)", False),
    ChangeCode("C09", "incorrect individual identification number", False),
    ChangeCode("C10", "incorrect company name", False),
    ChangeCode("C11", "incorrect company identification", False),
    ChangeCode("C12", "incorrect company name and company identification", False),
    ChangeCode("C13", "addenda format error", False),
)
CHANGE_CODES: dict[str, ChangeCode] = {c.code: c for c in _TABLE}
