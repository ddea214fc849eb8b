"""Looking through every text, json and bytea column of every table for values that must not be there.

Used by tests/hostile/test_database_scan.py (one run's account numbers and codes) and by the
session check in tests/conftest.py (every full account number the run sent to the processor).
"""

from dataclasses import dataclass

import asyncpg

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY")
# The sandbox processor service's own ledger (SPEC §9: a service of its own, standing in for the
# bank's processor) and the dev outbox (dev only: the console provider's messages, codes included).
NOT_OURS = ("sandbox_", "dev_outbox")


@dataclass(frozen=True)
class Column:
    table: str
    column: str
    data_type: str


@dataclass(frozen=True)
class Hit:
    table: str
    column: str
    needle: str

    def __str__(self) -> str:
        return f"{self.table}.{self.column} holds {self.needle[:2]}…{self.needle[-2:]}"


async def scanned_columns(pool: asyncpg.Pool, *, skip: tuple[str, ...] = NOT_OURS) -> list[Column]:
    rows = await pool.fetch(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c"
        " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.data_type = ANY($1::text[])"
        " ORDER BY c.table_name, c.ordinal_position",
        list(TEXT_TYPES),
    )
    return [
        Column(r["table_name"], r["column_name"], r["data_type"])
        for r in rows
        if not r["table_name"].startswith(skip)
    ]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def find_in_database(
    pool: asyncpg.Pool, needles: set[str], *, skip: tuple[str, ...] = NOT_OURS, standalone: bool = False
) -> list[Hit]:
    """Every (table, column, needle) where a row holds the needle.

    `standalone`: only where the needle is not part of a longer run of letters or digits, nor
    after a '.' or ':' (a timestamp's fraction): for short needles such as six-digit codes, so a
    hash, an id or a timestamp that happens to contain the digits is not taken for one.
    """
    if not needles:
        return []
    hits: list[Hit] = []
    for col in await scanned_columns(pool, skip=skip):
        table, column = _quoted(col.table), _quoted(col.column)
        if col.data_type == "bytea":
            # Byte for byte (the needle's UTF-8), whatever else the bytes hold.
            held = f"position(convert_to(n, 'UTF8') in {column}) > 0"
        elif standalone:
            held = f"{column}::text ~ ('(^|[^0-9A-Za-z.:])' || n || '($|[^0-9A-Za-z])')"
        else:
            held = f"strpos({column}::text, n) > 0"
        sql = f"SELECT n FROM unnest($1::text[]) AS n WHERE EXISTS (SELECT 1 FROM {table} WHERE {held})"
        for row in await pool.fetch(sql, sorted(needles)):
            hits.append(Hit(col.table, col.column, row["n"]))
    return hits
