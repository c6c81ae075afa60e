"""A stalled DynamoDB endpoint, end to end through the real server (cheroot on loopback).

DynamoDB is moto behind a TCP proxy that can freeze: frozen, it takes requests and answers
nothing, as a hung endpoint does. With the records frozen, cache-hit requests answer 503 with
Retry-After (the first ones after the short read timeouts, the rest at once from the open
circuit breaker, without reaching DynamoDB), while static files and share pages keep answering
on the same 16 threads; once DynamoDB answers again, the next cache hit after the cool-down is a
200. Before this, one cache hit took 20 s and thirty of them filled every thread for 45 s.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from loopmark.app import create_app
from loopmark.composition import Services, setup_backends
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.record_cache import KEEP_SECONDS
from loopmark.web.server import DEFAULT_THREADS, create_server
from tests.site.conftest import site_config, site_services

STUCK_REQUESTS = 24  # more than the server's threads
COOLDOWN_SECONDS = 5
CLIENT_TIMEOUT_SECONDS = 30.0  # a bound on every request: a hang fails the test, never blocks it
RENDER_DONE_SECONDS = 120.0
# Generous bounds on a shared machine; before the breaker these took 15-45 s.
FIRST_WAVE_SECONDS = 8.0  # generous: test_frozen_records.py holds every answer to 2 s
OPEN_ANSWER_SECONDS = 2.0  # what the issue asks of a stalled backend


class FreezableProxy:
    """A TCP proxy on loopback to ``upstream``. Frozen, it reads requests and relays nothing."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.flowing = threading.Event()
        self.flowing.set()
        self.requests = 0  # DynamoDB API requests seen (each carries X-Amz-Target)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self._closed = True
        self.flowing.set()
        self.listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.upstream, timeout=CLIENT_TIMEOUT_SECONDS)
            except OSError:
                return
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                if requests:
                    with self._lock:
                        self.requests += data.lower().count(b"x-amz-target:")
                self.flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                sock.close()


def fetch(url: str, payload: dict[str, Any] | None = None) -> tuple[int, float, str | None]:
    """(status, seconds, Retry-After) of one request."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=CLIENT_TIMEOUT_SECONDS) as response:
            response.read()
            status, retry_after = response.status, response.headers.get("Retry-After")
    except urllib.error.HTTPError as exc:
        status, retry_after = exc.code, exc.headers.get("Retry-After")
    return status, time.monotonic() - started, retry_after


@contextlib.contextmanager
def serving(app: Flask) -> Iterator[tuple[str, Services]]:
    """``app`` on the real server (port 0), its backends set up: its base URL and services.
    Stopped, and its services closed, after."""
    services = site_services(app)
    setup_backends(services.settings)
    server = create_server(app, "127.0.0.1", 0)
    runner = threading.Thread(target=server.run, daemon=True)
    runner.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}", services
    finally:
        server.close()
        runner.join(CLIENT_TIMEOUT_SECONDS)
        services.close()


def wait_rendered(base: str, hit: dict[str, Any]) -> None:
    """Ask for ``hit``'s render until it is done (200)."""
    deadline = time.monotonic() + RENDER_DONE_SECONDS
    while fetch(f"{base}/api/renders", hit)[0] != 200:
        assert time.monotonic() < deadline, "the render never finished"
        time.sleep(0.1)


@pytest.fixture
def proxy(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FreezableProxy]:
    host, port = aws.removeprefix("http://").split(":")
    proxy = FreezableProxy((host, int(port)))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    yield proxy
    proxy.close()


def test_a_stalled_dynamodb_gives_prompt_503s_and_the_rest_keeps_answering(
    proxy: FreezableProxy, tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> None:
    app = create_app(
        site_config(
            tmp_path,
            workdir,
            LOOPMARK_RECORDS="dynamodb://fail-fast",
            LOOPMARK_RENDER_CONCURRENCY="1",
            LOOPMARK_RATE_LIMITS="off",
            LOOPMARK_BREAKER_COOLDOWN_SECONDS=str(COOLDOWN_SECONDS),
        )
    )
    assert DEFAULT_THREADS < STUCK_REQUESTS
    hit = {"template": small.template.id, "caption": "frozen backends"}
    with serving(app) as (base, services):
        try:
            wait_rendered(base, hit)
            key = services.render.recent(limit=1)[0].key
            assert fetch(f"{base}/s/{key}")[0] == 200
            # The done record just read is kept that long (the records not asked).
            time.sleep(KEEP_SECONDS)

            proxy.freeze()
            with ThreadPoolExecutor(STUCK_REQUESTS + 2) as pool:
                stuck = [
                    pool.submit(fetch, f"{base}/api/renders", hit) for _ in range(STUCK_REQUESTS)
                ]
                time.sleep(0.2)  # every thread is now waiting on DynamoDB
                css = pool.submit(fetch, f"{base}/static/css/site.css")
                first_wave = [future.result() for future in stuck]
                css_status, css_seconds, _ = css.result()
            assert {status for status, _, _ in first_wave} == {503}
            assert all(retry_after for _, _, retry_after in first_wave)
            assert max(seconds for _, seconds, _ in first_wave) < FIRST_WAVE_SECONDS
            assert css_status == 200 and css_seconds < FIRST_WAVE_SECONDS

            # The breaker is open: answers come at once, without a request to DynamoDB.
            reached = proxy.requests
            with ThreadPoolExecutor(STUCK_REQUESTS + 2) as pool:
                hits = [
                    pool.submit(fetch, f"{base}/api/renders", hit) for _ in range(STUCK_REQUESTS)
                ]
                page = pool.submit(fetch, f"{base}/s/{key}")
                css = pool.submit(fetch, f"{base}/static/css/site.css")
                open_wave = [future.result() for future in hits]
                others = [page.result(), css.result()]
            assert {status for status, _, _ in open_wave} == {503}
            assert all(seconds < OPEN_ANSWER_SECONDS for _, seconds, _ in open_wave + others)
            assert all(1 <= int(ra or 0) <= COOLDOWN_SECONDS for _, _, ra in open_wave)
            assert [status for status, _, _ in others] == [200, 200]
            # None of the stuck requests reached DynamoDB; at most the breaker's one half-open
            # probe, should the cool-down have run out on a slow machine.
            assert proxy.requests - reached <= 1

            proxy.thaw()
            deadline = time.monotonic() + COOLDOWN_SECONDS + CLIENT_TIMEOUT_SECONDS
            while (status := fetch(f"{base}/api/renders", hit)[0]) != 200:
                assert status == 503 and time.monotonic() < deadline
                time.sleep(0.5)
        finally:
            proxy.thaw()
