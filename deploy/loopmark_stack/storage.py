"""MediaStorage: the private media bucket (and the log bucket its access logs and CloudFront's
standard logs go to), with the grants the renderer and the site need.

The app stores everything under one key prefix, ``LOOPMARK_STORAGE=s3://<bucket>/media``: render
media at ``media/r/<2>/<key>/…`` and pushed templates at ``media/templates/…``. CloudFront's
``/media/*`` behaviour reaches the bucket with no origin path, so ``/media/r/…`` is the object
``media/r/…``: the media base URL ``https://<cdn>/media/`` maps onto keys with no rewriting. The
bucket policy lets CloudFront read ``media/r/*`` only, so templates are never served.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

MEDIA_PREFIX = "media"
PUBLIC_MEDIA_PREFIX = f"{MEDIA_PREFIX}/r/"
# Objects the app writes for a short while (uploads before processing, scratch files).
# "incoming/": visitors' uploads and their clips' descriptions (service.uploads, which also
# deletes an upload once processed; `loopmark gc` after an hour).
INCOMING_PREFIX = "incoming/"
TEMPORARY_PREFIXES = ("tmp/", "uploads/", INCOMING_PREFIX)
TEMPORARY_OBJECT_DAYS = 1
LOG_RETENTION_DAYS = 90
CORS_MAX_AGE_SECONDS = 3000


class MediaStorage(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, site_origin: str, retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain else RemovalPolicy.DESTROY
        # Both buckets: no public access, SSE-S3, TLS only, kept or deleted with the data.
        private: dict[str, Any] = {
            "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
            "encryption": s3.BucketEncryption.S3_MANAGED,
            "enforce_ssl": True,
            "removal_policy": removal,
        }
        self.log_bucket = s3.Bucket(
            self,
            "Logs",
            # CloudFront's standard logs are delivered with an ACL grant; S3's access logs use
            # the bucket policy.
            object_ownership=s3.ObjectOwnership.OBJECT_WRITER,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(LOG_RETENTION_DAYS))],
            **private,
        )
        self.bucket = s3.Bucket(
            self,
            "Media",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="media-bucket/",
            # Pages are same-origin with the media (one distribution); CORS covers a browser
            # reading a media object from script on the site's origin, and its presigned POST
            # of a visitor's upload (the signed policy decides key, type and size), nothing else.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=[site_origin],
                    max_age=CORS_MAX_AGE_SECONDS,
                ),
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=[site_origin],
                    allowed_headers=["*"],
                    max_age=CORS_MAX_AGE_SECONDS,
                ),
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="abort-incomplete-uploads",
                    abort_incomplete_multipart_upload_after=Duration.days(TEMPORARY_OBJECT_DAYS),
                ),
                *(
                    s3.LifecycleRule(
                        id="expire-" + prefix.strip("/").replace("/", "-"),
                        prefix=prefix,
                        expiration=Duration.days(TEMPORARY_OBJECT_DAYS),
                    )
                    for prefix in temporary_prefixes()
                ),
            ],
            **private,
        )

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{MEDIA_PREFIX}"

    def grant_app(self, grantee: iam.IGrantable, *, delete: bool) -> None:
        """Read and write objects under the app's prefix; ``delete`` for take-downs (the site).

        ListBucket is there so a HEAD on a missing object answers 404 rather than 403 (the app
        treats 404 as "not stored yet" and anything else as an outage)."""
        actions = ["s3:GetObject", "s3:PutObject"] + (["s3:DeleteObject"] if delete else [])
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MediaObjects",
                actions=actions,
                resources=[self.bucket.arn_for_objects(f"{MEDIA_PREFIX}/*")],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="MediaListing",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
            )
        )


def grant_incoming_delete(storage: MediaStorage, grantee: iam.IGrantable) -> None:
    """Delete visitors' uploads once processed (the renderer, which may not delete media)."""
    grantee.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            sid="DeleteProcessedUploads",
            actions=["s3:DeleteObject"],
            resources=[storage.bucket.arn_for_objects(f"{MEDIA_PREFIX}/{INCOMING_PREFIX}*")],
        )
    )


def temporary_prefixes() -> list[str]:
    """Temporary objects expire wherever the app writes them: under its storage prefix, and at
    the top of the bucket for a presigned upload made outside that prefix."""
    return [f"{MEDIA_PREFIX}/{p}" for p in TEMPORARY_PREFIXES] + list(TEMPORARY_PREFIXES)
