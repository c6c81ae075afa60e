"""CDN purge hook for take-downs: a no-op locally, a CloudFront invalidation on AWS.

``LOOPMARK_CDN_PURGE`` = ``cloudfront://DISTRIBUTION_ID`` turns it on. Media keys are
content-addressed and immutable, so the only time the CDN must forget one is a take-down.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Protocol

from loopmark.errors import ConfigInvalid, StorageUnavailable

log = logging.getLogger(__name__)

CLOUDFRONT_SCHEME = "cloudfront://"


class CdnPurge(Protocol):
    def __call__(self, paths: Sequence[str]) -> None: ...


class NoPurge:
    """Local media are deleted from disk; there is no cache in front of them to purge."""

    def __call__(self, paths: Sequence[str]) -> None:
        log.info("no CDN configured; nothing to purge for %d paths", len(paths))


class CloudFrontPurge:
    def __init__(self, distribution_id: str) -> None:
        self.distribution_id = distribution_id

    def __call__(self, paths: Sequence[str]) -> None:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            boto3.client("cloudfront").create_invalidation(
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(paths), "Items": ["/" + p for p in paths]},
                    "CallerReference": f"loopmark-{int(time.time())}-{uuid.uuid4().hex[:8]}",
                },
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable("the CDN purge failed; try the take-down again") from exc


def open_cdn_purge(url: str | None) -> CdnPurge:
    if not url:
        return NoPurge()
    if url.startswith(CLOUDFRONT_SCHEME) and len(url) > len(CLOUDFRONT_SCHEME):
        return CloudFrontPurge(url[len(CLOUDFRONT_SCHEME) :])
    raise ConfigInvalid(f"LOOPMARK_CDN_PURGE must be cloudfront://DISTRIBUTION_ID, not {url!r}")
