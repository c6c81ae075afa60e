"""The web shell is tested through the whole app: the site's app fixtures, shared."""

import socket
from typing import Any

import pytest

from tests.site.conftest import app, client, demo_app, demo_data_dir, make_app

__all__ = ["app", "client", "demo_app", "demo_data_dir", "make_app", "socket_writes"]


@pytest.fixture
def socket_writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write the server makes through a socket's file (cheroot's writer), in order."""
    sent: list[bytes] = []
    real_write = socket.SocketIO.write

    def write(self: socket.SocketIO, data: Any) -> int | None:
        sent.append(bytes(data))
        return real_write(self, data)

    monkeypatch.setattr(socket.SocketIO, "write", write)
    return sent
