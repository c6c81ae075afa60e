"""DynamoDB plumbing (loopmark.records.dynamodb): the URL, numbers, the table with its index and
TTL, and errors as values, seen through the render records' adapter."""

from __future__ import annotations

import socket
import time

import boto3
import pytest

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


# Before: 5 s reads, four tries (botocore's "max_attempts" counts retries): 20 s per stalled read.
STALLED_READ_BOUND_SECONDS = 10.0


def test_a_stalled_endpoint_fails_a_read_within_two_short_tries(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as stalled:  # listens, never answers
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{stalled.getsockname()[1]}")
        table = DynamoTable(TABLE)
        started = time.monotonic()
        with pytest.raises(RecordsUnavailable, match="[Tt]imeout"):
            table.get_item("k")
        assert time.monotonic() - started < STALLED_READ_BOUND_SECONDS
    reads, writes = table.client(reads=True).meta.config, table.client().meta.config
    assert (reads.connect_timeout, reads.read_timeout) == (1.0, 1.0)
    assert reads.retries["total_max_attempts"] == 2  # one retry
    assert writes.read_timeout > reads.read_timeout  # a render's last writes may take longer
