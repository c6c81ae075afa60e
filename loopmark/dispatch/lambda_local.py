"""lambda-local: AWS Lambda's Invoke API over HTTP on this machine, running a Python handler.

It serves ``POST /2015-03-31/functions/{name}/invocations`` the way AWS's runtime interface
emulator does, so boto3's ``invoke`` (with ``AWS_ENDPOINT_URL_LAMBDA`` pointing here) runs the
real render handler with no AWS account: ``RequestResponse`` answers with the handler's JSON
result, ``Event`` answers 202 at once and runs the handler on a bounded pool, ``DryRun`` answers
204. A handler exception is a 200 with ``X-Amz-Function-Error: Unhandled``, as on AWS. Every
function name runs the same handler. Meant for loopback: it has no authentication.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import re
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from loopmark.errors import BadInput

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9001
DEFAULT_HANDLER = "loopmark.service.lambda_entry:handle"
# AWS's limit for an asynchronous invocation's payload; render events are a few hundred bytes.
MAX_PAYLOAD_BYTES = 256 * 1024
# Event invocations run on this many threads at once; more wait in a bounded backlog and past
# that the server answers 429 (TooManyRequestsException), as a throttled function does.
MAX_RUNNING_EVENTS = 4
MAX_PENDING_EVENTS = 200
CONNECTION_IDLE_SECONDS = 60.0
# What context.get_remaining_time_in_millis() counts down from (Lambda's maximum timeout).
FUNCTION_TIMEOUT_SECONDS = 900.0
MEMORY_LIMIT_MB = 2048
FAKE_ACCOUNT = "000000000000"
FAKE_REGION = "us-east-1"

INVOKE_PATH = re.compile(r"/2015-03-31/functions/(?P<name>[^/]+)/invocations")
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")

Handler = Callable[[Any, Any], Any]


@dataclass
class LocalContext:
    """The attributes of Lambda's Python context object that handlers read."""

    function_name: str
    aws_request_id: str
    deadline: float  # time.monotonic() when the invocation would time out
    function_version: str = "$LATEST"
    memory_limit_in_mb: str = str(MEMORY_LIMIT_MB)
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "lambda-local"
    identity: Any = None
    client_context: Any = None

    def __post_init__(self) -> None:
        if not self.invoked_function_arn:
            self.invoked_function_arn = (
                f"arn:aws:lambda:{FAKE_REGION}:{FAKE_ACCOUNT}:function:{self.function_name}"
            )
        if not self.log_group_name:
            self.log_group_name = f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def _function_name(name_or_arn: str) -> str:
    """The bare function name of a name, ``name:qualifier``, partial or full ARN."""
    parts = name_or_arn.split(":")
    if "function" in parts[:-1]:
        return parts[parts.index("function") + 1]
    return parts[0]


def load_handler(path: str) -> Handler:
    """``package.module:function`` → the function; BadInput with a one-line reason otherwise."""
    module_name, sep, attribute = path.partition(":")
    if not sep or not module_name or not attribute:
        raise BadInput(f"handler must look like package.module:function, got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BadInput(f"cannot import handler module {module_name!r}: {exc}") from exc
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise BadInput(f"{module_name!r} has no callable {attribute!r}")
    return handler  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Outcome:
    """One finished invocation: the body to return, and whether the handler failed."""

    body: bytes
    function_error: bool


class Invoker:
    """Runs the handler for invocations: synchronously, or on a bounded pool for events."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_running_events: int = MAX_RUNNING_EVENTS,
        max_pending_events: int = MAX_PENDING_EVENTS,
    ) -> None:
        self.handler = handler
        self.max_pending_events = max_pending_events
        self._pool = ThreadPoolExecutor(max_running_events, thread_name_prefix="lambda-event")
        self._lock = threading.Lock()
        self._pending = 0  # accepted events not finished yet (running or waiting)

    def run(self, function_name: str, event: Any, invocation_type: str) -> Outcome:
        request_id = str(uuid.uuid4())
        context = LocalContext(
            function_name=function_name,
            aws_request_id=request_id,
            deadline=time.monotonic() + FUNCTION_TIMEOUT_SECONDS,
        )
        started = time.monotonic()
        try:
            result = self.handler(event, context)
            body = json.dumps(result).encode("utf-8")
            outcome = Outcome(body, function_error=False)
        except Exception as exc:
            log.error(
                "handler failed (request %s):\n%s", request_id, traceback.format_exc().rstrip()
            )
            # The shape AWS's Python runtime returns for an unhandled exception.
            error = {
                "errorMessage": str(exc),
                "errorType": type(exc).__name__,
                "requestId": request_id,
                "stackTrace": traceback.format_tb(exc.__traceback__),
            }
            outcome = Outcome(json.dumps(error).encode("utf-8"), function_error=True)
        log.info(
            "invoke function=%s type=%s request_id=%s outcome=%s duration_ms=%.0f",
            function_name,
            invocation_type,
            request_id,
            "error" if outcome.function_error else "ok",
            (time.monotonic() - started) * 1000,
        )
        return outcome

    def enqueue(self, function_name: str, event: Any) -> bool:
        """Accept an Event invocation to run in the background; False when the backlog is full."""
        with self._lock:
            if self._pending >= self.max_pending_events:
                return False
            self._pending += 1
        try:
            self._pool.submit(self._run_event, function_name, event)
        except RuntimeError:  # the pool is shutting down
            with self._lock:
                self._pending -= 1
            return False
        return True

    def _run_event(self, function_name: str, event: Any) -> None:
        try:
            self.run(function_name, event, "Event")
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class LambdaLocalServer(ThreadingHTTPServer):
    """A threaded HTTP server whose request handler reaches the Invoker through ``self``."""

    daemon_threads = True
    # The listen backlog: a burst of boto3 connections must queue, not be refused (default 5).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], invoker: Invoker) -> None:
        self.invoker = invoker
        super().__init__(address, _InvokeRequestHandler)

    def server_close(self) -> None:
        super().server_close()
        self.invoker.close()


class _InvokeRequestHandler(BaseHTTPRequestHandler):
    # Keep-alive, as boto3's connection pool expects; every reply carries Content-Length.
    protocol_version = "HTTP/1.1"
    server: LambdaLocalServer
    server_version = "lambda-local"
    # A socket timeout, so an idle keep-alive or a half-sent request does not hold a thread.
    timeout = CONNECTION_IDLE_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        # One line per invocation is logged by the Invoker; the access log only on demand.
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _reply_error(self, status: int, error_type: str, message: str) -> None:
        """An API error in Lambda's REST-JSON shape (botocore reads the type from the header)."""
        log.warning("rejected %s %s: %d %s", self.command, self.path, status, message)
        body = json.dumps({"Type": "User", "message": message}).encode("utf-8")
        self._reply(status, body, {"x-amzn-ErrorType": error_type})

    def _not_found(self) -> None:
        self.close_connection = True  # any body the client sent stays unread
        self._reply_error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", "no such route")

    do_GET = do_PUT = do_DELETE = do_PATCH = do_HEAD = _not_found

    def do_POST(self) -> None:
        match = INVOKE_PATH.fullmatch(urlsplit(self.path).path)
        if match is None:
            self._not_found()
            return
        function_name = _function_name(unquote(match.group("name")))
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        body = self._read_body()
        if body is None:
            return
        if invocation_type not in INVOCATION_TYPES:
            self._reply_error(
                HTTPStatus.BAD_REQUEST,
                "InvalidParameterValueException",
                f"X-Amz-Invocation-Type must be one of {', '.join(INVOCATION_TYPES)}",
            )
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._reply_error(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestContentException",
                f"Could not parse request body into json: {exc}",
            )
            return
        if invocation_type == "DryRun":
            self._reply(HTTPStatus.NO_CONTENT)
        elif invocation_type == "Event":
            if self.server.invoker.enqueue(function_name, event):
                self._reply(HTTPStatus.ACCEPTED)
            else:
                self._reply_error(
                    HTTPStatus.TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    "Rate Exceeded.",
                )
        else:
            outcome = self.server.invoker.run(function_name, event, invocation_type)
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            if outcome.function_error:
                headers["X-Amz-Function-Error"] = "Unhandled"
            self._reply(HTTPStatus.OK, outcome.body, headers)

    def _read_body(self) -> bytes | None:
        """The request body, or None after replying with the reason it is refused."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._reply_error(
                HTTPStatus.LENGTH_REQUIRED, "InvalidRequestContentException", "send Content-Length"
            )
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._reply_error(
                HTTPStatus.BAD_REQUEST, "InvalidRequestContentException", "bad Content-Length"
            )
            return None
        if length > MAX_PAYLOAD_BYTES:
            self.close_connection = True
            self._reply_error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the Invoke operation",
            )
            return None
        return self.rfile.read(length)


def make_server(
    host: str,
    port: int,
    handler: Handler,
    *,
    max_running_events: int = MAX_RUNNING_EVENTS,
    max_pending_events: int = MAX_PENDING_EVENTS,
) -> LambdaLocalServer:
    """A bound server (port 0 picks a free one: read ``server.server_address``), not yet serving."""
    invoker = Invoker(
        handler, max_running_events=max_running_events, max_pending_events=max_pending_events
    )
    return LambdaLocalServer((host, port), invoker)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    handler_path: str = DEFAULT_HANDLER,
    *,
    max_running_events: int = MAX_RUNNING_EVENTS,
) -> None:
    """Serve the Invoke API until interrupted. BadInput when the handler cannot be loaded."""
    # The command's own output: one line per invocation (a no-op if logging is already set up).
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    handler = load_handler(handler_path)
    server = make_server(host, port, handler, max_running_events=max_running_events)
    bound_host, bound_port = server.server_address[:2]
    log.info(
        "lambda-local serving Invoke on http://%s:%d (handler %s)",
        bound_host,
        bound_port,
        handler_path,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m loopmark.dispatch.lambda_local [--host H] [--port P] [--handler mod:fn]``."""
    parser = argparse.ArgumentParser(
        prog="lambda-local", description="Serve AWS Lambda's Invoke API over a Python handler."
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--handler", default=DEFAULT_HANDLER, help="module:function")
    parser.add_argument(
        "--max-events",
        type=int,
        default=MAX_RUNNING_EVENTS,
        help="Event invocations run at once (1: strictly in arrival order)",
    )
    args = parser.parse_args(argv)
    if args.max_events < 1:
        parser.error("--max-events must be at least 1")
    try:
        serve(args.host, args.port, args.handler, max_running_events=args.max_events)
    except BadInput as exc:
        print(f"lambda-local: {exc.reason}", file=sys.stderr)
        raise SystemExit(2) from None
    except OSError as exc:  # the port is taken, the host cannot be bound
        print(f"lambda-local: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
