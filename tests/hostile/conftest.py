"""The hostile suite reuses the portal fixtures: the real app, worker, dev server and PostgreSQL."""

from tests.portal.conftest import portal, portal_factory

__all__ = ["portal", "portal_factory"]
