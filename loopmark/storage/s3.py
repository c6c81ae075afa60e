"""S3BlobStore: media as objects in one S3 bucket under an optional prefix (boto3)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from loopmark import prompt_calls
from loopmark.errors import ConfigInvalid, StorageUnavailable
from loopmark.storage.base import (
    IMMUTABLE_CACHE_CONTROL,
    StoredBlob,
    attachment_disposition,
    check_media_base_url,
    validate_key,
)

if TYPE_CHECKING:
    # boto3-stubs: for type checking only, the running code never imports it.
    from mypy_boto3_s3 import S3Client

S3_SCHEME = "s3://"
# A signed media URL is handed to one browser for one page view: minutes, not days.
SIGNED_URL_SECONDS = 300
# botocore settings of the two clients. Reads are on the request path: they make one short try
# and one retry at once (loopmark.prompt_calls: 1.7 s at most), since a request thread waiting on
# a dead endpoint is worse than a prompt 503 with Retry-After (and the circuit breaker,
# service.breaker, answers for it once it stays dead). Writes (a render's media, a take-down's
# deletes) get a more patient client, so finished work is not lost to one slow answer. A read
# timeout bounds each socket read, not a whole transfer. Attempts include the first try
# ("total_max_attempts"); SigV4 everywhere, presigned URLs included.
READ_CLIENT: dict[str, Any] = {**prompt_calls.CLIENT, "signature_version": "s3v4"}
WRITE_CLIENT: dict[str, Any] = {
    "connect_timeout": 2.0,
    "read_timeout": 10.0,
    "retries": {"total_max_attempts": 3, "mode": "standard"},
    "signature_version": "s3v4",
}

# S3's bucket naming rules (dots allowed, no uppercase or underscores, 3-63 characters).
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _check_location(bucket: str, prefix: str) -> None:
    if _BUCKET_RE.fullmatch(bucket) is None or ".." in bucket:
        raise ValueError(f"not a valid S3 bucket name: {bucket!r}")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError as exc:
            raise ValueError(f"not a valid S3 key prefix: {prefix!r} ({exc})") from None


class S3BlobStore:
    """Objects ``prefix + key`` in ``bucket``. The endpoint, region and credentials come from the
    environment as boto3 reads them (``AWS_ENDPOINT_URL`` points it at moto in tests)."""

    def __init__(self, bucket: str, prefix: str = "", *, media_base_url: str | None = None) -> None:
        try:
            _check_location(bucket, prefix)
        except ValueError as exc:
            raise ConfigInvalid(str(exc)) from exc
        self.bucket = bucket
        self.prefix = prefix + "/" if prefix else ""
        self.media_base_url = (
            None if media_base_url is None else check_media_base_url(media_base_url)
        )
        self._session: boto3.session.Session | None = None
        self._clients: dict[bool, S3Client] = {}
        self._client_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, media_base_url: str | None = None) -> S3BlobStore:
        """``s3://bucket`` or ``s3://bucket/prefix/path``."""
        if not url.startswith(S3_SCHEME):
            raise ConfigInvalid(f"LOOPMARK_STORAGE for S3 must start with s3://, got {url!r}")
        rest = url[len(S3_SCHEME) :]
        if "?" in rest or "#" in rest:
            raise ConfigInvalid(f"LOOPMARK_STORAGE must be s3://bucket/prefix, got {url!r}")
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        try:
            _check_location(bucket, prefix)
        except ValueError as exc:
            raise ConfigInvalid(f"LOOPMARK_STORAGE {url!r}: {exc}") from exc
        return cls(bucket, prefix, media_base_url=media_base_url)

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @property
    def client(self) -> S3Client:
        """The client for reads and URLs (one short try: reads go through prompt_call)."""
        return self._client_for(reads=True)

    @property
    def writer(self) -> S3Client:
        """The client for writes and deletes (more patient)."""
        return self._client_for(reads=False)

    def _client_for(self, *, reads: bool) -> S3Client:
        """One client per store and kind, made on first use: no network or credential lookup
        before. boto3's default session is not thread-safe; a private session under a lock is."""
        client = self._clients.get(reads)
        if client is None:
            with self._client_lock:
                client = self._clients.get(reads)
                if client is None:
                    config = Config(**(READ_CLIENT if reads else WRITE_CLIENT))
                    if self._session is None:  # one per store: its second client is cheap
                        self._session = boto3.session.Session()
                    client = self._session.client("s3", config=config)
                    self._clients[reads] = client
        return client

    def object_key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    @contextmanager
    def _translate(self, operation: str, key: str | None = None) -> Iterator[None]:
        """Speak the port's language: missing objects are FileNotFoundError, every other backend
        failure is StorageUnavailable with the boto error kept as its cause."""
        where = f"s3://{self.bucket}/{self.prefix}{key or ''}"
        try:
            yield
        except ClientError as exc:
            if key is not None and _error_code(exc) in _MISSING_CODES:
                raise FileNotFoundError(f"no media under key {key!r}") from exc
            raise StorageUnavailable(
                f"S3 {operation} failed for {where}: {_error_code(exc) or exc}"
            ) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {operation} failed for {where}: {exc}") from exc

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        object_key = self.object_key(key)
        # A single PutObject is atomic: readers see the old object or the new one, never part.
        with self._translate("put_object"):
            self.writer.put_object(
                Bucket=self.bucket,
                Key=object_key,
                Body=data,
                ContentType=content_type,
                CacheControl=IMMUTABLE_CACHE_CONTROL,
            )

    def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        object_key = self.object_key(key)
        # upload_file switches to a multipart upload past 8 MB; S3 shows the object only once
        # complete, so readers still see all or nothing.
        with self._translate("upload_file"):
            self.writer.upload_file(
                str(source),
                self.bucket,
                object_key,
                ExtraArgs={"ContentType": content_type, "CacheControl": "private, no-store"},
            )

    def get_file(self, key: str, target: Path) -> None:
        object_key = self.object_key(key)

        def download() -> None:
            with open(target, "wb") as out:  # a retry starts the file again
                response = self.client.get_object(Bucket=self.bucket, Key=object_key)
                for chunk in response["Body"].iter_chunks(1024 * 1024):
                    out.write(chunk)

        with self._translate("get_object", key):
            prompt_calls.prompt_call(download)

    def presigned_post(
        self, key: str, *, max_bytes: int, content_type: str, expires_s: int
    ) -> tuple[str, dict[str, str]] | None:
        # Signing is local (no request): the policy is checked by S3 when the form arrives.
        object_key = self.object_key(key)
        with self._translate("generate_presigned_post"):
            post = self.client.generate_presigned_post(
                Bucket=self.bucket,
                Key=object_key,
                Fields={"Content-Type": content_type},
                Conditions=[
                    {"Content-Type": content_type},
                    ["content-length-range", 1, max_bytes],
                ],
                ExpiresIn=expires_s,
            )
        return str(post["url"]), {name: str(value) for name, value in post["fields"].items()}

    def get(self, key: str) -> bytes:
        object_key = self.object_key(key)

        def read() -> bytes:
            return self.client.get_object(Bucket=self.bucket, Key=object_key)["Body"].read()

        with self._translate("get_object", key):
            return prompt_calls.prompt_call(read)

    def exists(self, key: str) -> bool:
        object_key = self.object_key(key)
        try:
            with self._translate("head_object", key):
                prompt_calls.prompt_call(
                    lambda: self.client.head_object(Bucket=self.bucket, Key=object_key)
                )
        except FileNotFoundError:
            return False
        return True

    def local_path(self, key: str) -> Path | None:
        """Always None: objects live in S3, browsers fetch them from ``url``."""
        return None

    def url(self, key: str) -> str:
        object_key = self.object_key(key)
        if self.media_base_url is not None:
            return self.media_base_url + validate_key(key)
        with self._translate("presign"):
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": object_key},
                ExpiresIn=SIGNED_URL_SECONDS,
            )

    def download_url(self, key: str, filename: str, *, content_type: str) -> str | None:
        """A presigned GET whose response S3 sends as an attachment named ``filename``
        (``response-content-disposition``): browsers ignore ``download=`` across origins, so
        the name must come with the response. Signed against S3 itself, never the CDN base
        URL: a CDN would cache one disposition for every name."""
        object_key = self.object_key(key)
        disposition = attachment_disposition(filename)
        with self._translate("presign"):
            return self.client.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": object_key,
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": content_type,
                },
                ExpiresIn=SIGNED_URL_SECONDS,
            )

    @property
    def urls_are_public(self) -> bool:
        return self.media_base_url is not None

    def delete(self, key: str) -> None:
        object_key = self.object_key(key)
        # DeleteObject succeeds for a missing key, so idempotence comes from S3 itself.
        with self._translate("delete_object"):
            self.writer.delete_object(Bucket=self.bucket, Key=object_key)

    def list(self, prefix: str) -> Iterator[StoredBlob]:
        if prefix:
            validate_key(prefix.rstrip("/"))
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        while True:  # page by page, each a prompt call of its own
            with self._translate("list_objects_v2"):
                page = prompt_calls.prompt_call(lambda: self.client.list_objects_v2(**params))
            for item in page.get("Contents", []):
                yield StoredBlob(
                    item["Key"].removeprefix(self.prefix),
                    item["LastModified"].timestamp(),
                    item["Size"],
                )
            if not page.get("IsTruncated"):
                return
            params["ContinuationToken"] = page["NextContinuationToken"]

    def setup(self) -> None:
        with self._translate("create_bucket"):
            region = self.writer.meta.region_name
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            # us-east-1 is S3's default location and refuses an explicit LocationConstraint.
            if region and region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            try:
                self.writer.create_bucket(**kwargs)
            except ClientError as exc:
                if _error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise

    def check(self) -> None:
        with self._translate("head_bucket"):
            prompt_calls.prompt_call(lambda: self.client.head_bucket(Bucket=self.bucket))
