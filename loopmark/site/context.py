"""The services a request reaches, owned by the app (``app.extensions["loopmark"]``)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from loopmark.config import Settings
from loopmark.service.factory import build_render_service
from loopmark.service.render_service import RenderService

EXTENSION = "loopmark"


@dataclass
class SiteServices:
    settings: Settings
    render: RenderService

    @classmethod
    def build(cls, settings: Settings) -> SiteServices:
        return cls(settings=settings, render=build_render_service(settings))

    def close(self) -> None:
        """Stop the render pool and close the records (server shutdown, tests)."""
        self.render.dispatcher.close()
        self.render.records.close()


def services() -> SiteServices:
    """The current app's services (inside a request or app context)."""
    return current_app.extensions[EXTENSION]
