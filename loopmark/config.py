"""Settings: every environment variable Loopmark reads, read here and only here, when asked for
(never at import time). A value that does not parse is a ConfigInvalid with one line that names
the variable, so a misconfigured deploy stops at start-up.

Any ``LOOPMARK_*`` value written ``ssm:/path/to/parameter`` is read from AWS Systems Manager
Parameter Store at start (decrypted: SecureString secrets such as LOOPMARK_SECRET_KEY), once per
process: the environment names where a secret lives, never the secret.
"""

from __future__ import annotations

import ipaddress
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from loopmark.brand import Brand, demo_brand, load_brand, normal_handle, valid_slug
from loopmark.errors import ConfigInvalid

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

MIN_SECRET_KEY_CHARS = 32
SSM_PREFIX = "ssm:"
# GetParameters takes at most this many names per call.
SSM_BATCH = 10
_ssm_cache: dict[str, str] = {}
_ssm_lock = threading.Lock()
_TRUE = frozenset({"1", "true", "yes", "on"})
# Loopback and private networks: a load balancer or reverse proxy beside the site.
DEFAULT_TRUSTED_PROXIES = (
    "127.0.0.0/8",
    "::1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
_FALSE = frozenset({"0", "off"})
# The server's hard bound on any request body (web/server.py) holds the biggest upload.
UPLOAD_MAX_BYTES_CEILING = 120 * 1024 * 1024
# A clip's template trims at most this much (renderer.templates.SOURCE_USED_SECONDS).
UPLOAD_MAX_SECONDS_CEILING = 10.0


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    templates_dir: Path
    # Prepared artifacts per template version (LOOPMARK_PREPARED_DIR). It may be read-only (an
    # image carries them): a complete version is only read, and a missing one is prepared under
    # prepared_spill_dir when this folder cannot be written.
    prepared_dir: Path
    storage_url: str
    records_url: str
    dispatch_url: str
    media_base_url: str | None
    debug: bool
    render_concurrency: int | None = None  # None: one render per CPU
    queue_size: int = 200
    lease_seconds: float = 10.0  # renewed by a heartbeat; a dead worker is noticed within it
    cdn_purge_url: str | None = None  # cloudfront://DISTRIBUTION_ID: purge taken-down media
    templates_source: str = "dir"  # "dir": LOOPMARK_TEMPLATES_DIR; "storage": pushed templates
    # The web app's own settings.
    site_url: str | None = None  # the public origin for absolute links; required outside debug
    secret_key: str | None = None  # signs admin sessions; required outside debug
    # The secret header a CDN adds to what it forwards; requests without it are refused.
    origin_verify: str | None = None
    proxy_hops: int = 0  # reverse proxies whose X-Forwarded-* headers are trusted
    # Peers whose X-Forwarded-* are believed (addresses, networks, or "*"): private networks.
    trusted_proxies: tuple[str, ...] = DEFAULT_TRUSTED_PROXIES
    rate_limits: bool = True
    render_rate_limit: str = "30/minute;300/hour"  # per client IP, Flask-Limiter's syntax
    caption_rate_limit: str = "120/minute;2000/hour"
    login_rate_limit: str = "5/minute;30/hour"  # failed admin logins per (name, address) pair
    login_address_rate_limit: str = "20/minute;100/hour"  # failed admin logins per address
    retention_days: int = 90  # `loopmark gc`: media nobody asked for in this long are deleted
    render_hold_slots: int = 8  # POSTs that may hold for a quick render at once
    # Event mode: the limits above are per visitor (a signed token the page asks for), and one
    # address (a venue's Wi-Fi) may use this many visitors' worth; renders admitted site-wide.
    address_limit_factor: int = 20
    render_admission: str = "600/minute"
    min_free_disk_mb: int = 500  # /healthz answers 503 below this much free space in data_dir
    json_logs: bool = True
    gallery_refresh_seconds: float = 1800.0
    gallery_version_check_seconds: float = 5.0
    # SIGTERM: how long running renders may take to finish before they are handed back.
    shutdown_grace_seconds: float = 20.0
    # Circuit breakers (records, storage): failures among the last calls that open one (when
    # they are half of them at least, see service.breaker), and for how long before a probe.
    breaker_failures: int = 5
    breaker_cooldown_seconds: int = 2
    # The brand (LOOPMARK_BRAND_FILE, else the demo brand shipped in loopmark/brand), with
    # LOOPMARK_BRAND_SLUG and LOOPMARK_TWITTER_SITE applied over its slug and handle.
    brand: Brand = field(default_factory=demo_brand)

    @property
    def twitter_site(self) -> str:
        """The brand's X account, for share cards' twitter:site."""
        return self.brand.handle

    @property
    def brand_slug(self) -> str:
        """Download names: <brand_slug>-<render key>.gif."""
        return self.brand.slug

    # Visitor uploads (issue 13): on by default; the biggest file, the longest clip taken from
    # it, whether uploaded files are kept after processing, and their limits.
    uploads: bool = True
    upload_max_bytes: int = 50 * 1024 * 1024
    upload_max_seconds: float = 6.0
    keep_uploads: bool = False
    upload_rate_limit: str = "10/minute;60/hour"  # per visitor (an address: the factor's worth)
    upload_admission: str = "120/minute"  # uploads accepted site-wide
    # Upload renders queued or running at once (None: half the render concurrency, at least 1),
    # so uploads never take every worker from template renders.
    upload_jobs: int | None = None
    # The template whose caption style clips get, and frame when the brand has no default frame
    # (None: the first enabled one).
    upload_style_template: str | None = None
    # Uploads not yet processed (stored, or announced and on their way) may hold this many bytes
    # in all; beyond it POST /api/uploads is 503 with Retry-After (a full disk hurts everyone).
    upload_incoming_max_bytes: int = 1024 * 1024 * 1024

    @property
    def template_cache_dir(self) -> Path:
        """Where a renderer keeps templates downloaded from storage (LOOPMARK_TEMPLATES_SOURCE)."""
        return self.data_dir / "template-cache"

    @property
    def prepared_spill_dir(self) -> Path:
        """Where versions missing from a read-only prepared_dir are prepared (or downloaded)."""
        return self.data_dir / "prepared"

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, overrides: Mapping[str, str] | None = None
    ) -> Settings:
        """From ``env`` (the process environment by default), ``overrides`` taking precedence
        (``create_app``'s LOOPMARK_* config keys)."""
        base = os.environ if env is None else env
        env = resolve_parameters({**base, **overrides} if overrides else base)
        data_dir = Path(env.get("LOOPMARK_DATA_DIR", "./var"))
        return cls(
            data_dir=data_dir,
            templates_dir=Path(env.get("LOOPMARK_TEMPLATES_DIR", "./templates_video")),
            prepared_dir=Path(env.get("LOOPMARK_PREPARED_DIR") or data_dir / "prepared"),
            storage_url=env.get("LOOPMARK_STORAGE", f"file://{data_dir / 'media'}"),
            records_url=env.get("LOOPMARK_RECORDS", f"sqlite:///{data_dir / 'loopmark.db'}"),
            dispatch_url=env.get("LOOPMARK_DISPATCH", "local"),
            media_base_url=env.get("LOOPMARK_MEDIA_BASE_URL") or None,
            debug=env.get("LOOPMARK_DEBUG", "").lower() in _TRUE,
            render_concurrency=_positive_int(env, "LOOPMARK_RENDER_CONCURRENCY", None),
            queue_size=_positive_int(env, "LOOPMARK_QUEUE_SIZE", 200) or 200,
            lease_seconds=float(_positive_int(env, "LOOPMARK_LEASE_SECONDS", 10) or 10),
            cdn_purge_url=env.get("LOOPMARK_CDN_PURGE") or None,
            templates_source=_choice(env, "LOOPMARK_TEMPLATES_SOURCE", ("dir", "storage")),
            site_url=_site_url(env.get("LOOPMARK_SITE_URL") or ""),
            secret_key=_secret_key(env.get("LOOPMARK_SECRET_KEY") or ""),
            origin_verify=env.get("LOOPMARK_ORIGIN_VERIFY") or None,
            proxy_hops=_whole(env, "LOOPMARK_PROXY_HOPS", 0),
            trusted_proxies=_networks(env, "LOOPMARK_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES),
            rate_limits=env.get("LOOPMARK_RATE_LIMITS", "on").lower() not in _FALSE,
            render_rate_limit=env.get("LOOPMARK_RATE_LIMIT_RENDERS") or cls.render_rate_limit,
            caption_rate_limit=env.get("LOOPMARK_RATE_LIMIT_CAPTIONS") or cls.caption_rate_limit,
            login_rate_limit=env.get("LOOPMARK_RATE_LIMIT_LOGIN") or cls.login_rate_limit,
            login_address_rate_limit=env.get("LOOPMARK_RATE_LIMIT_LOGIN_ADDRESS")
            or cls.login_address_rate_limit,
            retention_days=_positive_int(env, "LOOPMARK_RETENTION_DAYS", 90) or 90,
            render_hold_slots=_whole(env, "LOOPMARK_RENDER_HOLD_SLOTS", 8),
            address_limit_factor=_positive_int(env, "LOOPMARK_RATE_LIMIT_ADDRESS_FACTOR", 20) or 20,
            render_admission=env.get("LOOPMARK_RENDER_ADMISSION") or cls.render_admission,
            min_free_disk_mb=_whole(env, "LOOPMARK_MIN_FREE_DISK_MB", 500),
            json_logs=env.get("LOOPMARK_JSON_LOGS", "on").lower() not in _FALSE,
            gallery_refresh_seconds=_seconds(
                env, "LOOPMARK_GALLERY_REFRESH_SECONDS", cls.gallery_refresh_seconds
            ),
            gallery_version_check_seconds=_seconds(
                env, "LOOPMARK_GALLERY_VERSION_CHECK_SECONDS", cls.gallery_version_check_seconds
            ),
            shutdown_grace_seconds=_seconds(
                env, "LOOPMARK_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds
            ),
            breaker_failures=_positive_int(env, "LOOPMARK_BREAKER_FAILURES", 5) or 5,
            breaker_cooldown_seconds=(
                _positive_int(env, "LOOPMARK_BREAKER_COOLDOWN_SECONDS", 2) or 2
            ),
            brand=_brand(env),
            uploads=env.get("LOOPMARK_UPLOADS", "on").lower() not in _FALSE,
            upload_max_bytes=_bounded_int(
                env, "LOOPMARK_UPLOAD_MAX_BYTES", cls.upload_max_bytes, UPLOAD_MAX_BYTES_CEILING
            ),
            upload_max_seconds=_upload_seconds(env),
            keep_uploads=env.get("LOOPMARK_KEEP_UPLOADS", "").lower() in _TRUE,
            upload_rate_limit=env.get("LOOPMARK_RATE_LIMIT_UPLOADS") or cls.upload_rate_limit,
            upload_admission=env.get("LOOPMARK_UPLOAD_ADMISSION") or cls.upload_admission,
            upload_jobs=_positive_int(env, "LOOPMARK_UPLOAD_JOBS", None),
            upload_style_template=env.get("LOOPMARK_UPLOAD_STYLE_TEMPLATE") or None,
            upload_incoming_max_bytes=_incoming_bytes(env),
        )


def _bounded_int(env: Mapping[str, str], name: str, default: int, ceiling: int) -> int:
    value = _positive_int(env, name, default) or default
    if value > ceiling:
        raise ConfigInvalid(f"{name} must be at most {ceiling}")
    return value


def _incoming_bytes(env: Mapping[str, str]) -> int:
    """LOOPMARK_UPLOAD_INCOMING_MAX_BYTES: room for unprocessed uploads, at least one upload."""
    name = "LOOPMARK_UPLOAD_INCOMING_MAX_BYTES"
    value = _positive_int(env, name, None) or Settings.upload_incoming_max_bytes
    largest = _bounded_int(
        env, "LOOPMARK_UPLOAD_MAX_BYTES", Settings.upload_max_bytes, UPLOAD_MAX_BYTES_CEILING
    )
    if value < largest:
        raise ConfigInvalid(f"{name} must be at least LOOPMARK_UPLOAD_MAX_BYTES ({largest})")
    return value


def _upload_seconds(env: Mapping[str, str]) -> float:
    """LOOPMARK_UPLOAD_MAX_SECONDS: the longest clip taken from an upload (0.5–10 s)."""
    value = _seconds(env, "LOOPMARK_UPLOAD_MAX_SECONDS", Settings.upload_max_seconds)
    if not 0.5 <= value <= UPLOAD_MAX_SECONDS_CEILING:
        raise ConfigInvalid(
            f"LOOPMARK_UPLOAD_MAX_SECONDS must be from 0.5 to {UPLOAD_MAX_SECONDS_CEILING:g}"
        )
    return value


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or choices[0]
    if value not in choices:
        raise ConfigInvalid(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


def _positive_int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigInvalid(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise ConfigInvalid(f"{name} must be at least 1")
    return value


def _whole(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or str(default)
    if not raw.isdigit():
        raise ConfigInvalid(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def _networks(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """Comma-separated addresses or networks ("10.0.0.0/8, 192.0.2.7"), or "*"."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    entries = tuple(entry.strip() for entry in raw.split(",") if entry.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ConfigInvalid(
                f"{name} must list addresses or networks (10.0.0.0/8) or be *, not {entry!r}"
            ) from None
    return entries


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """Seconds, at least 0 (0: on every access)."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigInvalid(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= 0 or math.isinf(value):  # also refuses NaN
        raise ConfigInvalid(f"{name} must be a finite number of seconds, at least 0")
    return value


def _brand(env: Mapping[str, str]) -> Brand:
    """LOOPMARK_BRAND_FILE's brand (the demo brand without it), validated, with the older
    LOOPMARK_BRAND_SLUG and LOOPMARK_TWITTER_SITE overriding its slug and handle."""
    path = env.get("LOOPMARK_BRAND_FILE") or ""
    brand = load_brand(Path(path)) if path else demo_brand()
    slug = env.get("LOOPMARK_BRAND_SLUG") or ""
    if slug:
        if not valid_slug(slug):
            raise ConfigInvalid(
                f"LOOPMARK_BRAND_SLUG must be lowercase letters, digits and hyphens, not {slug!r}"
            )
        brand = replace(brand, slug=slug)
    raw_handle = env.get("LOOPMARK_TWITTER_SITE") or ""
    if raw_handle:
        handle = normal_handle(raw_handle)
        if handle is None:
            raise ConfigInvalid(
                f"LOOPMARK_TWITTER_SITE must be an X handle like @hopandco, not {raw_handle!r}"
            )
        brand = replace(brand, handle=handle)
    return brand


def _site_url(raw: str) -> str | None:
    if not raw:
        return None
    if not raw.startswith(("https://", "http://")):
        raise ConfigInvalid(f"LOOPMARK_SITE_URL must start with https:// or http://, got {raw!r}")
    return raw.rstrip("/")


def _secret_key(raw: str) -> str | None:
    if raw and len(raw) < MIN_SECRET_KEY_CHARS:
        raise ConfigInvalid(
            f"LOOPMARK_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return raw or None


def resolve_parameters(env: Mapping[str, str]) -> Mapping[str, str]:
    """``env`` with every ``LOOPMARK_*`` value ``ssm:/name`` replaced by that parameter's value
    (decrypted), read once per process and name. ConfigInvalid, naming the variable, when a
    parameter is missing or cannot be read."""
    wanted = {
        name: value[len(SSM_PREFIX) :]
        for name, value in env.items()
        if name.startswith("LOOPMARK_") and value.startswith(SSM_PREFIX)
    }
    if not wanted:
        return env
    with _ssm_lock:
        missing = sorted({path for path in wanted.values() if path not in _ssm_cache})
        if missing:
            _ssm_cache.update(_read_parameters(missing, wanted))
    return {**env, **{name: _ssm_cache[path] for name, path in wanted.items()}}


def _read_parameters(paths: list[str], wanted: Mapping[str, str]) -> dict[str, str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    def variable(path: str) -> str:
        return next(name for name, wanted_path in wanted.items() if wanted_path == path)

    client: SSMClient = boto3.session.Session().client("ssm")
    values: dict[str, str] = {}
    for start in range(0, len(paths), SSM_BATCH):
        batch = paths[start : start + SSM_BATCH]
        try:
            answer = client.get_parameters(Names=batch, WithDecryption=True)
        except (BotoCoreError, ClientError) as exc:
            raise ConfigInvalid(
                f"{variable(batch[0])}: cannot read {SSM_PREFIX}{batch[0]} from SSM Parameter "
                f"Store ({exc})"
            ) from None
        for parameter in answer.get("Parameters", []):
            values[parameter["Name"]] = parameter["Value"]
        for path in answer.get("InvalidParameters", []):
            raise ConfigInvalid(
                f"{variable(path)}: the SSM parameter {path} does not exist (or may not be read)"
            )
    return values
