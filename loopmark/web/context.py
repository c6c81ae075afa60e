"""The services a request reaches: built by the composition root, held by the app
(``app.extensions["loopmark"]``) and reached by every view through :func:`services`."""

from __future__ import annotations

from typing import cast

from flask import Flask, current_app

from loopmark.composition import Services

EXTENSION = "loopmark"


def init_app(app: Flask, services: Services) -> None:
    app.extensions[EXTENSION] = services


def services(app: Flask | None = None) -> Services:
    """The app's services (``app``, or the current app inside a request or app context)."""
    return cast(Services, (app or current_app).extensions[EXTENSION])
