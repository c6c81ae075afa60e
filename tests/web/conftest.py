"""The web shell is tested through the whole app: the site's app fixtures, shared."""

from tests.site.conftest import app, client, demo_app, demo_data_dir, make_app

__all__ = ["app", "client", "demo_app", "demo_data_dir", "make_app"]
