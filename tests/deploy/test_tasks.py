"""deploy/tasks.py against moto's server: the parameters made before the stack, the environment
the app's commands run with after it, and the buckets emptied before a destroy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pytest

from deploy import tasks

STAGE = "test"


def test_ensure_secrets_makes_missing_parameters_once_and_prints_no_value(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = boto3.client("ssm")
    assert tasks.main(["ensure-secrets", "--stage", STAGE]) == 0
    key = ssm.get_parameter(Name="/loopmark/test/secret-key", WithDecryption=True)["Parameter"]
    assert key["Type"] == "SecureString"
    assert len(key["Value"]) == 64 and int(key["Value"], 16) >= 0
    verify = ssm.get_parameter(Name="/loopmark/test/origin-verify")["Parameter"]
    assert verify["Type"] == "String"
    first = capsys.readouterr().out
    assert key["Value"] not in first and verify["Value"] not in first
    assert "created /loopmark/test/secret-key" in first

    assert tasks.main(["ensure-secrets", "--stage", STAGE]) == 0
    again = ssm.get_parameter(Name="/loopmark/test/secret-key", WithDecryption=True)
    assert again["Parameter"]["Value"] == key["Value"]  # a live key is never replaced
    assert "kept /loopmark/test/secret-key" in capsys.readouterr().out


def test_after_deploy_environment_and_commands() -> None:
    outputs = {"StorageUrl": "s3://media-bucket/media", "RecordsUrl": "dynamodb://records"}
    env = tasks.app_environment(outputs, {"PATH": "/bin", "LOOPMARK_DEBUG": ""})
    assert env["LOOPMARK_STORAGE"] == "s3://media-bucket/media"
    assert env["LOOPMARK_RECORDS"] == "dynamodb://records"
    assert Path(env["LOOPMARK_TEMPLATES_DIR"]).name == "templates_video"
    loopmark = str(Path(sys.executable).parent / "loopmark")
    assert tasks.after_deploy_commands(None) == [
        [loopmark, "setup"],
        [loopmark, "templates", "push"],
    ]
    assert tasks.after_deploy_commands("ada")[-1] == [loopmark, "admin", "create-user", "ada"]


def test_outputs_are_read_from_the_stack(aws: str) -> None:
    cloudformation = boto3.client("cloudformation")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"StorageUrl": {"Value": "s3://b/media"}},
    }
    cloudformation.create_stack(StackName="Loopmark-test", TemplateBody=json.dumps(template))
    assert tasks.stack_outputs(STAGE, cloudformation) == {"StorageUrl": "s3://b/media"}


def test_before_destroy_empties_only_buckets_the_stack_deletes(aws: str) -> None:
    s3 = boto3.client("s3")
    template = {
        "Resources": {
            "Kept": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Retain"},
            "Doomed": {"Type": "AWS::S3::Bucket", "DeletionPolicy": "Delete"},
        }
    }
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(StackName="Loopmark-test", TemplateBody=json.dumps(template))
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName="Loopmark-test")[
            "StackResources"
        ]
    }
    for bucket in physical.values():
        for n in range(3):
            s3.put_object(Bucket=bucket, Key=f"media/r/{n}", Body=b"x")
    tasks.before_destroy(STAGE, cloudformation, s3)
    assert "Contents" not in s3.list_objects_v2(Bucket=physical["Doomed"])
    assert s3.list_objects_v2(Bucket=physical["Kept"])["KeyCount"] == 3


def test_before_destroy_without_a_stack_does_nothing(
    aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tasks.main(["before-destroy", "--stage", STAGE]) == 0
    assert "nothing to empty" in capsys.readouterr().out


def test_bad_stage_is_refused() -> None:
    assert tasks.main(["ensure-secrets", "--stage", "Prod/x"]) == 2
