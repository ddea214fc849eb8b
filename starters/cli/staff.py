"""`portalpay staff add|disable`: staff console accounts (SPEC §10).

`add` reads the password from stdin when one is piped in (`echo … | portalpay staff add …`);
otherwise it generates one and prints it once. Only the Argon2 hash is stored.
"""

import sys

import typer

from domain.contact_details import ContactDetailError, clean_email, has_control_characters
from infra.resources import ExpectedFailure, open_pool
from infra.stores import staff_accounts as accounts
from starters.cli.plumbing import console, run_async, settings_or_exit

staff_app = typer.Typer(help="Staff console accounts.", no_args_is_help=True)


def _checked_email(email: str) -> str:
    try:
        cleaned = clean_email(email)
    except ContactDetailError as exc:
        raise ExpectedFailure(exc.message) from None
    if cleaned is None:
        raise ExpectedFailure("an email is required")
    return cleaned.lower()


def _password_from_stdin() -> str | None:
    if sys.stdin is None or sys.stdin.isatty():
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    return line or None


@staff_app.command("add")
def add(
    email: str = typer.Argument(..., help="The staff member's email; they sign in with it."),
    name: str = typer.Option(..., "--name", help="Full name, shown in the console."),
) -> None:
    """Create a staff account. Password from stdin, or generated and printed once."""
    settings = settings_or_exit()

    # argon2 loads here, not at the top: every other command (the worker's start) skips it.
    from infra.staff_passwords import generate_password, hash_password, password_problem

    @run_async
    async def go() -> None:
        address = _checked_email(email)
        clean_name = name.strip()
        if not clean_name or len(clean_name) > 120 or has_control_characters(clean_name):
            raise ExpectedFailure("--name must be 1-120 printable characters")
        password = _password_from_stdin()
        generated = password is None
        if password is None:
            password = generate_password()
        problem = password_problem(password)
        if problem:
            raise ExpectedFailure(problem)
        async with open_pool(settings) as pool:
            user = await accounts.add_staff_user(pool, address, clean_name, hash_password(password))
        if user is None:
            raise ExpectedFailure(f"a staff account for {address} already exists")
        console.print(f"staff account created: {address} ({clean_name})")
        if generated:
            print(f"password (shown once): {password}", flush=True)

    go()


@staff_app.command("disable")
def disable(
    email: str = typer.Argument(..., help="The account to disable; its sessions end at once."),
) -> None:
    """Disable a staff account and end its sessions."""
    settings = settings_or_exit()

    @run_async
    async def go() -> None:
        address = _checked_email(email)
        async with open_pool(settings) as pool, pool.acquire() as conn:
            user = await accounts.disable_staff_user(conn, address)
        if user is None:
            raise ExpectedFailure(f"no staff account for {address}")
        console.print(f"staff account disabled, sessions ended: {address}")

    go()
