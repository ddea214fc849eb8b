"""The sandbox processor's published test accounts (SPEC §6): the account number decides."""

DECLINING_ACCOUNTS: dict[str, str] = {
    "000111111113": "account_closed",
    "000222222227": "insufficient_funds",
    "000333333335": "debit_not_authorized",
}


def sandbox_decline_reason(account_number: str) -> str | None:
    return DECLINING_ACCOUNTS.get(account_number)
