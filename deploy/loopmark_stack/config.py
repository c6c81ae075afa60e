"""StackConfig: every choice the operator makes for a deployment, read from CDK context
(``cdk.json`` defaults, ``-c name=value`` on the command line) in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from constructs import Node

from . import names

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = "Containerfile"
STAGE_PATTERN = names.STAGE_PATTERN
CERTIFICATE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[\w-]+")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigError(ValueError):
    """A context value that cannot be deployed; the message names it."""


@dataclass(frozen=True)
class StackConfig:
    stage: str = "prod"
    # Optional custom domain: both or neither. CloudFront only takes certificates from us-east-1.
    domain_name: str | None = None
    certificate_arn: str | None = None
    # None: the renderer draws on the account's unreserved pool (see SCALE.md).
    renderer_reserved_concurrency: int | None = 100
    # RETAIN the media bucket and the table on `cdk destroy` (and protect the table from deletion).
    retain_data: bool = True
    alarm_email: str | None = None
    # Passed to the Containerfile as BASE_IMAGE when set; its own default otherwise.
    base_image: str | None = None
    image_directory: Path = REPOSITORY_ROOT

    def __post_init__(self) -> None:
        if STAGE_PATTERN.fullmatch(self.stage) is None:
            raise ConfigError(f"stage must match {STAGE_PATTERN.pattern}, got {self.stage!r}")
        if (self.domain_name is None) != (self.certificate_arn is None):
            raise ConfigError("domainName and certificateArn go together: give both or neither")
        if self.certificate_arn and not CERTIFICATE_ARN_PATTERN.fullmatch(self.certificate_arn):
            raise ConfigError(
                "certificateArn must be an ACM certificate in us-east-1 (CloudFront's region), "
                f"got {self.certificate_arn!r}"
            )
        concurrency = self.renderer_reserved_concurrency
        if concurrency is not None and concurrency < 1:
            raise ConfigError("rendererReservedConcurrency must be at least 1, or 'none'")

    @property
    def parameter_prefix(self) -> str:
        """Where this stage's settings live in SSM Parameter Store."""
        return names.parameter_prefix(self.stage)

    @property
    def stack_name(self) -> str:
        return names.stack_name(self.stage)

    @classmethod
    def from_context(cls, node: Node) -> StackConfig:
        def text(name: str) -> str | None:
            value: Any = node.try_get_context(name)
            return None if value is None or str(value).strip() == "" else str(value).strip()

        return cls(
            stage=text("stage") or cls.stage,
            domain_name=text("domainName"),
            certificate_arn=text("certificateArn"),
            renderer_reserved_concurrency=_concurrency(text("rendererReservedConcurrency")),
            retain_data=_flag(text("retainData"), default=True, name="retainData"),
            alarm_email=text("alarmEmail"),
            base_image=text("baseImage"),
            image_directory=Path(text("imageDirectory") or REPOSITORY_ROOT),
        )


def _flag(raw: str | None, *, default: bool, name: str) -> bool:
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _concurrency(raw: str | None) -> int | None:
    if raw is None:
        return StackConfig.renderer_reserved_concurrency
    if raw.lower() == "none":
        return None
    if not raw.isdigit():
        raise ConfigError(f"rendererReservedConcurrency must be a number or none, got {raw!r}")
    return int(raw)
