"""The `loopmark` command line: a contract that scripts rely on (see DESIGN.md).

Exit status 0 on success, 2 with one line on bad input, 1 with one line when a tool or backend
fails. No traceback reaches the user unless LOOPMARK_DEBUG is set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from loopmark.config import Settings
from loopmark.errors import BadInput, LoopmarkError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see --help)\n")


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def cmd_templates_list(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.renderer.templates import iter_template_ids, load_templates

    if args.ids:
        print("\n".join(iter_template_ids(settings.templates_dir)))
        return EXIT_OK
    templates = load_templates(settings.templates_dir)
    if args.json:
        _print_json(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "width": t.width,
                    "fps": t.fps,
                    "seconds": t.duration_s,
                    "loop": t.loop,
                    "caption_mode": t.caption_mode,
                    "captions": list(t.captions),
                    "enabled": t.enabled,  # kept: scripts read it (the --json output is a contract)
                    "state": "published" if t.enabled else "draft",  # the admin's words
                    "version": t.version,
                    "credit": t.credit,
                }
                for t in templates
            ]
        )
        return EXIT_OK
    if not templates:
        print(f"no templates in {settings.templates_dir}")
    for t in templates:
        state = "" if t.enabled else "  (draft)"  # the admin's word: hidden until published
        print(f"{t.id:<20} {t.name:<24} {t.width}px {t.fps}fps {t.duration_s:g}s {t.loop}{state}")
    return EXIT_OK


def cmd_templates_add(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.renderer.authoring import NewTemplate, add_template

    spec = NewTemplate(
        template_id=args.id,
        video=Path(args.video),
        start_s=args.start,
        duration_s=args.duration,
        width=args.width,
        fps=args.fps,
        frame=Path(args.frame) if args.frame else None,
        name=args.name,
    )
    prepared = add_template(spec, settings.templates_dir, settings.prepared_dir)
    print(
        f"added {args.id}: {prepared.width}x{prepared.height}, {prepared.frame_count} frames "
        f"at {prepared.fps} fps, text box {prepared.box.w}x{prepared.box.h}"
    )
    return EXIT_OK


def cmd_templates_push(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.composition import open_templates_storage
    from loopmark.service.catalog import push_templates

    catalog, blobs = open_templates_storage(settings)
    for template in push_templates(catalog, blobs, args.ids or None):
        print(f"pushed {template.id} version {template.version} to {settings.storage_url}")
    return EXIT_OK


def cmd_templates_prepare(args: argparse.Namespace, settings: Settings) -> int:
    """Prepare templates into LOOPMARK_PREPARED_DIR (an image does this at build time)."""
    import time

    from loopmark.renderer.prepare import is_prepared, prepare_template, prepared_version_folder
    from loopmark.renderer.templates import iter_template_ids, load_template

    # Every id is checked before anything is prepared: a typo fails at once, not minutes in.
    templates = [
        load_template(settings.templates_dir, template_id)
        for template_id in args.ids or iter_template_ids(settings.templates_dir)
    ]
    for template in templates:
        started = time.perf_counter()
        cached = is_prepared(prepared_version_folder(template, settings.prepared_dir))
        prepared = prepare_template(template, settings.prepared_dir)
        how = "already prepared" if cached else f"prepared in {time.perf_counter() - started:.1f} s"
        print(
            f"{template.id} {template.version}: {prepared.frame_count} frames "
            f"{prepared.width}x{prepared.height}, {how}: {prepared.folder}"
        )
    return EXIT_OK


def cmd_render(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from loopmark.renderer.prepare import prepare_template
    from loopmark.renderer.render import render
    from loopmark.renderer.templates import load_template

    template = load_template(
        settings.templates_dir, args.id, default_max_gif_bytes=settings.brand.max_gif_bytes
    )
    prepared = prepare_template(
        template, settings.prepared_dir, spill_dir=settings.prepared_spill_dir
    )
    started = time.perf_counter()
    result = render(prepared, args.caption)
    elapsed = time.perf_counter() - started
    default_path = settings.data_dir / "renders" / f"{result.key}.gif"
    gif_path = Path(args.output) if args.output else default_path
    paths = {
        "gif": gif_path,
        "mp4": gif_path.with_suffix(".mp4"),
        "poster": gif_path.with_suffix(".jpg"),
    }
    gif_path.parent.mkdir(parents=True, exist_ok=True)
    for kind, data in (("gif", result.gif), ("mp4", result.mp4), ("poster", result.poster)):
        paths[kind].write_bytes(data)
    summary = {
        "key": result.key,
        **{kind: str(path) for kind, path in paths.items()},
        "bytes": len(result.gif),
        "frames": result.frames,
        "width": result.width,
        "height": result.height,
        "seconds": result.seconds,
        "render_seconds": round(elapsed, 3),
    }
    if result.budget is not None:  # what the GIF size budget did (its width is the GIF's)
        summary["budget"] = result.budget.to_json()
    if args.json:
        _print_json(summary)
    else:
        # The GIF's own frames and size: a GIF stepped down to its budget has fewer or smaller.
        gif = result.budget if result.budget is not None else result
        print(
            f"{gif_path} ({len(result.gif):,} bytes, {gif.frames} frames, "
            f"{gif.width}x{gif.height}) rendered in {elapsed:.2f} s; key {result.key}"
        )
        if result.budget is not None and result.budget.stepped:
            budget = result.budget
            kept = "every frame" if budget.frame_step == 1 else f"1 frame in {budget.frame_step}"
            print(
                f"stepped down to its budget of {budget.max_bytes:,} bytes "
                f"({budget.full_bytes:,} in full): {kept}, {budget.width}x{budget.height}"
                + ("" if budget.fits else "; still over at the smallest step")
            )
    return EXIT_OK


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark import create_app
    from loopmark.composition import setup_backends
    from loopmark.service.backup import serving
    from loopmark.web.server import serve

    # The embedded defaults (a SQLite file, a media folder) need no separate setup step; setup
    # also re-applies take-downs kept in storage that the records lost (a restored database).
    with serving(settings.records_url):  # `loopmark restore` refuses while this is held
        setup_backends(settings)
        serve(create_app(), args.host, args.port)
    return EXIT_OK


def cmd_takedown(args: argparse.Namespace, settings: Settings) -> int:
    import getpass

    from loopmark.composition import build_services
    from loopmark.errors import BadInput
    from loopmark.service.blocklist import check_render_key

    key = check_render_key(args.key.strip().lower())
    reason = " ".join(args.reason.split())
    if not reason or len(reason) > 200 or not reason.isprintable():
        raise BadInput("--reason must be 1 to 200 printable characters")
    services = build_services(settings, with_dispatcher=False)
    try:
        existed = services.render.record(key) is not None
        services.render.take_down(key, reason=f"{reason} (by {getpass.getuser()}, command line)")
        try:
            in_gallery = services.gallery.remove(key)
        except BadInput:
            in_gallery = False
    finally:
        services.close()
    what = "" if existed else " (no render had this key yet: it can never be made)"
    gallery = ", removed from the gallery" if in_gallery else ""
    print(f"taken down {key}: blocked, media deleted, CDN purge asked{gallery}{what}")
    return EXIT_OK


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.service.backup import backup, database_path
    from loopmark.storage import open_blob_store

    database_path(settings.records_url)  # DynamoDB: one line on PITR, before anything else
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    print(backup(settings.records_url, blobs, Path(args.dir)).line("backed up"))
    return EXIT_OK


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.composition import setup_backends
    from loopmark.service.backup import DATABASE_FILE, database_path, restore
    from loopmark.storage import open_blob_store

    database_path(settings.records_url)
    if not (Path(args.dir) / DATABASE_FILE).is_file():
        raise BadInput(f"no backup in {args.dir}: {DATABASE_FILE} is missing")
    blobs = open_blob_store(settings.storage_url, media_base_url=settings.media_base_url)
    summary = restore(settings.records_url, blobs, Path(args.dir), force=args.force)
    # Migrations for an older snapshot, and every take-down kept in storage applied again.
    blocklist = setup_backends(settings)[-1]
    print(f"{summary.line('restored')}; {blocklist}")
    return EXIT_OK


def cmd_setup(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.composition import setup_backends

    for line in setup_backends(settings):
        print(f"ready: {line}")
    return EXIT_OK


def cmd_admin_create_user(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.admin.commands import run_create_user
    from loopmark.composition import build_admin_users

    users = build_admin_users(settings)
    try:
        print(run_create_user(args.name, users))
    finally:
        users.close()
    return EXIT_OK


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.composition import run_gc
    from loopmark.errors import BadInput

    days = settings.retention_days if args.days is None else args.days
    if days < 1:
        raise BadInput("--days must be at least 1")
    print(run_gc(settings, days=days, dry_run=args.dry_run).line(days))
    return EXIT_OK


def cmd_admin_unlock(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.composition import build_admin_users, build_login_limits
    from loopmark.service.users import check_name

    name = args.name.strip().lower()
    check_name(name)
    users = build_admin_users(settings)
    try:
        # The counts live in the records, so this reaches every running server at once.
        forgotten = build_login_limits(settings, users).unlock(name)
    finally:
        users.close()
    print(f"unlocked {name}: {forgotten} failed logins forgotten, with their addresses' counts")
    return EXIT_OK


def cmd_lambda_local(args: argparse.Namespace, settings: Settings) -> int:
    from loopmark.dispatch.lambda_local import serve

    serve(args.host, args.port, args.handler_path)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="loopmark", description="Branded GIF micro-site.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    templates = commands.add_parser("templates", help="list, add, prepare or push templates")
    template_commands = templates.add_subparsers(dest="templates_command", required=True)
    listing = template_commands.add_parser("list", help="list templates")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.add_argument("--ids", action="store_true", help="print template ids only")
    listing.set_defaults(handler=cmd_templates_list)
    add = template_commands.add_parser("add", help="create a template from a video")
    add.add_argument("id", help="template id: lowercase letters, digits, dashes")
    add.add_argument("--video", required=True, help="source video (mp4, mov, webm, mkv, gif)")
    add.add_argument("--start", type=float, default=0.0, help="trim start in seconds")
    add.add_argument("--duration", type=float, default=None, help="seconds to use (≤ 10)")
    add.add_argument("--width", type=int, default=480, help="output width in pixels (≤ 480)")
    add.add_argument("--fps", type=int, default=12, help="output frames per second (≤ 15)")
    add.add_argument("--frame", help="branding frame: a PNG with alpha")
    add.add_argument("--name", help="display name")
    add.set_defaults(handler=cmd_templates_add)
    push = template_commands.add_parser(
        "push", help="upload templates and their prepared artifacts to the configured storage"
    )
    push.add_argument("ids", nargs="*", help="template ids (default: all)")
    push.set_defaults(handler=cmd_templates_push)

    prepare = template_commands.add_parser(
        "prepare", help="prepare templates now (decode, palette, ...) into LOOPMARK_PREPARED_DIR"
    )
    prepare.add_argument("ids", nargs="*", help="template ids (default: all)")
    prepare.set_defaults(handler=cmd_templates_prepare)

    render = commands.add_parser("render", help="render a caption on a template")
    render.add_argument("id", help="template id")
    render.add_argument("caption", help="caption text")
    render.add_argument("-o", "--output", help="where to write the GIF (MP4 and JPEG beside it)")
    render.add_argument("--json", action="store_true", help="print JSON")
    render.set_defaults(handler=cmd_render)

    serve = commands.add_parser("serve", help="serve the site (cheroot)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)

    setup = commands.add_parser("setup", help="create what the configured backends need")
    setup.set_defaults(handler=cmd_setup)

    takedown = commands.add_parser(
        "takedown", help="take a render down for ever: block its key, delete its media, purge"
    )
    takedown.add_argument("key", help="the render key (24 of a-z, 2-7), as in /s/<key>")
    takedown.add_argument("--reason", default="taken down", help="why (kept with the block)")
    takedown.set_defaults(handler=cmd_takedown)

    backup = commands.add_parser(
        "backup", help="a consistent copy of the SQLite records and the take-downs into DIR"
    )
    backup.add_argument("dir", help="folder for loopmark.db, blocked/ and backup.json")
    backup.set_defaults(handler=cmd_backup)

    restore = commands.add_parser(
        "restore", help="put a backup back (take-downs made since stay in force)"
    )
    restore.add_argument("dir", help="a folder written by `loopmark backup`")
    restore.add_argument(
        "--force", action="store_true", help="restore even though a server is running on it"
    )
    restore.set_defaults(handler=cmd_restore)

    admin = commands.add_parser("admin", help="manage the back-office")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    create_user = admin_commands.add_parser(
        "create-user", help="create an admin (or set a new password); reads the password"
    )
    create_user.add_argument("name", help="1 to 40 of a-z, 0-9, '.', '_', '-'")
    create_user.set_defaults(handler=cmd_admin_create_user)
    unlock = admin_commands.add_parser(
        "unlock", help="forget the failed logins holding a user (and their addresses) back"
    )
    unlock.add_argument("name", help="the admin user's name")
    unlock.set_defaults(handler=cmd_admin_unlock)

    gc = commands.add_parser(
        "gc", help="delete media nobody asked for lately, failed records, temporary files"
    )
    gc.add_argument(
        "--days", type=int, default=None, help="retention (default LOOPMARK_RETENTION_DAYS, 90)"
    )
    gc.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    gc.set_defaults(handler=cmd_gc)

    lambda_local = commands.add_parser("lambda-local", help="serve Lambda's Invoke API locally")
    lambda_local.add_argument("--host", default="127.0.0.1")
    lambda_local.add_argument("--port", type=int, default=9001)
    lambda_local.add_argument(
        "--handler",
        dest="handler_path",
        default="loopmark.lambda_entry:handle",
        help="module:function",
    )
    lambda_local.set_defaults(handler=cmd_lambda_local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except BadInput as exc:  # a malformed setting or brand file: one line, never a traceback
        print(f"loopmark: {exc.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except BadInput as exc:
        print(f"loopmark: {exc.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LoopmarkError as exc:
        print(f"loopmark: {exc.reason}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if settings.debug:
            raise
        print(f"loopmark: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
