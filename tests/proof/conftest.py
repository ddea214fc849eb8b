"""Proof tests use the portal fixtures (real worker, PostgreSQL, Temporal dev server)."""

from tests.portal.conftest import portal, portal_factory  # noqa: F401  (fixtures)
