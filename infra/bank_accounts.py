"""Bank accounts known by a keyed fingerprint (SPEC §9): HMAC-SHA256(routing + account) under
BANK_FINGERPRINT_KEY. Full numbers are never stored; without the key a fingerprint cannot be
brute-forced back into an account number.

The fingerprint is of the normalised numbers (no separators, no leading zeros), so a leading zero
does not make a blocked account new. Rows written before that hold the fingerprint of the number as
typed: the blocklist lookup also tries every zero-padded spelling of the account (a dual lookup, no
migration: the full numbers needed to recompute old rows were never kept).
"""

import hashlib
import hmac

import asyncpg

from domain.bank_account import normalised_account_number, normalised_routing_number, zero_padded_spellings


def _hmac(key: bytes, routing_number: str, account_number: str) -> str:
    return hmac.new(key, f"{routing_number}:{account_number}".encode(), hashlib.sha256).hexdigest()


def bank_fingerprint(key: bytes, routing_number: str, account_number: str) -> str:
    return _hmac(key, normalised_routing_number(routing_number), normalised_account_number(account_number))


def known_fingerprints(key: bytes, routing_number: str, account_number: str) -> list[str]:
    """The fingerprint and those rows stored before normalisation may hold for the same account."""
    routing = normalised_routing_number(routing_number)
    current = bank_fingerprint(key, routing_number, account_number)
    legacy = [_hmac(key, routing, spelling) for spelling in zero_padded_spellings(account_number)]
    return [current, *(f for f in legacy if f != current)]


def debit_request_digest(
    key: bytes,
    *,
    amount_cents: int,
    currency: str,
    routing_number: str,
    account_number: str,
    account_type: str,
) -> str:
    """What makes two debit requests the same request (SPEC §9): a processor key is reused only when
    this matches. Keyed, so the row never holds something an account number can be guessed from;
    of the numbers exactly as sent, because the processor compares the bodies it receives."""
    message = f"debit:{amount_cents}:{currency}:{routing_number}:{account_number}:{account_type}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


async def is_blocked(
    pool: asyncpg.Pool | asyncpg.Connection, fingerprint: str | list[str]
) -> asyncpg.Record | None:
    fingerprints = [fingerprint] if isinstance(fingerprint, str) else fingerprint
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT return_code, account_last4, blocked_at FROM blocked_bank_accounts"
        " WHERE fingerprint = ANY($1::text[]) LIMIT 1",
        fingerprints,
    )
    return row


async def is_validated(pool: asyncpg.Pool | asyncpg.Connection, fingerprint: str) -> bool:
    found = await pool.fetchval("SELECT 1 FROM validated_bank_accounts WHERE fingerprint = $1", fingerprint)
    return found is not None


async def remember_validated(
    pool: asyncpg.Pool | asyncpg.Connection, fingerprint: str, validation_id: str
) -> None:
    await pool.execute(
        "INSERT INTO validated_bank_accounts (fingerprint, validation_id) VALUES ($1, $2)"
        " ON CONFLICT (fingerprint) DO NOTHING",
        fingerprint,
        validation_id,
    )


# Notices of change whose correction is to the routing or account number (C01 account, C02 routing,
# C03 both, C06 account and transaction code, C07 all three): the numbers as the customer knows them
# are out of date. The others (a transaction code, a name, an id) change nothing the customer types:
# refusing their numbers would leave no way to pay, so those are for staff only.
NUMBER_CHANGE_CODES = ("C01", "C02", "C03", "C06", "C07")


async def needs_new_details(pool: asyncpg.Pool | asyncpg.Connection, fingerprint: str) -> bool:
    """A notice of change corrected this account's numbers (SPEC §13): its next debit waits for new ones."""
    found = await pool.fetchval(
        "SELECT 1 FROM ach_notices WHERE bank_fingerprint = $1 AND resolved_at IS NULL"
        " AND change_code = ANY($2::text[]) LIMIT 1",
        fingerprint,
        list(NUMBER_CHANGE_CODES),
    )
    return found is not None
