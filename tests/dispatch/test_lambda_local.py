"""lambda-local: Lambda's Invoke API over HTTP, through boto3 and raw requests, as a subprocess."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from loopmark.dispatch.lambda_local import MAX_PAYLOAD_BYTES
from tests.dispatch.conftest import REPO_ROOT, LambdaLocal

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

INVOKE = "/2015-03-31/functions/fn/invocations"


@pytest.fixture
def client(lambda_env: LambdaLocal) -> Iterator[LambdaClient]:
    lambda_client = boto3.session.Session().client("lambda")
    yield lambda_client
    lambda_client.close()


def _raw(
    lambda_local: LambdaLocal,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", lambda_local.port, timeout=20)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_request_response_returns_the_handlers_result(client: LambdaClient) -> None:
    event = {"greeting": "héllo 👋", "n": [1, 2, 3]}
    response = client.invoke(FunctionName="my-fn", Payload=json.dumps(event).encode())
    assert response["StatusCode"] == 200
    # keys(): boto3-stubs mark every key of the answer required, so mypy would take the key as
    # always there; Lambda leaves FunctionError out when the function did not fail.
    assert "FunctionError" not in response.keys()
    assert json.loads(response["Payload"].read()) == {"echo": event, "function": "my-fn"}


def test_a_handler_exception_is_a_function_error(client: LambdaClient) -> None:
    response = client.invoke(FunctionName="fn", Payload=b'{"raise": "boom"}')
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error: dict[str, Any] = json.loads(response["Payload"].read())
    assert (error["errorMessage"], error["errorType"]) == ("boom", "RuntimeError")


def test_an_event_invocation_is_accepted_before_it_runs(
    client: LambdaClient, lambda_env: LambdaLocal, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    marker = uuid.uuid4().hex
    try:
        response = client.invoke(
            FunctionName="fn",
            InvocationType="Event",
            Payload=json.dumps({"gate": str(gate), "id": marker}).encode(),
        )
        # The 202 came back while the handler is still held at its gate.
        assert response["StatusCode"] == 202
        assert response["Payload"].read() == b""
        assert not any(e["event"].get("id") == marker for e in lambda_env.events())
    finally:
        gate.touch()
    lambda_env.wait_for(lambda e: e["event"].get("id") == marker, "the gated event")


def test_dry_run_answers_204_and_runs_nothing(
    client: LambdaClient, lambda_env: LambdaLocal
) -> None:
    marker = uuid.uuid4().hex
    response = client.invoke(
        FunctionName="fn", InvocationType="DryRun", Payload=json.dumps({"id": marker}).encode()
    )
    assert response["StatusCode"] == 204
    assert not any(e["event"].get("id") == marker for e in lambda_env.drain())


def test_malformed_json_is_400(client: LambdaClient, lambda_local: LambdaLocal) -> None:
    status, headers, body = _raw(lambda_local, "POST", INVOKE, b"{not json")
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert "json" in json.loads(body)["message"]
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName="fn", Payload=b"\xff\xfe")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_an_oversized_body_is_413(lambda_local: LambdaLocal) -> None:
    body = json.dumps({"pad": "x" * MAX_PAYLOAD_BYTES}).encode()
    status, headers, _ = _raw(lambda_local, "POST", INVOKE, body)
    assert status == 413
    assert headers["x-amzn-ErrorType"] == "RequestTooLargeException"


def test_an_unknown_invocation_type_is_400(lambda_local: LambdaLocal) -> None:
    status, headers, _ = _raw(
        lambda_local, "POST", INVOKE, b"{}", {"X-Amz-Invocation-Type": "Sometime"}
    )
    assert status == 400
    assert headers["x-amzn-ErrorType"] == "InvalidParameterValueException"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),
        ("POST", "/2015-03-31/functions/fn/invocations/extra"),
        ("POST", "/2015-03-31/functions//invocations"),
        ("POST", "/2015-03-31/functions/fn"),
        ("GET", INVOKE),
        ("DELETE", INVOKE),
    ],
)
def test_unknown_routes_are_404(lambda_local: LambdaLocal, method: str, path: str) -> None:
    status, _, _ = _raw(lambda_local, method, path, b"{}" if method == "POST" else b"")
    assert status == 404


def test_an_empty_body_is_an_empty_event(client: LambdaClient) -> None:
    response = client.invoke(FunctionName="fn", Payload=b"")
    assert json.loads(response["Payload"].read())["echo"] == {}


def test_one_log_line_per_invocation(client: LambdaClient, lambda_local: LambdaLocal) -> None:
    response = client.invoke(FunctionName="logged-fn", Payload=b"{}")
    request_id = response["ResponseMetadata"]["RequestId"]
    assert request_id
    lines = [
        line
        for line in lambda_local.log_file.read_text(errors="replace").splitlines()
        if "invoke function=logged-fn" in line
    ]
    assert len(lines) == 1
    assert "type=RequestResponse" in lines[0] and "outcome=ok" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--handler", "no_colon"], "module:function"),
        (["--handler", "tests.dispatch.no_such_module:echo"], "cannot import"),
        (["--handler", "tests.dispatch.handlers:missing"], "no callable"),
    ],
)
def test_a_bad_handler_exits_2_with_one_line(argv: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from loopmark.dispatch.lambda_local import main; main()", *argv],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("lambda-local:")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in result.stderr
