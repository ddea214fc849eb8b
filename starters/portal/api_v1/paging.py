"""Lists on /api/v1 (SPEC §12): `{"data": [...], "has_more": bool}`, `limit` 1-100 (default 20),
`starting_after=<id of the last object seen>`.

Paging is by keyset, never by offset: an object written while a client pages does not shift the
pages, so each object is visited once.
"""

from collections.abc import Sequence
from typing import Annotated, Generic, Literal, TypeVar

import asyncpg
from fastapi import Query
from pydantic import BaseModel

from starters.portal.api_v1.errors import ApiError

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100, description="How many objects, 1-100")]
StartingAfter = Annotated[
    str | None,
    Query(
        min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$", description="The id of the last object seen"
    ),
]
DEFAULT_LIMIT = 20


class Page(BaseModel, Generic[T]):
    data: list[T]
    has_more: bool


def page_of(items: Sequence[T], limit: int) -> Page[T]:
    """`items` fetched with LIMIT limit + 1: the extra one only says there is more."""
    return Page[T](data=list(items[:limit]), has_more=len(items) > limit)


# Lists keyed by (created_at, id): the table and the noun its refusal names.
_KEYSET_TABLES = {"invoices": "invoice", "payments": "payment"}


async def keyset_after(
    pool: asyncpg.Pool, table: Literal["invoices", "payments"], starting_after: str | None
) -> asyncpg.Record | None:
    """The (created_at, id) to page after; None for the first page, 422 for an id nobody knows."""
    if starting_after is None:
        return None
    after: asyncpg.Record | None = await pool.fetchrow(
        f"SELECT created_at, id FROM {table} WHERE id = $1", starting_after
    )
    if after is None:
        noun = _KEYSET_TABLES[table]
        raise ApiError(422, "InvalidInput", f"starting_after names no {noun}.", param="starting_after")
    return after
