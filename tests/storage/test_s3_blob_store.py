"""S3BlobStore specifics against moto's real server: object metadata, signed URLs, failures."""

from __future__ import annotations

import socket
import time
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from loopmark import prompt_calls
from loopmark.errors import StorageUnavailable
from loopmark.storage import open_blob_store
from loopmark.storage.s3 import SIGNED_URL_SECONDS, S3BlobStore
from tests.moto_server import free_port

BUCKET = "loopmark-media"
KEY = "r/ab/abcdef0123456789/loop.gif"


@pytest.fixture
def store(aws: str) -> S3BlobStore:
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}/prod")
    blob_store.setup()
    return blob_store


def test_put_sets_content_type_and_immutable_cache_control(store: S3BlobStore) -> None:
    store.put(KEY, b"GIF89a", content_type="image/gif")
    head = boto3.client("s3").head_object(Bucket=BUCKET, Key="prod/" + KEY)
    assert head["ContentType"] == "image/gif"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"


def test_objects_live_under_the_prefix(store: S3BlobStore) -> None:
    store.put(KEY, b"x", content_type="image/gif")
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET)
    assert [item["Key"] for item in listed["Contents"]] == ["prod/" + KEY]


def test_stores_without_prefix_use_the_bare_key(aws: str) -> None:
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    blob_store.setup()
    blob_store.put(KEY, b"x", content_type="image/gif")
    assert boto3.client("s3").get_object(Bucket=BUCKET, Key=KEY)["Body"].read() == b"x"


def test_presigned_url_is_fetchable_and_short_lived(store: S3BlobStore, aws: str) -> None:
    data = b"GIF89a" + bytes(range(256))
    store.put(KEY, data, content_type="image/gif")
    url = store.url(KEY)
    assert url.startswith(aws)
    expires = parse_qs(urlsplit(url).query)["X-Amz-Expires"]
    assert 0 < int(expires[0]) <= 300
    assert SIGNED_URL_SECONDS <= 300
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/gif"
        assert response.read() == data


def test_media_base_url_replaces_signing(aws: str) -> None:
    blob_store = open_blob_store(f"s3://{BUCKET}/prod", media_base_url="https://cdn.example.test")
    assert blob_store.url(KEY) == "https://cdn.example.test/" + KEY


def test_no_client_is_made_before_first_use(aws: str) -> None:
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    assert blob_store._clients == {}
    blob_store.setup()
    assert blob_store._clients


def test_setup_handles_bucket_already_owned_by_you(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outside us-east-1, S3 (and moto) answer a repeated CreateBucket with BucketAlreadyOwnedByYou.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    blob_store.setup()
    with pytest.raises(ClientError) as excinfo:
        blob_store.client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    assert excinfo.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
    blob_store.setup()
    blob_store.check()


def test_check_fails_when_the_bucket_is_missing(aws: str) -> None:
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    with pytest.raises(StorageUnavailable) as excinfo:
        blob_store.check()
    assert isinstance(excinfo.value.__cause__, ClientError)
    assert excinfo.value.code == "storage_unavailable"


def test_put_into_a_missing_bucket_is_unavailable_not_missing(aws: str) -> None:
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
        blob_store.put(KEY, b"x", content_type="image/gif")


def test_get_of_a_missing_key_keeps_the_s3_error_as_cause(store: S3BlobStore) -> None:
    with pytest.raises(FileNotFoundError) as excinfo:
        store.get(KEY)
    assert isinstance(excinfo.value.__cause__, ClientError)
    assert excinfo.value.__cause__.response["Error"]["Code"] == "NoSuchKey"


@pytest.mark.timeout(60)
def test_unreachable_endpoint_is_storage_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    # A closed loopback port refuses connections at once; the bounded retries must give up.
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
    for call in (
        blob_store.check,
        blob_store.setup,
        lambda: blob_store.put(KEY, b"x", content_type="image/gif"),
        lambda: blob_store.get(KEY),
        lambda: blob_store.exists(KEY),
        lambda: blob_store.delete(KEY),
    ):
        with pytest.raises(StorageUnavailable) as excinfo:
            call()
        assert isinstance(excinfo.value.__cause__, EndpointConnectionError)


def test_a_stalled_endpoint_fails_a_read_within_two_short_tries(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as stalled:  # listens, never answers
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{stalled.getsockname()[1]}")
        blob_store = S3BlobStore.from_url(f"s3://{BUCKET}")
        # botocore's Config sets its settings as attributes when made: not in its stubs.
        reads: Any = blob_store.client.meta.config
        writes: Any = blob_store.writer.meta.config
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="[Tt]imeout"):
            blob_store.get(KEY)
        # Before: 10 s reads, four tries; then two 1 s tries and botocore's pause (up to 3 s).
        # Now two prompt tries with no pause (loopmark.prompt_calls).
        seconds = time.monotonic() - started
        assert 2 * prompt_calls.READ_SECONDS <= seconds < prompt_calls.CALL_SECONDS + 0.2
    assert (reads.connect_timeout, reads.read_timeout) == (
        prompt_calls.CONNECT_SECONDS,
        prompt_calls.READ_SECONDS,
    )
    assert reads.retries["total_max_attempts"] == 1  # the one retry is prompt_call's
    assert writes.read_timeout > reads.read_timeout  # media uploads may take longer
