"""DynamoDB plumbing: the table every record kind shares.

:class:`DynamoTable` owns the table: lazy boto3 clients with short timeouts (reads, on the
request path) and longer ones (writes), the translation
of AWS errors into RecordsUnavailable, and setup (the table, its global secondary indexes, TTL on
``expires_at``). Each record kind's DynamoDB adapter (in the kind's own module: renders, gallery,
words, users, stats) is a :class:`DynamoAdapter` over the same DynamoTable. Render records are
items keyed by the render key (a hex hash); every other kind's items use prefixed keys
(``gallery#order``, ``stats#day#2024-05-01``), which no render key can collide with. The table's
own index (RECENT_INDEX) is the render listing's; an index another kind needs is passed to
:meth:`DynamoTable.setup` by that kind's own ``setup`` (which adds it to an existing table). Their
multi-item changes are transactions: a transaction that loses a race raises ConditionFailed like a
failed condition does, and :meth:`DynamoTable.retry_lost_races` tries it again.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from loopmark import prompt_calls
from loopmark.errors import ConfigInvalid, RecordsUnavailable
from loopmark.records.common import Clock, split_records_url

# botocore settings of the two clients. Reads are on the request path (a cache hit is one
# GetItem), and so is the "queued" record written before a 202: they go through the prompt client
# (prompt_calls: one short try, one retry at once, 1.7 s at most), so a stalled endpoint costs a
# request well under two seconds, and the circuit breaker (service.breaker) then answers for it at
# once. Other writes (a lease, a render's "done", setup, the admin's) get a more patient client
# of their own, so a render that took seconds is not lost to one slow answer. Attempts include the
# first try: "total_max_attempts" (botocore's "max_attempts" counts retries only).
WRITE_CLIENT: dict[str, Any] = {
    "connect_timeout": 1.0,
    "read_timeout": 2.0,
    "retries": {"total_max_attempts": 3, "mode": "standard"},
}
# Operations that only read: they go through the prompt client.
READ_OPERATIONS = frozenset(
    {"get_item", "batch_get_item", "query", "scan", "describe_table", "describe_time_to_live"}
)
# Threads of one process share the client; its HTTP pool must not be the bottleneck.
MAX_POOL_CONNECTIONS = 50
# How long setup waits for a new table or index to become ACTIVE.
SETUP_WAIT_SECONDS = 600.0
SETUP_POLL_SECONDS = 2.0
TTL_ATTRIBUTE = "expires_at"

# The table's own index: the render listing's (see loopmark.records.renders), a sparse index whose
# partition attribute ``listing`` only done render records carry.
RECENT_INDEX = "recent"

# BatchGetItem's own limit on keys per request, and how often unprocessed keys are asked again.
BATCH_GET_ITEMS = 100
BATCH_GET_ATTEMPTS = 5
BATCH_GET_BACKOFF_SECONDS = 0.05

# Optimistic writes that lost a race are tried again this many times in all, after a short random
# pause (so ten admins' tabs at once settle in a few rounds), before giving up as unavailable.
LOST_RACE_ATTEMPTS = 50
LOST_RACE_PAUSE_MAX_SECONDS = 0.02

TABLE_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,255}")

KEY_ATTRIBUTES: dict[str, str] = {"key": "S", "listing": "S", "updated_at": "N"}
T = TypeVar("T")

TABLE_INDEXES: tuple[dict[str, Any], ...] = (
    {
        "IndexName": RECENT_INDEX,
        "KeySchema": [
            {"AttributeName": "listing", "KeyType": "HASH"},
            {"AttributeName": "updated_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    },
)


def dynamodb_table_from_url(url: str) -> str:
    """``dynamodb://table-name`` → ``table-name``."""
    scheme, rest = split_records_url(url)
    if scheme != "dynamodb" or not TABLE_NAME_PATTERN.fullmatch(rest):
        raise ConfigInvalid(f"LOOPMARK_RECORDS must look like dynamodb://table-name, got {url!r}")
    return rest


class ConditionFailed(Exception):
    """A conditional write's condition was false (not an error: someone else holds the key)."""


def number(value: float) -> dict[str, str]:
    """A DynamoDB number in plain digits, exact to the float (``repr`` alone writes ``1e-05``)."""
    if isinstance(value, int):
        return {"N": str(value)}
    return {"N": format(Decimal(repr(float(value))), "f")}


def attribute_names(*expressions: str) -> dict[str, str]:
    """ExpressionAttributeNames for ``expressions``: DynamoDB rejects unused placeholders, so
    exactly the ``#names`` they use, each standing for itself."""
    return {f"#{name}": name for e in expressions for name in re.findall(r"#(\w+)", e)}


class DynamoTable:
    """One DynamoDB table reached through a lazily created, thread-safe boto3 client.

    boto3 reads the region, credentials and ``AWS_ENDPOINT_URL`` from the environment when the
    client is first needed, never at construction.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._session: Any = None
        self._clients: dict[bool, Any] = {}
        self._lock = threading.Lock()

    def client(self, *, prompt: bool = False) -> Any:
        """The prompt client (one short try: see prompt_calls) or the patient one (writes)."""
        client = self._clients.get(prompt)
        if client is None:
            with self._lock:
                client = self._clients.get(prompt)
                if client is None:
                    client = self._clients[prompt] = self._make_client(prompt)
        return client

    def _make_client(self, prompt: bool) -> Any:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        config = Config(
            **(prompt_calls.CLIENT if prompt else WRITE_CLIENT),
            max_pool_connections=MAX_POOL_CONNECTIONS,
        )
        try:
            # A session of our own (boto3's default one is not safe to share across threads),
            # used under the lock; the second client from it costs a quarter of the first.
            if self._session is None:
                self._session = boto3.session.Session()
            return self._session.client("dynamodb", config=config)
        except BotoCoreError as exc:  # e.g. no region configured
            raise RecordsUnavailable(f"DynamoDB table {self.name}: {exc}") from exc

    def call(
        self,
        operation: str,
        *,
        tolerate: frozenset[str] = frozenset(),
        prompt: bool = False,
        **params: Any,
    ) -> dict[str, Any]:
        """Run one API operation. A failed condition → ConditionFailed; an error code named in
        ``tolerate`` → an empty answer; any other AWS or network error → RecordsUnavailable.

        Reads, and writes made with ``prompt`` (those a request waits on), are bounded as
        prompt_calls says (a short try and one retry at once); other writes are patient."""
        from botocore.exceptions import BotoCoreError, ClientError

        prompt = prompt or operation in READ_OPERATIONS
        method = getattr(self.client(prompt=prompt), operation)
        try:
            response: dict[str, Any] = (
                prompt_calls.prompt_call(lambda: method(**params)) if prompt else method(**params)
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "")
            if code in tolerate:
                return {}
            if code == "ConditionalCheckFailedException":
                raise ConditionFailed from exc
            if code == "TransactionCanceledException" and _lost_race(exc.response):
                raise ConditionFailed from exc
            if code == "ResourceNotFoundException":
                raise RecordsUnavailable(
                    f"DynamoDB table {self.name} does not exist: run `loopmark setup`"
                ) from exc
            raise RecordsUnavailable(
                f"DynamoDB table {self.name}: {code}: {error.get('Message', '')}"
            ) from exc
        except BotoCoreError as exc:
            raise RecordsUnavailable(f"DynamoDB table {self.name}: {exc}") from exc
        return response

    def get_item(self, key: str, **params: Any) -> dict[str, Any] | None:
        """The item under ``key``, or None. Strongly consistent: a decision (a lease, an
        optimistic write) must not rest on a stale replica."""
        response = self.call(
            "get_item", TableName=self.name, Key={"key": {"S": key}}, ConsistentRead=True, **params
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def update_item(self, key: str, *, prompt: bool = False, **params: Any) -> dict[str, Any]:
        """UpdateItem on the item under ``key`` (errors, and ``prompt``, as :meth:`call` has
        them)."""
        return self.call(
            "update_item", TableName=self.name, Key={"key": {"S": key}}, prompt=prompt, **params
        )

    def retry_lost_races(self, attempt: Callable[[], T], *, what: str) -> T:
        """``attempt()``, run again after a short random pause each time it loses a race
        (ConditionFailed), LOST_RACE_ATTEMPTS times in all; then RecordsUnavailable, saying that
        ``what`` changed under every attempt."""
        for _ in range(LOST_RACE_ATTEMPTS):
            try:
                return attempt()
            except ConditionFailed:
                time.sleep(random.uniform(0, LOST_RACE_PAUSE_MAX_SECONDS))
        raise RecordsUnavailable(f"DynamoDB table {self.name}: {what} changed under every attempt")

    def describe(self) -> dict[str, Any]:
        table: dict[str, Any] = self.call("describe_table", TableName=self.name)["Table"]
        return table

    def setup(
        self,
        *,
        indexes: tuple[dict[str, Any], ...] = (),
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Create the table with its indexes and TTL; add what an older table lacks. Idempotent.

        ``indexes`` are a record type's own, beyond TABLE_INDEXES, with the types of their key
        ``attributes``: a record type that needs one passes it from its own ``setup``.
        """
        key_types = {**KEY_ATTRIBUTES, **(attributes or {})}
        definitions = [{"AttributeName": n, "AttributeType": t} for n, t in key_types.items()]
        wanted = TABLE_INDEXES + indexes
        self.call(
            "create_table",
            tolerate=frozenset({"ResourceInUseException"}),  # it exists: check what it lacks
            TableName=self.name,
            AttributeDefinitions=definitions,
            KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
            GlobalSecondaryIndexes=list(wanted),
        )
        self._wait_active()
        present = {i["IndexName"] for i in self.describe().get("GlobalSecondaryIndexes", [])}
        for index in wanted:
            if index["IndexName"] not in present:
                # DynamoDB creates one index per UpdateTable, and only on an ACTIVE table.
                self.call(
                    "update_table",
                    TableName=self.name,
                    AttributeDefinitions=definitions,
                    GlobalSecondaryIndexUpdates=[{"Create": index}],
                )
                self._wait_active()
        ttl = self.call("describe_time_to_live", TableName=self.name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
            self.call(
                "update_time_to_live",
                TableName=self.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
            )

    def _wait_active(self) -> None:
        deadline = time.monotonic() + SETUP_WAIT_SECONDS
        while True:
            table = self.describe()
            statuses = [table.get("TableStatus")]
            statuses += [i.get("IndexStatus") for i in table.get("GlobalSecondaryIndexes", [])]
            if all(status == "ACTIVE" for status in statuses):
                return
            if time.monotonic() > deadline:
                raise RecordsUnavailable(f"DynamoDB table {self.name} is not ACTIVE: {statuses}")
            time.sleep(SETUP_POLL_SECONDS)

    def check(self) -> None:
        status = self.describe().get("TableStatus")
        if status not in {"ACTIVE", "UPDATING"}:
            raise RecordsUnavailable(f"DynamoDB table {self.name} is {status}")

    def batch_get(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Items by ``key`` (strongly consistent; absent when missing), BATCH_GET_ITEMS a request.

        Keys DynamoDB leaves unprocessed (throttling) are asked again, a bounded number of times.
        """
        items: dict[str, dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_ITEMS):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": [{"key": {"S": k}} for k in unique[start : start + BATCH_GET_ITEMS]],
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                response = self.call("batch_get_item", RequestItems=request)
                for item in response.get("Responses", {}).get(self.name, []):
                    items[item["key"]["S"]] = item
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(BATCH_GET_BACKOFF_SECONDS * (attempt + 1))
            else:
                raise RecordsUnavailable(f"DynamoDB table {self.name}: reads stay throttled")
        return items


def read_version(table: DynamoTable, key: str) -> int:
    """The ``version`` counter of the item under ``key`` (a record type's change counter, bumped
    by its own writes): 0 until its first change."""
    item = table.get_item(
        key, ProjectionExpression="#version", ExpressionAttributeNames={"#version": "version"}
    )
    return int(item["version"]["N"]) if item and "version" in item else 0


class DynamoAdapter:
    """What every record type's class over a DynamoTable shares: the table, the clock, setup
    (the shared table with its indexes and TTL) and close."""

    def __init__(self, table: DynamoTable, *, clock: Clock = time.time) -> None:
        self.table = table
        self._clock = clock

    def setup(self) -> None:
        self.table.setup()

    def close(self) -> None:
        """Nothing to release: the HTTP pool belongs to the client and dies with it."""


def _lost_race(response: Mapping[str, Any]) -> bool:
    """Whether a cancelled transaction lost to another writer (a condition, a concurrent
    transaction), rather than failing for a reason a retry cannot fix."""
    reasons = {r.get("Code") for r in response.get("CancellationReasons", [])}
    return bool(reasons & {"ConditionalCheckFailed", "TransactionConflict"})
