"""StackConfig: what the operator may set through CDK context, and what it refuses."""

from __future__ import annotations

import pytest

from deploy.loopmark_stack.config import ConfigError, StackConfig

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc-123"


def test_defaults() -> None:
    config = StackConfig()
    assert (config.stage, config.renderer_reserved_concurrency, config.retain_data) == (
        "prod",
        100,
        True,
    )
    assert config.parameter_prefix == "/loopmark/prod"
    assert config.stack_name == "Loopmark-prod"


@pytest.mark.parametrize(
    "settings",
    [
        {"stage": "Prod"},
        {"stage": "a/b"},
        {"domain_name": "gif.example.com"},
        {"certificate_arn": CERTIFICATE},
        {
            "domain_name": "gif.example.com",
            "certificate_arn": CERTIFICATE.replace("us-east-1", "eu-west-1"),
        },
        {"renderer_reserved_concurrency": 0},
    ],
)
def test_refuses(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        StackConfig(**settings)  # type: ignore[arg-type]


def test_from_context() -> None:
    import aws_cdk as cdk

    app = cdk.App(
        context={
            "stage": "staging",
            "domainName": "gif.example.com",
            "certificateArn": CERTIFICATE,
            "rendererReservedConcurrency": "none",
            "retainData": "false",
            "alarmEmail": "ops@example.com",
        }
    )
    config = StackConfig.from_context(app.node)
    assert config.stage == "staging"
    assert config.domain_name == "gif.example.com"
    assert config.renderer_reserved_concurrency is None
    assert config.retain_data is False
    assert config.alarm_email == "ops@example.com"
    with pytest.raises(ConfigError):
        StackConfig.from_context(cdk.App(context={"retainData": "maybe"}).node)
