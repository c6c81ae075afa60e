"""The CDK app: ``cdk synth`` / ``cdk deploy`` run this (deploy/cdk.json). One stack,
``Loopmark-<stage>``, checked by cdk-nag's AwsSolutions rules on every synth.

It needs no AWS account to synthesize: the stack is environment-agnostic (account and region
come from the credentials at deploy time), and container images are only staged, not built.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

# Imported as deploy.app (the tests; mypy reads this branch, deploy/ being a package), or run as
# a script from deploy/ (cdk.json), with deploy/ on the path.
if TYPE_CHECKING or __package__:
    from .loopmark_stack.config import CONTAINERFILE, ConfigError, StackConfig
    from .loopmark_stack.stack import LoopmarkStack
else:
    from loopmark_stack.config import CONTAINERFILE, ConfigError, StackConfig
    from loopmark_stack.stack import LoopmarkStack


def build(app: cdk.App) -> LoopmarkStack:
    """The stack, with the nag checks attached (they run when the app synthesizes)."""
    config = StackConfig.from_context(app.node)
    if not (Path(config.image_directory) / CONTAINERFILE).is_file():
        raise ConfigError(
            f"no {CONTAINERFILE} in {config.image_directory}: the images are built from its "
            "targets 'renderer' and 'site'"
        )
    stack = LoopmarkStack(app, config.stack_name, config=config)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return stack


def main() -> int:
    app = cdk.App()
    try:
        build(app)
    except ConfigError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
