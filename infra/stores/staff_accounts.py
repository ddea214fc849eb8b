"""Staff accounts and failed sign-ins (SPEC §10). SQL only; hashing is `infra.staff_passwords`."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

import asyncpg

Db: TypeAlias = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class StaffUser:
    id: int
    email: str
    name: str
    password_hash: str
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def _user(row: asyncpg.Record) -> StaffUser:
    return StaffUser(row["id"], row["email"], row["name"], row["password_hash"], row["disabled_at"])


def normalise_email(email: str) -> str:
    return email.strip().lower()


async def find_staff_user(db: Db, email: str) -> StaffUser | None:
    row = await db.fetchrow(
        "SELECT id, email, name, password_hash, disabled_at FROM staff_users WHERE email = $1",
        normalise_email(email),
    )
    return _user(row) if row is not None else None


async def add_staff_user(db: Db, email: str, name: str, password_hash: str) -> StaffUser | None:
    """A new account, or None when the email is taken."""
    row = await db.fetchrow(
        "INSERT INTO staff_users (email, name, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (email) DO NOTHING RETURNING id, email, name, password_hash, disabled_at",
        normalise_email(email),
        name,
        password_hash,
    )
    return _user(row) if row is not None else None


async def set_password(db: Db, user_id: int, password_hash: str) -> None:
    await db.execute(
        "UPDATE staff_users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, password_hash
    )


async def disable_staff_user(conn: asyncpg.Connection, email: str) -> StaffUser | None:
    """Disable the account and end its sessions at once; None if there is no such account."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE staff_users SET disabled_at = COALESCE(disabled_at, now()), updated_at = now()"
            " WHERE email = $1 RETURNING id, email, name, password_hash, disabled_at",
            normalise_email(email),
        )
        if row is None:
            return None
        await conn.execute(
            "UPDATE staff_sessions SET ended_at = now() WHERE staff_user_id = $1 AND ended_at IS NULL",
            row["id"],
        )
    return _user(row)


@dataclass(frozen=True)
class SignInFailures:
    by_account: int
    by_address: int
    oldest_counted: datetime | None  # when the window frees a slot


async def count_sign_in_failures(db: Db, email: str, ip: str, window: timedelta) -> SignInFailures:
    row = await db.fetchrow(
        "SELECT"
        " count(*) FILTER (WHERE email = $1) AS by_account,"
        " count(*) FILTER (WHERE ip = $2) AS by_address,"
        " min(occurred_at) AS oldest"
        " FROM staff_sign_in_failures"
        " WHERE (email = $1 OR ip = $2) AND occurred_at > now() - $3::interval",
        normalise_email(email),
        ip,
        window,
    )
    return SignInFailures(row["by_account"], row["by_address"], row["oldest"])


async def record_sign_in_failure(db: Db, email: str, ip: str) -> None:
    await db.execute(
        "INSERT INTO staff_sign_in_failures (email, ip) VALUES ($1, $2)", normalise_email(email)[:320], ip
    )


async def clear_account_failures(db: Db, email: str) -> None:
    """A correct password forgives the account's earlier typos (the address keeps its count)."""
    await db.execute("DELETE FROM staff_sign_in_failures WHERE email = $1", normalise_email(email))
