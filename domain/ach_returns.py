"""ACH return codes (SPEC §9): what each means, whether it blocks the account, whether it is unauthorized.

R01 and R09 are about money, not the account: the same account may be debited again later. Every
other code blocks the account. The unauthorized codes (R05, R07, R10, R29) get no fresh pay link
and are flagged for staff: the account holder said the debit was not theirs to take.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ReturnCode:
    code: str
    meaning: str
    blocks_account: bool
    unauthorized: bool


_TABLE = (
    ReturnCode("R01", "insufficient funds", False, False),
    ReturnCode("R02", "account closed", True, False),
    ReturnCode("R03", "no account / unable to locate account", True, False),
    ReturnCode("R04", "invalid account number", True, False),
    ReturnCode("R05", "unauthorized corporate debit to a consumer account", True, True),
    ReturnCode("R07", "authorization revoked by customer", True, True),
    ReturnCode("R08", "payment stopped", True, False),
    ReturnCode("R09", "uncollected funds", False, False),
    ReturnCode("R10", "customer advises not authorized", True, True),
    ReturnCode("R16", "account frozen", True, False),
    ReturnCode("R20", "non-transaction account", True, False),
    ReturnCode("R29", "corporate customer advises not authorized", True, True),
)
RETURN_CODES: dict[str, ReturnCode] = {r.code: r for r in _TABLE}


def return_code(code: str | None) -> ReturnCode:
    """A code we do not know is treated as the strictest: it blocks the account and is flagged."""
    if code is None:
        return ReturnCode("R??", "unknown reason", True, True)
    known = RETURN_CODES.get(code.upper())
    if known is not None:
        return known
    return ReturnCode(code.upper(), "unrecognised return code", True, True)
