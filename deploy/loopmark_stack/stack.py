"""LoopmarkStack: the constructs wired together, the environment each function reads, and the
outputs ``make deploy`` reads back."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from . import nag, names
from .alarms import Alarms
from .cdn import Cdn
from .config import StackConfig
from .functions import SITE_SHAPE, ContainerFunction, ImageSource, Renderer, renderer_environment
from .records import RecordsTable
from .settings import ParameterNames, PublishedSettings
from .storage import INCOMING_PREFIX, MEDIA_PREFIX, MediaStorage, grant_incoming_delete

# CloudFront is the one proxy in front of the site.
PROXY_HOPS = "1"
TRUSTED_PROXIES = "*"
# Site settings read from SSM at start (see settings.py for why each is there).
SITE_PARAMETERS = {
    "LOOPMARK_SECRET_KEY": names.SECRET_KEY,
    "LOOPMARK_ORIGIN_VERIFY": names.ORIGIN_VERIFY,
    "LOOPMARK_SITE_URL": names.SITE_URL,
    "LOOPMARK_MEDIA_BASE_URL": names.MEDIA_BASE_URL,
    "LOOPMARK_CDN_PURGE": names.CDN_PURGE,
}

# The site's scheduled requeue (loopmark.lambda_entry.scheduled): the event it is sent, and how
# often. A render whose every Lambda event failed (or was dropped to the dead-letter queue) is
# otherwise dispatched again only when somebody polls it.
REQUEUE_EVENT = {"loopmark": "requeue"}
REQUEUE_EVERY = Duration.minutes(5)


class LoopmarkStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(
            scope, construct_id, description=f"Loopmark ({config.stage}): branded GIF micro-site"
        )
        parameters = ParameterNames(config.parameter_prefix)
        image = ImageSource(config.image_directory, config.base_image)
        # Without a domain of its own the site lives at <id>.cloudfront.net, unknown until the
        # distribution exists; CORS cannot name it without a cycle (bucket → distribution →
        # bucket), so it allows CloudFront's domain pattern.
        site_origin = f"https://{config.domain_name or '*.cloudfront.net'}"

        self.storage = MediaStorage(
            self, "Storage", site_origin=site_origin, retain=config.retain_data
        )
        self.records = RecordsTable(self, "Records", retain=config.retain_data)
        shared_environment = renderer_environment(
            self.storage.storage_url, self.records.records_url
        )

        self.renderer = Renderer(
            self,
            "Render",
            image=image,
            environment=shared_environment,
            reserved_concurrency=config.renderer_reserved_concurrency,
        )
        self.storage.grant_app(self.renderer.function, delete=False)
        grant_incoming_delete(self.storage, self.renderer.function)
        self.records.grant_app(self.renderer.function)

        site_environment = {
            **shared_environment,
            "LOOPMARK_DISPATCH": f"lambda://{self.renderer.function.function_name}",
            "LOOPMARK_PROXY_HOPS": PROXY_HOPS,
            # CloudFront reaches the function URL from its own (public, changing) addresses;
            # the origin secret (LOOPMARK_ORIGIN_VERIFY) already refuses anyone else.
            "LOOPMARK_TRUSTED_PROXIES": TRUSTED_PROXIES,
            **{variable: parameters.reference(leaf) for variable, leaf in SITE_PARAMETERS.items()},
        }
        self.site = ContainerFunction(
            self, "Site", image=image, shape=SITE_SHAPE, environment=site_environment
        )
        site_url = self.site.function.add_function_url(auth_type=lambda_.FunctionUrlAuthType.NONE)
        self.storage.grant_app(self.site.function, delete=True)
        self.records.grant_app(self.site.function)
        # The dispatcher invokes the function by name: no version or alias ARNs (":*").
        self.site.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="DispatchRenders",
                actions=["lambda:InvokeFunction"],
                resources=[self.renderer.function.function_arn],
            )
        )
        parameters.grant_read(self, self.site.function, *SITE_PARAMETERS.values())
        events.Rule(
            self,
            "Requeue",
            description="Loopmark: dispatch again the renders accepted but never finished",
            schedule=events.Schedule.rate(REQUEUE_EVERY),
            targets=[
                targets.LambdaFunction(
                    self.site.function,
                    event=events.RuleTargetInput.from_object(REQUEUE_EVENT),
                    # The next schedule is the retry: an event never waits longer than that.
                    max_event_age=REQUEUE_EVERY,
                    retry_attempts=0,
                )
            ],
        )

        self.cdn = Cdn(
            self,
            "Cdn",
            bucket=self.storage.bucket,
            site_url=site_url,
            origin_verify=parameters.dynamic_reference(names.ORIGIN_VERIFY),
            log_bucket=self.storage.log_bucket,
            domain_name=config.domain_name,
            certificate_arn=config.certificate_arn,
        )
        # Outside the role's own scope, so the site function does not wait for it: the
        # function → role → distribution → function URL → function cycle never forms.
        iam.Policy(
            self,
            "SiteInvalidatesCdn",
            roles=[self.site.role],
            statements=[self.cdn.invalidation_statement()],
        )
        PublishedSettings(
            self,
            "Published",
            names=parameters,
            site_url=self.cdn.site_url,
            media_base_url=self.cdn.media_base_url,
            distribution_id=self.cdn.distribution.distribution_id,
        )
        self.alarms = Alarms(
            self,
            "Alarms",
            renderer=self.renderer.function,
            dead_letters=self.renderer.dead_letters,
            table=self.records.table,
            site=self.site.function,
            email=config.alarm_email,
        )

        outputs = {
            names.OUTPUT_SITE_URL: self.cdn.site_url,
            names.OUTPUT_DISTRIBUTION_ID: self.cdn.distribution.distribution_id,
            names.OUTPUT_BUCKET: self.storage.bucket.bucket_name,
            names.OUTPUT_STORAGE_URL: self.storage.storage_url,
            names.OUTPUT_TABLE: self.records.table.table_name,
            names.OUTPUT_RECORDS_URL: self.records.records_url,
            names.OUTPUT_RENDERER: self.renderer.function.function_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

        for role in (self.renderer.container.role, self.site.role):
            nag.acknowledge_app_grants(role, self.storage.bucket, self.records.table, MEDIA_PREFIX)
        nag.acknowledge_incoming_delete(
            self.renderer.container.role, self.storage.bucket, f"{MEDIA_PREFIX}/{INCOMING_PREFIX}"
        )
        nag.acknowledge_distribution(
            self.cdn.distribution, custom_domain=config.domain_name is not None
        )
        nag.acknowledge_dead_letter_queue(self.renderer.dead_letters)
