"""The one rule for ids in staff URLs (SPEC §11): printable and bounded. Anything else is a 422
before any query runs, never a 500 (a NUL would otherwise reach PostgreSQL and fail there)."""

from typing import Annotated

from fastapi import Path as PathParam

PathId = Annotated[str, PathParam(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
