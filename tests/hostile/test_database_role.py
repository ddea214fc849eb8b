"""SPEC §11: the app connects as a role that does not own `audit_events` and may only INSERT and
SELECT there; migrations run as the owner. Tried with the app's own pool, as an insider holding
the app's credentials would."""

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.support import Harness

REFUSED = [
    "UPDATE audit_events SET actor = 'attacker' WHERE id = (SELECT max(id) FROM audit_events)",
    "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)",
    "TRUNCATE audit_events",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update",
    "DROP TRIGGER audit_events_no_update ON audit_events",
    "ALTER TABLE audit_events DROP COLUMN hash",
    "DROP TABLE audit_events",
    "DELETE FROM payments",
    "CREATE TABLE shadow_audit (id int)",
]


async def test_the_app_role_does_not_own_the_audit_trail(harness: Harness) -> None:
    assert harness.app_pool is not None
    me, owner = await harness.app_pool.fetchrow(
        "SELECT current_user, tableowner FROM pg_tables WHERE tablename = 'audit_events'"
    )
    assert me == "portalpay_app" and owner != me
    rights = await harness.app_pool.fetchrow(
        "SELECT has_table_privilege('audit_events', 'SELECT') AS s, has_table_privilege('audit_events', 'INSERT') AS i,"
        " has_table_privilege('audit_events', 'UPDATE') AS u, has_table_privilege('audit_events', 'DELETE') AS d,"
        " has_table_privilege('audit_events', 'TRUNCATE') AS t"
    )
    assert dict(rights) == {"s": True, "i": True, "u": False, "d": False, "t": False}


@pytest.mark.parametrize("statement", REFUSED, ids=lambda s: " ".join(s.split()[:3]))
async def test_the_app_role_is_refused(harness: Harness, statement: str) -> None:
    assert harness.app_pool is not None
    async with harness.app_pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
        finally:
            await transaction.rollback()


async def test_the_app_role_appends_and_reads(harness: Harness) -> None:
    assert harness.app_pool is not None
    key = f"role-check-{uuid.uuid4().hex}"
    await harness.app_pool.execute(
        "INSERT INTO audit_events (event_key, chain_id, event_type, actor, occurred_at, prev_hash, hash)"
        " VALUES ($1, $2, 'ROLE_CHECK', 'pytest', $3, '', '')",
        key,
        f"role-check:{key}",
        datetime.now(UTC),
    )
    assert await harness.app_pool.fetchval("SELECT count(*) FROM audit_events WHERE event_key = $1", key) == 1
