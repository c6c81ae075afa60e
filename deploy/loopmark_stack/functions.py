"""The renderer and the site as Lambda functions from the repository's container image (the
site is a ContainerFunction of SITE_SHAPE with a function URL, which CloudFront alone is meant
to call: see cdn.py).

Each function gets a role of its own (no managed policies: logging is granted on its own log
group only), a log group with a set retention, and the environment the app reads. The images
are the Containerfile's targets ``renderer`` and ``site`` (handlers
``loopmark.lambda_entry.handle`` and ``loopmark.lambda_entry.site`` through awslambdaric); at
synth time CDK only stages the build context into cdk.out, and ``cdk deploy`` builds and pushes.
SCALE.md explains the sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, Size
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import CONTAINERFILE

RENDERER_TARGET = "renderer"
SITE_TARGET = "site"
DATA_DIR = "/tmp/loopmark"  # Lambda's only writable directory

# Lambda retries a failed asynchronous render twice; the lease makes a retry safe. An event
# older than this is dropped to the DLQ rather than rendered long after its visitor left.
RENDERER_MAX_EVENT_AGE = Duration.hours(1)
RENDERER_RETRY_ATTEMPTS = 2
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
DLQ_RETENTION = Duration.days(14)

# The build context is the repository; only what an image can need is staged into cdk.out.
IMAGE_CONTEXT_EXCLUDES = (
    ".git",
    ".venv",
    "var",
    "deploy",
    "tests",
    "bench",
    "node_modules",
    "**/__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "*.egg-info",
    "build",
    "dist",
    "test-artifacts",
    ".coverage",
)


@dataclass(frozen=True)
class FunctionShape:
    """Which image target a function runs, and how big it is (SCALE.md explains the sizes)."""

    target: str
    description: str
    memory_mb: int
    timeout: Duration
    ephemeral_storage: Size


# (target, description, memory MB, timeout, /tmp size)
RENDERER_SHAPE = FunctionShape(
    RENDERER_TARGET,
    "Loopmark renderer: one caption render per asynchronous event",
    2048,
    Duration.seconds(60),
    Size.mebibytes(1024),
)
# CloudFront waits 30 s for a custom origin by default; the site answers long before.
SITE_SHAPE = FunctionShape(
    SITE_TARGET,
    "Loopmark site: pages, API, GraphQL, admin",
    1024,
    Duration.seconds(30),
    Size.mebibytes(1024),
)


@dataclass(frozen=True)
class ImageSource:
    directory: Path
    base_image: str | None

    def code(self, target: str) -> lambda_.DockerImageCode:
        return lambda_.DockerImageCode.from_image_asset(
            str(self.directory),
            file=CONTAINERFILE,
            target=target,
            build_args={"BASE_IMAGE": self.base_image} if self.base_image else None,
            platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=list(IMAGE_CONTEXT_EXCLUDES),
            ignore_mode=IgnoreMode.DOCKER,
        )


class ContainerFunction(Construct):
    """A Lambda function from one target of the image, with its own role and log group."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ImageSource,
        shape: FunctionShape,
        environment: Mapping[str, str],
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=LOG_RETENTION)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Loopmark {shape.target}: its log group, bucket prefix, table, parameters",
        )
        self.function = lambda_.DockerImageFunction(
            self,
            "Function",
            code=image.code(shape.target),
            description=shape.description,
            architecture=lambda_.Architecture.X86_64,
            memory_size=shape.memory_mb,
            timeout=shape.timeout,
            ephemeral_storage_size=shape.ephemeral_storage,
            environment=dict(environment),
            role=self.role,
            log_group=self.log_group,
            reserved_concurrent_executions=reserved_concurrency,
        )
        # CreateLogStream and PutLogEvents on this log group only (no AWSLambdaBasicExecutionRole).
        self.log_group.grant_write(self.role)


def renderer_environment(storage_url: str, records_url: str) -> dict[str, str]:
    """What both functions share: the backends, templates from storage, scratch space in /tmp."""
    return {
        "LOOPMARK_STORAGE": storage_url,
        "LOOPMARK_RECORDS": records_url,
        "LOOPMARK_TEMPLATES_SOURCE": "storage",
        "LOOPMARK_DATA_DIR": DATA_DIR,
    }


class Renderer(Construct):
    """Renders one job per asynchronous invocation; failed events go to a dead-letter queue."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        image: ImageSource,
        environment: Mapping[str, str],
        reserved_concurrency: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=DLQ_RETENTION,
        )
        self.container = ContainerFunction(
            self,
            "Renderer",
            image=image,
            shape=RENDERER_SHAPE,
            environment=environment,
            reserved_concurrency=reserved_concurrency,
        )
        self.function = self.container.function
        self.function.configure_async_invoke(
            on_failure=destinations.SqsDestination(self.dead_letters),
            max_event_age=RENDERER_MAX_EVENT_AGE,
            retry_attempts=RENDERER_RETRY_ATTEMPTS,
        )
