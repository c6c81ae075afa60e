"""The public site: pages, the JSON API, media and short links, GraphQL, health and metrics, as
blueprints on the shared web shell (``loopmark.web``)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the site's blueprints (imported here: importing the package does no work)."""
    from loopmark.site import (
        api,
        brand_pages,
        graphql,
        health,
        media,
        page_cache,
        pages,
        public_files,
        reports,
        uploads,
    )

    for module in (api, pages, media, health, public_files, brand_pages, reports):
        app.register_blueprint(module.blueprint)
    page_cache.init_app(app)
    graphql.init_app(app)
    uploads.init_app(app)
