"""What `make deploy` and `make destroy` do around the CDK CLI, with boto3 (no CDK import):

- ``ensure-secrets``: before the stack, make the parameters CloudFormation cannot (a SecureString)
  or should not (a random value it would keep in the template): ``/loopmark/<stage>/secret-key``
  (SecureString, 64 hex characters) and ``/loopmark/<stage>/origin-verify`` (String, read by
  CloudFront through a dynamic reference). Existing values are kept; no value is ever printed.
- ``after-deploy``: read the stack's outputs, then run ``loopmark setup`` and ``loopmark
  templates push`` against the deployed bucket and table, and ``loopmark admin create-user
  NAME`` when ``--admin`` is given (its password from this process's standard input).
- ``before-destroy``: empty the buckets the deployed stack will delete (deployed with
  ``-c retainData=false``); retained buckets are left alone.

Exit status 0 on success, 2 with one line on bad input, 1 with one line when AWS fails.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

# Plain constants, no CDK import. Imported as deploy.tasks (the tests; mypy reads this branch),
# or run as a script (make deploy), with its folder on the path.
if TYPE_CHECKING or __package__:
    from .loopmark_stack import names
else:
    from loopmark_stack import names

SECRET_BYTES = 32  # 64 hex characters; the app wants at least 32
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


class TaskFailed(Exception):
    """One line for the operator; exit status 1."""


def _client(service: Literal["cloudformation", "s3", "ssm"]) -> Any:
    import boto3

    return boto3.session.Session().client(service)


def ensure_secrets(stage: str, ssm: Any) -> list[str]:
    """Create each pre-deploy parameter that is missing; report what was done, never a value."""
    from botocore.exceptions import ClientError

    done = []
    for leaf, secure in names.PRE_DEPLOY_PARAMETERS:
        name = f"{names.parameter_prefix(stage)}/{leaf}"
        try:
            ssm.put_parameter(
                Name=name,
                Value=secrets.token_hex(SECRET_BYTES),
                Type="SecureString" if secure else "String",
                Overwrite=False,  # never replace a live key: that would end every admin session
                Description=f"Loopmark {stage}: made by deploy/tasks.py ensure-secrets",
            )
            done.append(f"created {name}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterAlreadyExists":
                raise
            done.append(f"kept {name}")
    return done


def stack_outputs(stage: str, cloudformation: Any) -> dict[str, str]:
    stacks = cloudformation.describe_stacks(StackName=names.stack_name(stage))["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def app_environment(outputs: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """The environment ``loopmark`` commands run with against the deployed backends."""
    env = dict(base)
    env["LOOPMARK_STORAGE"] = outputs[names.OUTPUT_STORAGE_URL]
    env["LOOPMARK_RECORDS"] = outputs[names.OUTPUT_RECORDS_URL]
    env.setdefault("LOOPMARK_TEMPLATES_DIR", str(REPOSITORY_ROOT / "templates_video"))
    return env


def after_deploy_commands(admin: str | None) -> list[list[str]]:
    loopmark = str(Path(sys.executable).parent / "loopmark")
    commands = [[loopmark, "setup"], [loopmark, "templates", "push"]]
    if admin:
        commands.append([loopmark, "admin", "create-user", admin])
    return commands


def after_deploy(stage: str, admin: str | None, cloudformation: Any) -> None:
    outputs = stack_outputs(stage, cloudformation)
    env = app_environment(outputs, os.environ)
    for command in after_deploy_commands(admin):
        # The admin's password comes from our standard input, which the command inherits.
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise TaskFailed(f"{' '.join(command[1:])} failed")
    print(f"site: {outputs[names.OUTPUT_SITE_URL]}")


def buckets_to_empty(
    template: Mapping[str, Any], resources: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Physical names of the stack's buckets whose DeletionPolicy lets CloudFormation delete them
    (it cannot delete a bucket that still holds objects)."""
    doomed = {
        logical
        for logical, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::S3::Bucket"
        and resource.get("DeletionPolicy", "Delete") == "Delete"
    }
    return [
        r["PhysicalResourceId"]
        for r in resources
        if r.get("LogicalResourceId") in doomed and r.get("PhysicalResourceId")
    ]


def empty_bucket(bucket: str, s3: Any) -> int:
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            deleted += len(keys)
    return deleted


def before_destroy(stage: str, cloudformation: Any, s3: Any) -> None:
    from botocore.exceptions import ClientError

    stack = names.stack_name(stage)
    try:
        template = cloudformation.get_template(StackName=stack, TemplateStage="Processed")
    except ClientError as exc:
        if "does not exist" in str(exc):
            print(f"no stack {stack}: nothing to empty")
            return
        raise
    body = template["TemplateBody"]
    resources = cloudformation.describe_stack_resources(StackName=stack)["StackResources"]
    for bucket in buckets_to_empty(body if isinstance(body, dict) else {}, resources):
        print(f"emptied {bucket}: {empty_bucket(bucket, s3)} objects")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy/tasks.py", description=__doc__.split("\n")[0])
    parser.add_argument("task", choices=["ensure-secrets", "after-deploy", "before-destroy"])
    parser.add_argument("--stage", default="prod")
    parser.add_argument("--admin", help="after-deploy: create this admin user")
    args = parser.parse_args(argv)
    if names.STAGE_PATTERN.fullmatch(args.stage) is None:
        print(f"tasks: --stage must match {names.STAGE_PATTERN.pattern}", file=sys.stderr)
        return 2
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        if args.task == "ensure-secrets":
            for line in ensure_secrets(args.stage, _client("ssm")):
                print(line)
        elif args.task == "after-deploy":
            after_deploy(args.stage, args.admin, _client("cloudformation"))
        else:
            before_destroy(args.stage, _client("cloudformation"), _client("s3"))
    except (BotoCoreError, ClientError, TaskFailed) as exc:
        print(f"tasks {args.task}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
