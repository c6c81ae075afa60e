"""Links the site hands out: a render's media URLs, template previews, and absolute URLs.

Media URLs written into pages must stay valid as long as a cache may keep the page, so a signed
(short-lived) storage URL is never one of them: with private storage the page links the short
link ``/m/<key>.<ext>``, which redirects to a freshly signed URL when it is fetched.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import current_app, request, url_for

from loopmark.errors import LoopmarkError
from loopmark.renderer.prepare import prepared_folder_name
from loopmark.renderer.render import KEY_CHARS
from loopmark.renderer.templates import Template
from loopmark.web.context import services

log = logging.getLogger(__name__)

KEY_RE = re.compile(rf"[a-z2-7]{{{KEY_CHARS}}}")
# A render's media kinds and the extension of each one's short link.
SHORT_EXTENSIONS = {
    "gif": "gif",
    "mp4": "mp4",
    "poster": "jpg",
    "card": "card.jpg",
    "thumbnail": "thumb.jpg",
}
TEMPLATE_FILES = {"preview": "preview.mp4", "poster": "poster.jpg"}
_ORIGINS_KEY = "loopmark.media_origins"
_UPLOAD_ORIGINS_KEY = "loopmark.upload_origins"


def well_formed_key(key: str) -> bool:
    """Whether ``key`` has the shape of a render key (24 lowercase base32 characters)."""
    return KEY_RE.fullmatch(key) is not None


def media_urls(key: str) -> dict[str, str]:
    """URLs of a render's ``gif``, ``mp4`` and ``poster``: public storage URLs when storage is
    local or behind LOOPMARK_MEDIA_BASE_URL, else the /m/ short links. Needs no lookup."""
    if not well_formed_key(key):
        raise ValueError(f"not a render key: {key[:40]!r}")
    render = services().render
    if render.media_urls_are_public:
        return render.media_urls(key)
    return {
        kind: url_for("media.short", key=key, ext=ext) for kind, ext in SHORT_EXTENSIONS.items()
    }


def template_version(template: Template) -> str:
    """The version segment of a template's file URLs: the template version and the preparation
    code's version, since either changes the bytes of the preview and poster."""
    return prepared_folder_name(template.version)


def template_urls(template: Template) -> dict[str, str]:
    """Immutable URLs of a template's ``preview`` loop (MP4) and ``poster`` (JPEG)."""
    version = template_version(template)
    return {
        kind: url_for("media.template_file", template_id=template.id, version=version, name=name)
        for kind, name in TEMPLATE_FILES.items()
    }


def absolute(url: str) -> str:
    """``url`` made absolute (for Open Graph tags and share links): LOOPMARK_SITE_URL when set,
    else the request's scheme and host. Absolute URLs are returned unchanged."""
    if url.startswith(("https://", "http://")):
        return url
    return site_origin() + ("" if url.startswith("/") else "/") + url


def site_origin() -> str:
    """The origin absolute URLs start with: LOOPMARK_SITE_URL, else the request's (debug)."""
    return str(current_app.config.get("SITE_URL") or request.host_url.rstrip("/"))


def media_origins() -> list[str]:
    """Origins other than the site's own that media load from (for the CSP): the media base
    URL's, or the storage's signed-URL origin. Worked out once per app."""
    cached: list[str] | None = current_app.extensions.get(_ORIGINS_KEY)
    if cached is not None:
        return cached
    try:
        sample = services().render.media_urls("a" * KEY_CHARS)["gif"]
    except LoopmarkError as exc:
        # No credentials to sign with: media are then limited to 'self' (logged once).
        log.warning("cannot work out the media origin for the CSP: %s", exc)
        sample = ""
    parts = urlsplit(sample)
    origins = [f"{parts.scheme}://{parts.netloc}"] if parts.scheme in ("http", "https") else []
    current_app.extensions[_ORIGINS_KEY] = origins
    return origins


def upload_origins() -> list[str]:
    """Origins other than the site's own that browsers post visitors' clips to (for the CSP's
    ``connect-src``): the storage's direct-upload origin (an S3 bucket's presigned POST) when
    uploads are on, else none. Worked out once per app."""
    cached: list[str] | None = current_app.extensions.get(_UPLOAD_ORIGINS_KEY)
    if cached is not None:
        return cached
    origins: list[str] = []
    if services().settings.uploads:
        try:
            origin = services().uploads.direct_upload_origin()
        except LoopmarkError as exc:
            # No credentials to sign with: uploads then fail anyway (logged once).
            log.warning("cannot work out the upload origin for the CSP: %s", exc)
            origin = None
        if origin is not None:
            origins.append(origin)
    current_app.extensions[_UPLOAD_ORIGINS_KEY] = origins
    return origins
