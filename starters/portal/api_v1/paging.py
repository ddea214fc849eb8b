"""Lists on /api/v1 (SPEC §12): `{"data": [...], "has_more": bool}`, `limit` 1-100 (default 20),
`starting_after=<id of the last object seen>`.

Paging is by keyset, never by offset: an object written while a client pages does not shift the
pages, so each object is visited once.
"""

from collections.abc import Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

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
