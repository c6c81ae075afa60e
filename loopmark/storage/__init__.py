"""Media storage: the BlobStore port and the factory that picks its adapter from configuration."""

from __future__ import annotations

from loopmark.errors import ConfigInvalid, StorageUnavailable
from loopmark.storage.base import BlobStore, validate_key
from loopmark.storage.local import FILE_SCHEME, LocalBlobStore

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "StorageUnavailable",
    "open_blob_store",
    "validate_key",
]


def open_blob_store(url: str, *, media_base_url: str | None = None) -> BlobStore:
    """The adapter for ``LOOPMARK_STORAGE``: ``file://DIR`` (local files) or
    ``s3://bucket/prefix`` (S3). Makes no directory, bucket or connection: see ``setup``."""
    if url.startswith(FILE_SCHEME):
        return LocalBlobStore.from_url(url, media_base_url=media_base_url)
    if url.startswith("s3://"):
        # Imported here so local runs and the CLI's start-up never pay for importing boto3.
        from loopmark.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url, media_base_url=media_base_url)
    raise ConfigInvalid(
        f"LOOPMARK_STORAGE must be file:///abs/dir, file://./rel/dir or s3://bucket/prefix, "
        f"got {url!r}"
    )
