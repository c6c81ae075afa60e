"""DynamoDB plumbing (loopmark.records.dynamodb): the URL, numbers, the table with its index and
TTL, and errors as values, seen through the render records' adapter."""

from __future__ import annotations

import socket
import threading
import time

import boto3
import pytest

from loopmark import prompt_calls
from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records import open_render_records
from loopmark.records.dynamodb import (
    RECENT_INDEX,
    TTL_ATTRIBUTE,
    DynamoTable,
    dynamodb_table_from_url,
    number,
)
from loopmark.records.renders import DynamoRenderRecords
from tests.moto_server import free_port

TABLE = "loopmark-test"
NOW = 1_700_000_000.0


def make_records(now: float = NOW) -> DynamoRenderRecords:
    return DynamoRenderRecords(DynamoTable(TABLE), clock=lambda: now)


def test_url_to_table_name() -> None:
    assert dynamodb_table_from_url("dynamodb://loopmark-prod_1.x") == "loopmark-prod_1.x"


@pytest.mark.parametrize("url", ["dynamodb://", "dynamodb://a", "dynamodb://t/x", "dynamo://tab"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigInvalid):
        open_render_records(url)


def test_numbers_are_written_in_plain_digits() -> None:
    assert number(1e-05) == {"N": "0.00001"}
    assert number(1_700_000_000.25) == {"N": "1700000000.25"}
    assert number(3) == {"N": "3"} and number(3.0) == {"N": "3.0"}


def test_setup_creates_the_table_with_its_index_and_ttl(aws: str) -> None:
    records = make_records()
    records.setup()
    records.setup()  # idempotent
    client = boto3.client("dynamodb")
    table = client.describe_table(TableName=TABLE)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["key"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [RECENT_INDEX]
    ttl = client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", TTL_ATTRIBUTE)
    records.check()


def test_setup_adds_the_index_an_older_table_lacks(aws: str) -> None:
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    records = make_records()
    records.setup()
    table = client.describe_table(TableName=TABLE)["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [RECENT_INDEX]
    records.claim_lease("k", owner="a", template_id="t", caption="c", lease_seconds=90)
    records.complete("k", owner="a", media={"gif": "k.gif"})
    assert [r.key for r in records.list_recent()] == ["k"]


def test_a_missing_table_is_unavailable(aws: str) -> None:
    records = make_records()
    with pytest.raises(RecordsUnavailable, match="loopmark setup"):
        records.check()
    with pytest.raises(RecordsUnavailable) as caught:
        records.get("k")
    assert caught.value.code == "records_unavailable"


def test_an_unreachable_endpoint_is_unavailable(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    records = make_records()
    with pytest.raises(RecordsUnavailable, match=TABLE):
        records.get("k")


# Before: 5 s reads, four tries (botocore's "max_attempts" counts retries): 20 s per stalled read;
# then two 1 s tries with botocore's random pause of up to 1 s between them: up to 3 s.
class StalledEndpoint:
    """Listens on loopback, takes every connection and request, answers nothing."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.listener.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.mark.parametrize("write", [False, True], ids=["read", "enqueue"])
def test_a_stalled_endpoint_fails_a_request_path_call_within_two_prompt_tries(
    aws: str, monkeypatch: pytest.MonkeyPatch, write: bool
) -> None:
    stalled = StalledEndpoint()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", stalled.url)
        records = make_records()
        records.table.client(prompt=True)  # made once a process (its model loaded): not timed
        started = time.monotonic()
        with pytest.raises(RecordsUnavailable, match="[Tt]imeout"):
            if write:  # the "queued" record a 202 waits on
                records.enqueue("k", template_id="t", caption="c", words_version=None)
            else:
                records.get("k")
        seconds = time.monotonic() - started
    finally:
        stalled.close()
    # Two tries (one retry), each given up after the read timeout, with no pause between them.
    assert len(stalled.connections) == 2
    assert 2 * prompt_calls.READ_SECONDS <= seconds < prompt_calls.CALL_SECONDS + 0.2
    table = records.table
    reads, writes = table.client(prompt=True).meta.config, table.client().meta.config
    assert (reads.connect_timeout, reads.read_timeout) == (
        prompt_calls.CONNECT_SECONDS,
        prompt_calls.READ_SECONDS,
    )
    assert reads.retries["total_max_attempts"] == 1  # the retry is prompt_call's
    assert writes.read_timeout > reads.read_timeout  # a render's last writes may take longer
