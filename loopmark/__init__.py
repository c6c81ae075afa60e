"""Loopmark: a branded GIF micro-site. The import package owns the site, renderer and admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__version__ = "0.1.0"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The web app factory (imported on call, so ``import loopmark`` stays cheap)."""
    from loopmark.app import create_app as app_create_app

    return app_create_app(config)
