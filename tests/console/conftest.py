"""The staff console's tests use the portal fixtures (real worker, PostgreSQL, Temporal)."""

from tests.portal.conftest import portal, portal_factory  # noqa: F401  (fixtures)
