"""cdk-nag (AwsSolutions rules) findings this stack accepts, each with the reason it is right here.

cdk-nag 3 runs as a CDK validation plugin: an unacknowledged error fails the synth, and every
finding (acknowledged or not) is written to ``validation-report.json`` in the cloud assembly.
An IAM5 finding names the exact resource pattern it accepts, so a new wildcard elsewhere still
fails.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

PACK = "AwsSolutions::AwsSolutions-"


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=PACK + rule, reason=reason))


def arn_token(resource: IConstruct) -> str:
    """How cdk-nag writes ``Fn::GetAtt [<logical id>, Arn]`` in a finding's id."""
    default_child = resource.node.default_child
    assert isinstance(default_child, CfnResource)
    stack = Stack.of(resource)
    return f"<{stack.resolve(stack.get_logical_id(default_child))}.Arn>"


def acknowledge_app_grants(
    role_policy: IConstruct, bucket: s3.IBucket, table: dynamodb.ITable, media_prefix: str
) -> None:
    """The two wildcards every function's policy needs, scoped to the stack's own resources."""
    acknowledge(
        role_policy,
        f"IAM5[Resource::{arn_token(bucket)}/{media_prefix}/*]",
        "Objects are content-addressed keys made at run time, all under the app's own prefix "
        "of the stack's own bucket; the grant names that bucket and prefix.",
    )
    acknowledge(
        role_policy,
        f"IAM5[Resource::{arn_token(table)}/index/*]",
        "Query on the table's own global secondary indexes (recent renders, caption "
        "statistics); the grant names the stack's own table.",
    )


def acknowledge_incoming_delete(role_policy: IConstruct, bucket: s3.IBucket, prefix: str) -> None:
    acknowledge(
        role_policy,
        f"IAM5[Resource::{arn_token(bucket)}/{prefix}*]",
        "The renderer deletes a visitor's upload once processed; uploads have server-chosen "
        "random keys under the incoming prefix of the stack's own bucket, nothing else.",
    )


def acknowledge_distribution(distribution: IConstruct, *, custom_domain: bool) -> None:
    acknowledge(
        distribution,
        "CFR1",
        "A public promotional site: visitors may come from any country, so no geo restriction.",
    )
    acknowledge(
        distribution,
        "CFR2",
        "No WAF by default: the site rate-limits renders, captions and logins per client IP "
        "itself (Flask-Limiter), and a web ACL costs a fixed monthly fee the operator can add "
        "when a promotion needs it.",
    )
    if not custom_domain:
        acknowledge(
            distribution,
            "CFR4",
            "Without a custom domain the distribution uses CloudFront's default *.cloudfront.net "
            "certificate, whose security policy CloudFront fixes (TLSv1); with domainName and "
            "certificateArn the viewer policy is TLSv1.2_2021.",
        )


def acknowledge_dead_letter_queue(queue: IConstruct) -> None:
    acknowledge(
        queue,
        "SQS3",
        "This queue is itself the renderer's dead-letter destination (Lambda's on-failure "
        "destination for asynchronous invocations); a DLQ of a DLQ has nothing to add.",
    )
