"""The web-debit authorization wording the customer agrees to (kept with the payment for two years)."""

from domain.money import format_amount_with_code


def ach_authorization_text(
    *, amount_cents: int, currency: str, invoice_number: str, account_last4: str
) -> str:
    amount = format_amount_with_code(amount_cents, currency)
    return (
        f"I authorize a one-time electronic debit of {amount} from the account ending in "
        f"{account_last4} to pay invoice {invoice_number}. I am an authorized signer on this "
        "account. This authorization cannot be revoked once the debit is submitted."
    )
