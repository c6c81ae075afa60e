"""Smoke tests of the built images (`make image-test`; `make test` deselects them).

`podman run` does not work on these machines, so each image's file system is mounted read-only
(`podman image mount`) and its programs run under `chroot` as the image's user, with the image's
own environment, working directory and entry point (read from `podman image inspect`), in a
private mount namespace with a fresh tmpfs on /tmp — much as Lambda runs an image: a read-only
root and a writable /tmp. S3 and DynamoDB are moto's server on loopback.

- renderer: a Lambda Runtime API written here hands `python -m awslambdaric
  loopmark.lambda_entry.handle` one render job (an Arabic + emoji caption) and takes its answer;
  the record is then done and the GIF in S3 shows the caption over the caption-free frame.
- site: `loopmark serve` answers /healthz and renders a demo template over the JSON API; the
  image's HEALTHCHECK command passes; as a Lambda, `loopmark.lambda_entry.site` answers a
  function URL event.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import boto3.session
import numpy as np
import pytest
from PIL import GifImagePlugin, Image

from loopmark.brand import demo_brand
from loopmark.renderer.prepare import prepared_version_folder
from loopmark.renderer.render import render_key
from loopmark.renderer.templates import load_template
from loopmark.service.render_service import media_keys
from tests.moto_server import free_port, moto_server, stop
from tests.paths import DEMO_TEMPLATES

pytestmark = pytest.mark.images

IMAGE_PREFIX = os.environ.get("IMAGE_PREFIX", "localhost/loopmark")
BUCKET = "loopmark-images"
TABLE = "loopmark-images"
TEMPLATE = "wake-up"
CAPTION = "مرحبا 👋"
BOUND_SECONDS = 180.0  # against hangs only
RUNTIME_API = "/2018-06-01/runtime"
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "loopmark-test",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/loopmark-test",
    "AWS_LAMBDA_LOG_STREAM_NAME": "test",
}


def podman(*args: str) -> str:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"podman {' '.join(args)}: {proc.stderr.strip()}"
    return proc.stdout.strip()


class Image_:
    """An image's file system, mounted read-only, and its configuration."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.root = Path(podman("image", "mount", name))
        inspected = json.loads(podman("image", "inspect", name))[0]
        self.config: dict[str, Any] = inspected["Config"]
        self.healthcheck: list[str] = (inspected.get("Healthcheck") or {}).get("Test") or []
        self.size = int(inspected["Size"])

    @property
    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.config.get("Env") or [])

    @property
    def entry(self) -> list[str]:
        return [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]

    def popen(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        """Run ``argv`` from the image under chroot, as its user, in its working directory, with
        its environment plus ``env``; a read-only root, a private tmpfs on /tmp."""
        user = self.config.get("User") or "0"
        workdir = self.config.get("WorkingDir") or "/"
        environment = [f"{k}={v}" for k, v in {**self.env, **env}.items()]
        script = (
            'root=$1; shift; mount -t tmpfs -o size=1g,mode=1777 tmpfs "$root/tmp" && '
            'mount --rbind /dev "$root/dev" && mount -t proc proc "$root/proc" && '
            'exec chroot --userspec="$USERSPEC" "$root" /usr/bin/env -i --chdir="$WORKDIR" "$@"'
        )
        with log.open("wb") as output:
            return subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
                + [str(self.root), *environment, *argv],
                env={"PATH": os.environ["PATH"], "USERSPEC": user, "WORKDIR": workdir},
                stdout=output,
                stderr=subprocess.STDOUT,
            )


@pytest.fixture(scope="module")
def images() -> Iterator[dict[str, Image_]]:
    if os.geteuid() != 0 or shutil.which("podman") is None:
        pytest.fail("the image smoke tests need root and podman (make image-test)")
    mounted: dict[str, Image_] = {}
    try:
        for target in ("renderer", "site"):
            mounted[target] = Image_(f"{IMAGE_PREFIX}-{target}")
        for image in mounted.values():
            print(f"\n{image.name}: {image.size / 1e6:.0f} MB, entry {image.entry}")
        yield mounted
    finally:
        for image in mounted.values():
            podman("image", "unmount", image.name)


@pytest.fixture(scope="module")
def aws(
    tmp_path_factory: pytest.TempPathFactory, images: dict[str, Image_]
) -> Iterator[dict[str, str]]:
    """moto on loopback; backends set up and the demo template pushed from the host."""
    with moto_server() as endpoint:
        env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "LOOPMARK_STORAGE": f"s3://{BUCKET}/media",
            "LOOPMARK_RECORDS": f"dynamodb://{TABLE}",
        }
        host = {
            **env,
            "LOOPMARK_DATA_DIR": str(tmp_path_factory.mktemp("host")),
            "LOOPMARK_TEMPLATES_DIR": str(DEMO_TEMPLATES),
            # The image's artifacts, read in place (the same version here): nothing to prepare.
            "LOOPMARK_PREPARED_DIR": str(images["renderer"].root / "opt/loopmark/prepared"),
        }
        for command in (["setup"], ["templates", "push", TEMPLATE]):
            proc = subprocess.run(
                [sys.executable, "-m", "loopmark", *command],
                env={**os.environ, **host},
                capture_output=True,
                text=True,
                timeout=BOUND_SECONDS,
            )
            assert proc.returncode == 0, proc.stderr
            print(proc.stdout.strip())
        yield env


class RuntimeApi:
    """Lambda's Runtime API on loopback: hands out queued events, collects the answers."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.answers: dict[str, tuple[str, Any]] = {}
        self.answered = threading.Condition()
        self.closed = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path != f"{RUNTIME_API}/invocation/next":
                    return self._reply(404, b"{}")
                with api.answered:
                    while not api.events and not api.closed:
                        api.answered.wait()  # the runtime long-polls until the test stops it
                    if api.closed:
                        return self._reply(503, b"{}")
                    request_id, event = api.events.pop(0)
                body = json.dumps(event).encode()
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header(
                    "Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000)
                )
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:loopmark-test",
                )
                self.send_header(
                    "Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"
                )
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(f"{RUNTIME_API}/").split("/")
                kind = parts[-1]  # response | error (init/error too)
                request_id = parts[1] if parts[0] == "invocation" else "init"
                with api.answered:
                    api.answers[request_id] = (kind, json.loads(body or b"null"))
                    api.answered.notify_all()
                self._reply(202, b"{}")

            def _reply(self, status: int, body: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the runtime was stopped while it long-polled

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, event: Any, timeout: float = BOUND_SECONDS) -> tuple[str, Any]:
        request_id = str(uuid.uuid4())
        with self.answered:
            self.events.append((request_id, event))
            self.answered.notify_all()
            ok = self.answered.wait_for(
                lambda: request_id in self.answers or "init" in self.answers, timeout
            )
        assert ok, "no answer from the Lambda runtime"
        assert "init" not in self.answers, self.answers["init"]
        return self.answers[request_id]

    def close(self) -> None:
        with self.answered:
            self.closed = True
            self.answered.notify_all()
        self.server.shutdown()
        self.server.server_close()  # joins the request threads


def lambda_process(
    image: Image_, entry: list[str], env: dict[str, str], log: Path
) -> tuple[RuntimeApi, subprocess.Popen[bytes]]:
    api = RuntimeApi()
    proc = image.popen(entry, {**env, **LAMBDA_ENV, "AWS_LAMBDA_RUNTIME_API": api.address}, log)
    return api, proc


def show(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def test_image_configuration(images: dict[str, Image_]) -> None:
    renderer, site = images["renderer"], images["site"]
    assert renderer.entry == ["python", "-m", "awslambdaric", "loopmark.lambda_entry.handle"]
    assert site.entry[:2] == ["loopmark", "serve"]
    assert site.healthcheck[:1] == ["CMD"] and "/healthz" in site.healthcheck[-1]
    for image in images.values():
        assert (image.config.get("User") or "0").split(":")[0] not in ("", "0", "root")
        assert image.env["LOOPMARK_PREPARED_DIR"] == "/opt/loopmark/prepared"
        assert image.env["LOOPMARK_DATA_DIR"] == "/tmp/loopmark"
        assert "PYTHONPATH" not in image.env
        prepared = sorted(p.name for p in (image.root / "opt/loopmark/prepared").iterdir())
        assert prepared == sorted(p.name for p in DEMO_TEMPLATES.iterdir() if p.is_dir())
    assert renderer.env["LOOPMARK_TEMPLATES_SOURCE"] == "storage"


def test_renderer_lambda_renders_an_arabic_and_emoji_caption(
    images: dict[str, Image_], aws: dict[str, str], tmp_path: Path
) -> None:
    image = images["renderer"]
    # As the image's catalog reads it: with the brand's GIF budget, which is in the key.
    template = load_template(
        DEMO_TEMPLATES, TEMPLATE, default_max_gif_bytes=demo_brand().max_gif_bytes
    )
    key = render_key(template, CAPTION)
    event = {"key": key, "template_id": TEMPLATE, "caption": CAPTION}
    log = tmp_path / "renderer.log"
    started = time.monotonic()
    api, proc = lambda_process(image, image.entry, aws, log)
    try:
        kind, answer = api.invoke(event)
        seconds = time.monotonic() - started
        assert kind == "response", (answer, show(log))
        assert answer == {"ok": True, "key": key, "status": "done"}, show(log)
        print(f"\nrenderer: cold start + render in {seconds:.1f} s: {answer}")
        # Delivered again: done already, nothing rendered twice.
        assert api.invoke(event)[1] == answer
    finally:
        stop(proc)
        api.close()
    print(show(log)[-1500:])

    session = boto3.session.Session(
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        region_name=aws["AWS_DEFAULT_REGION"],
    )
    dynamodb = session.client("dynamodb", endpoint_url=aws["AWS_ENDPOINT_URL"])
    items = dynamodb.scan(TableName=TABLE)["Items"]
    record = next(item for item in items if key in json.dumps(item))
    assert "done" in json.dumps(record), record
    s3 = session.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"])
    gif = s3.get_object(Bucket=BUCKET, Key=f"media/{media_keys(key)['gif']}")["Body"].read()
    with Image.open(io.BytesIO(gif)) as decoded:
        # The GIF plugin's image type is the one that counts its frames.
        assert decoded.format == "GIF" and isinstance(decoded, GifImagePlugin.GifImageFile)
        assert decoded.n_frames > 1
        first = np.asarray(decoded.convert("RGB"), dtype=np.int16)

    # The caption-free first frame, from the artifacts the image carries.
    folder = prepared_version_folder(template, image.root / "opt/loopmark/prepared")
    plain = np.load(folder / "frames.npy", mmap_mode="r")[0].astype(np.int16)
    x, y, w, h = json.loads((folder / "meta.json").read_text())["box"]
    changed = np.abs(first - plain).max(axis=2) > 64
    inside = changed[y : y + h, x : x + w].mean()
    outside = (changed.sum() - changed[y : y + h, x : x + w].sum()) / (changed.size - w * h)
    print(f"caption pixels: {inside:.1%} of the text box changed, {outside:.2%} outside it")
    assert inside > 0.03, "the text box is blank: the caption was not drawn"
    assert outside < 0.01


def test_site_serves_and_renders(
    images: dict[str, Image_], aws: dict[str, str], tmp_path: Path
) -> None:
    image = images["site"]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {
        **aws,
        "LOOPMARK_SITE_URL": origin,
        "LOOPMARK_SECRET_KEY": "x" * 40,
        "LOOPMARK_DISPATCH": "local",
    }
    log = tmp_path / "site.log"
    started = time.monotonic()
    proc = image.popen(["loopmark", "serve", "--host", "127.0.0.1", "--port", str(port)], env, log)
    try:
        deadline = time.monotonic() + BOUND_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{origin}/healthz", timeout=5) as response:
                    health = (response.status, json.load(response))
                break
            except OSError:
                assert proc.poll() is None, show(log)
                assert time.monotonic() < deadline, show(log)
                time.sleep(0.2)
        assert health[0] == 200 and health[1]["ok"], health
        print(f"\nsite: /healthz 200 after {time.monotonic() - started:.1f} s: {health[1]}")

        # The image's own HEALTHCHECK command, pointed at this port.
        argv = [
            part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in image.healthcheck[1:]
        ]
        probe = image.popen(argv, env, tmp_path / "healthcheck.log")
        assert probe.wait(timeout=60) == 0, show(tmp_path / "healthcheck.log")

        body = json.dumps({"template": TEMPLATE, "caption": "Hello from the site image"}).encode()
        request = urllib.request.Request(
            f"{origin}/api/renders", body, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status in (200, 202)
            result = json.load(response)
        print(f"site: POST /api/renders → {response.status} {result['status']}")
        while result["status"] != "done":
            assert result["status"] in ("queued", "rendering"), result
            assert time.monotonic() < deadline, show(log)
            time.sleep(0.3)
            with urllib.request.urlopen(f"{origin}/api/renders/{result['key']}", timeout=10) as r:
                result = json.load(r)
        gif_url = result["gif_url"]
        gif_url = gif_url if gif_url.startswith("http") else origin + gif_url
        with urllib.request.urlopen(gif_url, timeout=30) as response:
            assert response.read(6) == b"GIF89a"
        print(f"site: render done after {time.monotonic() - started:.1f} s: {result['key']}")
    finally:
        stop(proc)
        print(show(log)[-1500:])


def test_site_as_a_lambda_answers_a_function_url_event(
    images: dict[str, Image_], aws: dict[str, str], tmp_path: Path
) -> None:
    image = images["site"]
    env = {**aws, "LOOPMARK_SITE_URL": "https://gifs.example", "LOOPMARK_SECRET_KEY": "x" * 40}
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/api/templates",
        "rawQueryString": "",
        "headers": {"host": "abc.lambda-url.us-east-1.on.aws", "accept": "application/json"},
        "requestContext": {
            "domainName": "abc.lambda-url.us-east-1.on.aws",
            "http": {
                "method": "GET",
                "path": "/api/templates",
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.7",
                "userAgent": "image-test",
            },
            "requestId": "r1",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    log = tmp_path / "site-lambda.log"
    entry = ["python", "-m", "awslambdaric", "loopmark.lambda_entry.site"]
    api, proc = lambda_process(image, entry, env, log)
    try:
        kind, answer = api.invoke(event)
    finally:
        stop(proc)
        api.close()
    assert kind == "response", (answer, show(log))
    assert answer["statusCode"] == 200, (answer, show(log))
    templates = json.loads(answer["body"])
    assert TEMPLATE in [t["id"] for t in templates]
    print(f"\nsite on Lambda: GET /api/templates → 200, {len(templates)} templates")
