"""Settings and secrets in SSM Parameter Store: their names, their exact ARNs, and read grants.

The app resolves a ``LOOPMARK_*`` value written ``ssm:/path`` at start (GetParameter with
decryption, cached). Two kinds of parameter live under ``/loopmark/<stage>/``:

- made before the stack by ``deploy/tasks.py ensure-secrets`` (CloudFormation cannot create a
  SecureString, and a value CloudFormation generated would sit in the template): the session
  key (SecureString) and the origin-verify token CloudFront sends to the site (String, because
  CloudFront reads it through a ``{{resolve:ssm:...}}`` dynamic reference, which takes Strings);
- written by the stack once the distribution exists: the site's public URL, its media base URL
  and the CDN purge target. The site reads these at start instead of from its environment,
  which is what breaks the cycle site → distribution → site origin → site.

Read grants name each parameter's ARN, built from its literal name: no wildcard, and no reference
to the parameter resources (a reference would bring the cycle back). The SecureString uses the
AWS managed key aws/ssm, whose key policy already lets every principal of the account decrypt
through Parameter Store, so no kms:Decrypt is granted (Systems Manager user guide, "Restricting
decryption of SecureString parameter values").
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from .names import CDN_PURGE, MEDIA_BASE_URL, SITE_URL

SSM_PREFIX = "ssm:"


@dataclass(frozen=True)
class ParameterNames:
    prefix: str

    def name(self, leaf: str) -> str:
        return f"{self.prefix}/{leaf}"

    def reference(self, leaf: str) -> str:
        """The value a LOOPMARK_* variable carries so the app reads the parameter at start."""
        return SSM_PREFIX + self.name(leaf)

    def arn(self, scope: Construct, leaf: str) -> str:
        # The ARN of /a/b is ...:parameter/a/b (the name's leading slash is the separator).
        return Stack.of(scope).format_arn(
            service="ssm",
            resource="parameter",
            resource_name=self.name(leaf).lstrip("/"),
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    def dynamic_reference(self, leaf: str) -> str:
        """A CloudFormation dynamic reference: the String's value, read at deploy time."""
        return "{{resolve:ssm:" + self.name(leaf) + "}}"

    def grant_read(self, scope: Construct, grantee: iam.IGrantable, *leaves: str) -> None:
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadLoopmarkParameters",
                actions=["ssm:GetParameter"],
                resources=[self.arn(scope, leaf) for leaf in leaves],
            )
        )


class PublishedSettings(Construct):
    """The String parameters the stack writes once the distribution exists."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ParameterNames,
        site_url: str,
        media_base_url: str,
        distribution_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        values = {
            SITE_URL: (site_url, "The site's public origin (LOOPMARK_SITE_URL)"),
            MEDIA_BASE_URL: (media_base_url, "Where media are fetched (LOOPMARK_MEDIA_BASE_URL)"),
            CDN_PURGE: (
                "cloudfront://" + distribution_id,
                "The CDN a take-down invalidates (LOOPMARK_CDN_PURGE)",
            ),
        }
        for leaf, (value, description) in values.items():
            ssm.StringParameter(
                self,
                leaf.title().replace("-", ""),
                parameter_name=names.name(leaf),
                string_value=value,
                description=description,
            )
