"""The app object itself (``loopmark.app``): what it does differently from a plain Flask."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import flask.app
import pytest

from loopmark import app as app_module
from tests.site.conftest import make_app

__all__ = ["make_app"]


def test_each_view_and_hook_is_checked_for_a_coroutine_once(
    make_app: Callable[..., flask.Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[Callable[..., Any]] = []

    def counting(func: Callable[..., Any]) -> bool:
        checked.append(func)
        return inspect.iscoroutinefunction(func)

    monkeypatch.setattr(flask.app, "iscoroutinefunction", counting)
    app = make_app()
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    first = len(checked)
    assert first > 3  # the view and the request hooks
    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    assert len(checked) == first  # Flask alone asks again on every request
    assert len(set(checked)) == first


def test_the_checks_kept_are_bounded(
    make_app: Callable[..., flask.Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_module, "SYNC_CHECKS_KEPT", 2)
    app = make_app()
    made = [lambda n=n: n for n in range(5)]
    assert [app.ensure_sync(f)() for f in made] == list(range(5))  # each still answered
    assert len(app._sync) == 2  # type: ignore[attr-defined]


async def _coroutine() -> str:
    return "awaited"


def test_a_coroutine_view_still_goes_to_flask_to_be_wrapped(
    make_app: Callable[..., flask.Flask],
) -> None:
    # Flask wraps it with asgiref, which the app does not install: it says so, as before.
    with pytest.raises(RuntimeError, match="async"):
        make_app().ensure_sync(_coroutine)
