"""`portalpay staff add|disable` and the dev stack's staff@example.com, against the test database."""

import asyncio
import re
import uuid

import asyncpg
import pytest
from typer.testing import CliRunner, Result

from infra.staff_passwords import verify_password
from infra.stores.staff_accounts import find_staff_user
from starters.cli.app import app
from starters.cli.dev_stack import DEV_STAFF_EMAIL, ensure_dev_staff
from tests.console.support import console_client, sign_in
from tests.portal.conftest import Portal


@pytest.fixture
def cli_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)


async def cli(args: list[str], input: str | None = None) -> Result:
    """The command in a thread: it runs its own event loop, as it does from a terminal."""
    return await asyncio.to_thread(CliRunner().invoke, app, args, input=input)


def fresh_email() -> str:
    return f"cli-{uuid.uuid4().hex[:10]}@example.com"


async def test_add_reads_the_password_from_stdin_and_stores_only_a_hash(
    cli_env: None, db_pool: asyncpg.Pool
) -> None:
    email = fresh_email()
    result = await cli(
        ["staff", "add", email.upper(), "--name", "Maria Gomez"], input="a long passphrase 42\n"
    )
    assert result.exit_code == 0, result.output
    assert "a long passphrase 42" not in result.output and "password" not in result.output
    user = await find_staff_user(db_pool, email)
    assert user is not None and user.name == "Maria Gomez" and user.email == email
    assert user.password_hash.startswith("$argon2id$") and verify_password(
        user.password_hash, "a long passphrase 42"
    )


async def test_add_generates_and_prints_a_password_once_and_refuses_duplicates(
    cli_env: None, db_pool: asyncpg.Pool
) -> None:
    email = fresh_email()
    result = await cli(["staff", "add", email, "--name", "Sam"])
    assert result.exit_code == 0, result.output
    match = re.search(r"password \(shown once\): (\S+)", result.output)
    assert match, result.output
    user = await find_staff_user(db_pool, email)
    assert user is not None and verify_password(user.password_hash, match.group(1))

    again = await cli(["staff", "add", email, "--name", "Sam"])
    assert again.exit_code == 1 and "already exists" in again.output and "Traceback" not in again.output
    for bad_args, message in (
        (["staff", "add", "not-an-email", "--name", "X"], "email address"),
        (["staff", "add", fresh_email(), "--name", "X"], "at least 12"),
    ):
        bad = await cli(bad_args, input="short\n")
        assert bad.exit_code == 1 and message in bad.output, bad.output


async def test_disable_ends_sessions_and_refuses_sign_in(cli_env: None, portal: Portal) -> None:
    email = fresh_email()
    result = await cli(["staff", "add", email, "--name", "Lee"], input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    async with console_client(portal.app) as http:
        r = await sign_in(http, email, "correct horse battery")
        assert r.status_code == 303
        assert (await http.get("/staff")).status_code == 200
        result = await cli(["staff", "disable", email])
        assert result.exit_code == 0 and "disabled" in result.output
        assert (await http.get("/staff")).status_code == 303
        r = await sign_in(http, email, "correct horse battery")
        assert r.status_code == 401
    missing = await cli(["staff", "disable", fresh_email()])
    assert missing.exit_code == 1 and "no staff account" in missing.output


async def test_the_dev_stack_staff_account_gets_a_fresh_working_password_each_start(portal: Portal) -> None:
    first = await ensure_dev_staff(portal.pool)
    second = await ensure_dev_staff(portal.pool)  # a restart: same account, new password
    assert first != second
    user = await find_staff_user(portal.pool, DEV_STAFF_EMAIL)
    assert user is not None and verify_password(user.password_hash, second)
    assert not verify_password(user.password_hash, first)
    async with console_client(portal.app) as http:
        assert (await sign_in(http, DEV_STAFF_EMAIL, second)).status_code == 303
