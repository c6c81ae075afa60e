"""Cdn: one CloudFront distribution in front of the site and the media, HTTPS only.

Behaviours, first match wins:
- ``/media/*``: the bucket through Origin Access Control; CachingOptimized keeps whatever the
  app stored with the object (``public, max-age=31536000, immutable``) up to a year;
- ``/static/*``: the site, CachingOptimized (fingerprinted files carry a year's Cache-Control);
- ``/api/*``, ``/admin*``, ``/graphql``: the site, never cached, every viewer header, cookie and
  query string forwarded except Host (the function URL needs its own);
- default (pages, share pages, downloads, short links): the site, cached for as long as the
  page's own Cache-Control says (nothing when it says nothing), keyed on the query string only.

The site's origin is its function URL with auth type NONE, not Origin Access Control: with OAC
CloudFront signs the origin request and Lambda refuses a POST or PUT unless the viewer itself
sent the body's SHA-256 in ``x-amz-content-sha256`` (CloudFront developer guide, "Restrict access
to an AWS Lambda function URL origin"), which an HTML form (admin login, every admin form) cannot
do. CloudFront instead sends a secret header the app can check (``ORIGIN_VERIFY_HEADER``).
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from .storage import MEDIA_PREFIX, PUBLIC_MEDIA_PREFIX

ORIGIN_VERIFY_HEADER = "X-Loopmark-Origin-Verify"
UNCACHED_PATHS = ("/api/*", "/admin*", "/graphql")
PAGE_MAX_TTL = Duration.days(365)
# A page's language follows Accept-Language and the visitor's choice in this cookie
# (loopmark/web/i18n.py, which says Vary for both): both are in the pages' cache key, so a German
# page is never served to an English visitor.
LANGUAGE_HEADER = "Accept-Language"
LANGUAGE_COOKIE = "loopmark_lang"


class Cdn(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        bucket: s3.Bucket,
        site_url: lambda_.FunctionUrl,
        origin_verify: str,
        log_bucket: s3.IBucket,
        domain_name: str | None,
        certificate_arn: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Given the bucket itself, CDK would let CloudFront read every object; given it as a
        # reference, it leaves the bucket policy alone, and the statement below grants read on
        # the render media only.
        media_origin = origins.S3BucketOrigin.with_origin_access_control(
            s3.Bucket.from_bucket_attributes(
                self,
                "MediaBucket",
                bucket_arn=bucket.bucket_arn,
                bucket_regional_domain_name=bucket.bucket_regional_domain_name,
            )
        )
        site_origin = origins.FunctionUrlOrigin(
            site_url, custom_headers={ORIGIN_VERIFY_HEADER: origin_verify}
        )
        https = cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS
        uncached = cloudfront.BehaviorOptions(
            origin=site_origin,
            viewer_protocol_policy=https,
            allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
            cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
            origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
        )
        pages_cache = cloudfront.CachePolicy(
            self,
            "PagesCache",
            comment="Loopmark pages: as long as their Cache-Control says, keyed on query, language",
            min_ttl=Duration.seconds(0),
            default_ttl=Duration.seconds(0),
            max_ttl=PAGE_MAX_TTL,
            query_string_behavior=cloudfront.CacheQueryStringBehavior.all(),
            header_behavior=cloudfront.CacheHeaderBehavior.allow_list(LANGUAGE_HEADER),
            cookie_behavior=cloudfront.CacheCookieBehavior.allow_list(LANGUAGE_COOKIE),
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
            if certificate_arn
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment="Loopmark: site and media",
            default_behavior=cloudfront.BehaviorOptions(
                origin=site_origin,
                viewer_protocol_policy=https,
                allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                cache_policy=pages_cache,
                origin_request_policy=cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress=True,
            ),
            additional_behaviors={
                f"/{MEDIA_PREFIX}/*": cloudfront.BehaviorOptions(
                    origin=media_origin,
                    viewer_protocol_policy=https,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                    compress=False,  # GIF, MP4 and JPEG are compressed already
                ),
                "/static/*": cloudfront.BehaviorOptions(
                    origin=site_origin,
                    viewer_protocol_policy=https,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD,
                    cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                    compress=True,
                ),
                **{path: uncached for path in UNCACHED_PATHS},
            },
            domain_names=[domain_name] if domain_name else None,
            certificate=certificate,
            # Only a certificate of one's own can raise it; CloudFront's default one is fixed.
            minimum_protocol_version=(
                cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021 if certificate else None
            ),
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_ALL,
            enable_logging=True,
            log_bucket=log_bucket,
            log_file_prefix="cloudfront/",
        )
        # CloudFront (this distribution only) may read the render media, nothing else.
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudFrontReadsRenderMedia",
                actions=["s3:GetObject"],
                principals=[iam.ServicePrincipal("cloudfront.amazonaws.com")],
                resources=[bucket.arn_for_objects(PUBLIC_MEDIA_PREFIX + "*")],
                conditions={"StringEquals": {"AWS:SourceArn": self.distribution_arn}},
            )
        )
        self.domain_name = domain_name or self.distribution.distribution_domain_name
        Validations.of(self.distribution).acknowledge(
            Acknowledgment(
                id="Annotation::@aws-cdk/aws-cloudfront-origins:updateImportedBucketPolicyOac",
                reason="The bucket is referenced on purpose; its policy is written here.",
            )
        )

    @property
    def distribution_arn(self) -> str:
        return Stack.of(self).format_arn(
            service="cloudfront",
            region="",
            resource="distribution",
            resource_name=self.distribution.distribution_id,
        )

    @property
    def site_url(self) -> str:
        return f"https://{self.domain_name}"

    @property
    def media_base_url(self) -> str:
        return f"{self.site_url}/{MEDIA_PREFIX}/"

    def invalidation_statement(self) -> iam.PolicyStatement:
        """Take-downs invalidate this distribution, and only it."""
        return iam.PolicyStatement(
            sid="InvalidateLoopmarkDistribution",
            actions=["cloudfront:CreateInvalidation"],
            resources=[self.distribution_arn],
        )
