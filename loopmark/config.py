"""Settings from environment variables, read when asked for (never at import time)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from loopmark.errors import ConfigInvalid


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    templates_dir: Path
    storage_url: str
    records_url: str
    dispatch_url: str
    media_base_url: str | None
    debug: bool
    render_concurrency: int | None = None  # None: one render per CPU
    queue_size: int = 200
    lease_seconds: float = 90.0
    cdn_purge_url: str | None = None  # cloudfront://DISTRIBUTION_ID: purge taken-down media
    templates_source: str = "dir"  # "dir": LOOPMARK_TEMPLATES_DIR; "storage": pushed templates

    @property
    def template_cache_dir(self) -> Path:
        """Where a renderer keeps templates downloaded from storage (LOOPMARK_TEMPLATES_SOURCE)."""
        return self.data_dir / "template-cache"

    @property
    def prepared_dir(self) -> Path:
        """Where per-template-version artifacts (frames, palette) are cached."""
        return self.data_dir / "prepared"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("LOOPMARK_DATA_DIR", "./var"))
        return cls(
            data_dir=data_dir,
            templates_dir=Path(env.get("LOOPMARK_TEMPLATES_DIR", "./templates_video")),
            storage_url=env.get("LOOPMARK_STORAGE", f"file://{data_dir / 'media'}"),
            records_url=env.get("LOOPMARK_RECORDS", f"sqlite:///{data_dir / 'loopmark.db'}"),
            dispatch_url=env.get("LOOPMARK_DISPATCH", "local"),
            media_base_url=env.get("LOOPMARK_MEDIA_BASE_URL") or None,
            debug=env.get("LOOPMARK_DEBUG", "").lower() in {"1", "true", "yes", "on"},
            render_concurrency=_positive_int(env, "LOOPMARK_RENDER_CONCURRENCY", None),
            queue_size=_positive_int(env, "LOOPMARK_QUEUE_SIZE", 200) or 200,
            lease_seconds=float(_positive_int(env, "LOOPMARK_LEASE_SECONDS", 90) or 90),
            cdn_purge_url=env.get("LOOPMARK_CDN_PURGE") or None,
            templates_source=_choice(env, "LOOPMARK_TEMPLATES_SOURCE", ("dir", "storage")),
        )


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
