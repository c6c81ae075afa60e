"""The small public files browsers and crawlers ask for at fixed root paths: /robots.txt,
/sitemap.xml, /manifest.webmanifest, /favicon.ico and /apple-touch-icon.png. The manifest's
names and colours are the brand's (brand.toml).

Icons are images in static/img drawn by tools/make_icons.py from the favicon's shapes. The
sitemap lists the public pages only: share pages (one per render) stay out and carry
``noindex``; result pages are the creator's own.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from flask import Blueprint, Response, current_app, url_for
from flask.typing import ResponseReturnValue

from loopmark.web import links
from loopmark.web.assets import asset_path, asset_url
from loopmark.web.context import services

blueprint = Blueprint("public_files", __name__)

# Minutes, not a year: these sit at fixed URLs that cannot carry a fingerprint.
ROOT_FILE_CACHE_CONTROL = "public, max-age=3600"
SITEMAP_PAGES = ("pages.home", "pages.gallery", "pages.credits", "brand.privacy", "brand.terms")
# Crawlers may read every public page; the admin, the API and downloads are not for them.
# Share pages stay crawlable so that their noindex is seen (a disallowed page can still be
# listed by its URL alone).
ROBOTS_DISALLOW = ("/admin", "/api", "/graphql", "/d/", "/m/")
MANIFEST_ICONS = (
    ("img/icon-192.png", "192x192", "any"),
    ("img/icon-512.png", "512x512", "any"),
    ("img/icon-maskable-512.png", "512x512", "maskable"),
)


@blueprint.get("/robots.txt")
def robots() -> ResponseReturnValue:
    lines = ["User-agent: *", "Allow: /"]
    lines += [f"Disallow: {path}" for path in ROBOTS_DISALLOW]
    lines += ["", f"Sitemap: {links.absolute(url_for('public_files.sitemap'))}", ""]
    return _cached(Response("\n".join(lines), mimetype="text/plain"))


@blueprint.get("/sitemap.xml")
def sitemap() -> ResponseReturnValue:
    brand = services().settings.brand
    # A privacy or terms page kept on the brand's own site is not one of ours to list.
    kept_elsewhere = {
        "brand.privacy": brand.privacy.url is not None,
        "brand.terms": brand.terms.url is not None,
    }
    urls = "".join(
        f"  <url><loc>{escape(links.absolute(url_for(endpoint)))}</loc></url>\n"
        for endpoint in SITEMAP_PAGES
        if not kept_elsewhere.get(endpoint)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    )
    return _cached(Response(body, mimetype="application/xml"))


@blueprint.get("/manifest.webmanifest")
def manifest() -> ResponseReturnValue:
    brand = services().settings.brand
    body = {
        "name": brand.share.site_title,
        "short_name": brand.name,
        "description": brand.share.site_description,
        "start_url": url_for("pages.home"),
        "scope": "/",
        "display": "standalone",
        "theme_color": brand.colours.primary,
        "background_color": brand.colours.background,
        "icons": [
            {"src": asset_url(name), "sizes": sizes, "type": "image/png", "purpose": purpose}
            for name, sizes, purpose in MANIFEST_ICONS
        ],
    }
    text = current_app.json.dumps(body)
    return _cached(Response(text, mimetype="application/manifest+json"))


@blueprint.get("/favicon.ico")
def favicon() -> ResponseReturnValue:
    return _static_file("img/favicon.ico", "image/vnd.microsoft.icon")


@blueprint.get("/apple-touch-icon.png")
@blueprint.get("/apple-touch-icon-precomposed.png")
def apple_touch_icon() -> ResponseReturnValue:
    return _static_file("img/apple-touch-icon.png", "image/png")


def _static_file(filename: str, mimetype: str) -> ResponseReturnValue:
    path = asset_path(filename)
    if path is None:  # a package built without its images: say so, never a 500
        return Response("not found\n", status=404, mimetype="text/plain")
    return _cached(Response(path.read_bytes(), mimetype=mimetype))


def _cached(response: Response) -> Response:
    response.headers["Cache-Control"] = ROOT_FILE_CACHE_CONTROL
    return response
