"""The web shell is tested through the whole app: the site's app fixtures, shared."""

from tests.site.conftest import app, client, make_app

__all__ = ["app", "client", "make_app"]
