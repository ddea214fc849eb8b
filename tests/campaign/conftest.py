"""The attack promises' tests run the real attacks on the portal fixtures (app, worker, dev server, PostgreSQL)."""

from tests.portal.conftest import portal, portal_factory

__all__ = ["portal", "portal_factory"]
