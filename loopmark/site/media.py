"""Media routes: local media files, short links to signed media, and template previews.

- ``/media/<key>``: a render's files from local storage (content-addressed, so immutable);
  only for the local adapter, and only keys under ``r/`` with a media extension. A taken-down
  render's files answer 410 even if they exist (restored with a copy of the media, say).
- ``/m/<key>.<ext>``: a stable link for pages when storage is private; it checks the render is
  done (so a takedown also takes the link down) and redirects to a freshly signed URL.

- ``/d/<key>.<gif|mp4>``: a download (the result page's buttons): the file as an attachment
  named ``<brand slug>-<key>.<ext>``, served here with local storage, or a redirect to a URL
  signed with that disposition (S3): browsers ignore ``download=`` across origins (a CDN).

All three check the block twice: the render's record, and the blocklist kept in storage beside the
media (``service.blocklist``), which still holds when the records were restored without it.
- ``/templates/<id>/<version>/<name>``: a template's preview loop and poster, prepared on first
  use; the version is in the path, so they are immutable too.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from flask import Blueprint, abort, redirect, send_file
from werkzeug.wrappers import Response

from loopmark.errors import LoopmarkError, UnknownTemplate
from loopmark.records.renders import RenderRecord, RenderStatus
from loopmark.renderer.prepare import PREPARE_VERSION, prepared_folder_name
from loopmark.renderer.render import KEY_CHARS
from loopmark.service.render_service import WARM_UP_RETRY_SECONDS, TemplateNotReady, media_keys
from loopmark.storage.base import IMMUTABLE_CACHE_CONTROL, attachment_disposition
from loopmark.web import links
from loopmark.web.context import services

log = logging.getLogger(__name__)

blueprint = Blueprint("media", __name__)

IMMUTABLE_SECONDS = 31536000
MEDIA_MIMETYPES = {"gif": "image/gif", "mp4": "video/mp4", "jpg": "image/jpeg"}
SHORT_KINDS = {ext: kind for kind, ext in links.SHORT_EXTENSIONS.items()}
# A redirect to a signed URL must not outlive the signature (storage.s3.SIGNED_URL_SECONDS);
# a redirect to a public URL may be kept longer, but not so long that a takedown lingers.
SIGNED_REDIRECT_CACHE_CONTROL = "private, max-age=60"
PUBLIC_REDIRECT_CACHE_CONTROL = "public, max-age=300"
RENDER_MEDIA_PREFIX = "r/"
# r/<first two characters>/<render key>/<file>
_RENDER_MEDIA_RE = re.compile(r"r/[a-z2-7]{2}/([a-z2-7]+)/[a-z0-9._-]+")
_VERSION_RE = re.compile(r"([0-9a-f]{16})(?:-p([1-9][0-9]{0,3}))?")


@blueprint.get("/media/<path:key>")
def media_file(key: str) -> Response:
    mimetype = MEDIA_MIMETYPES.get(key.rpartition(".")[2])
    if mimetype is None or not key.startswith(RENDER_MEDIA_PREFIX):
        abort(404)
    match = _RENDER_MEDIA_RE.fullmatch(key)
    if match is None or not links.well_formed_key(match[1]):
        abort(404)
    if taken_down(match[1]):
        abort(410)
    path = services().render.local_media_file(key)
    if path is None:  # not local storage, or no such file
        abort(404)
    return _immutable_file(path, mimetype)


# The key's length is fixed so that ``<key>.card.jpg`` (the share card) is not read as a key
# ``<key>.card`` with ``jpg``.
SHORT_EXTENSION_RULE = "any(gif, mp4, jpg, 'card.jpg', 'thumb.jpg')"


@blueprint.get(f"/m/<string(length={KEY_CHARS}):key>.<{SHORT_EXTENSION_RULE}:ext>")
def short(key: str, ext: str) -> Response:
    _require_stored(key, SHORT_KINDS[ext])
    render = services().render
    response = redirect(render.media_urls(key)[SHORT_KINDS[ext]], code=302)
    response.headers["Cache-Control"] = (
        PUBLIC_REDIRECT_CACHE_CONTROL
        if render.media_urls_are_public
        else SIGNED_REDIRECT_CACHE_CONTROL
    )
    return response


@blueprint.get("/d/<key>.<any(gif, mp4):ext>")
def download(key: str, ext: str) -> Response:
    """The render's GIF or MP4 as a file to save, named after the brand and the key."""
    _require_stored(key, ext)
    filename = f"{services().settings.brand.slug}-{key}.{ext}"
    render = services().render
    signed = render.download_url(key, ext, filename)
    if signed is not None:
        response = redirect(signed, code=302)
        response.headers["Cache-Control"] = SIGNED_REDIRECT_CACHE_CONTROL
        return response
    path = render.local_media_file(media_keys(key)[ext])
    if path is None:  # done, yet the file is gone: nothing to save
        abort(404)
    response = send_file(path, mimetype=MEDIA_MIMETYPES[ext], conditional=True)
    response.headers["Content-Disposition"] = attachment_disposition(filename)
    # Not immutable like /media/: a take-down must reach a cached download within minutes.
    response.headers["Cache-Control"] = PUBLIC_REDIRECT_CACHE_CONTROL
    return response


@blueprint.get("/templates/<template_id>/<version>/<any('preview.mp4', 'poster.jpg'):name>")
def template_file(template_id: str, version: str, name: str) -> Response:
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        abort(404)
    # A version without "-p" (older pages) names the current preparation code.
    template_version, prepare_version = match[1], match[2] or str(PREPARE_VERSION)
    catalog = services().templates
    try:
        template = catalog.get(template_id)
    except UnknownTemplate:
        abort(404)
    if catalog.warming(template):  # the start is preparing it: never hold a thread for that
        raise TemplateNotReady(
            "This loop is still getting ready.", retry_after_s=WARM_UP_RETRY_SECONDS
        )
    path = catalog.prepared_file(
        template, prepared_folder_name(template_version, int(prepare_version)), name
    )
    return _immutable_file(path, MEDIA_MIMETYPES[name.rpartition(".")[2]])


def _require_stored(key: str, kind: str) -> None:
    """Abort unless render ``key``'s ``kind`` file is stored (a done render, or one under way
    whose GIF landed before its MP4): 404 for a malformed, unknown or unfinished key, 410 for a
    taken-down one (blocklist first, then the record). Counts the hit."""
    if not links.well_formed_key(key):
        abort(404)
    if key in services().blocklist:
        abort(410)
    record = services().render.record(key)
    if record is None or record.status == RenderStatus.BLOCKED:
        abort(404 if record is None else 410)
    landed = record.status == RenderStatus.RENDERING and kind in (record.media or {})
    if record.status != RenderStatus.DONE and not landed:
        abort(404)
    services().hits.seen(key)


def taken_down(key: str, record: RenderRecord | None = None) -> bool:
    """Whether render ``key`` was taken down: in the blocklist kept in storage, or in its record
    (``record`` when the caller has it already, else read; records that are down count as not
    blocked here, the blocklist having answered first)."""
    if key in services().blocklist:
        return True
    if record is None:
        try:
            record = services().render.record(key)
        except LoopmarkError as exc:
            log.warning("media %s: records unavailable, blocklist only: %s", key, exc)
            return False
    return record is not None and record.status == RenderStatus.BLOCKED


def _immutable_file(path: Path, mimetype: str) -> Response:
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=mimetype, conditional=True, max_age=IMMUTABLE_SECONDS)
    response.headers["Cache-Control"] = IMMUTABLE_CACHE_CONTROL
    return response
