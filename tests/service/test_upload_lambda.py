"""A visitor's clip processed on the Lambda dispatcher: the upload in S3 (moto's server), the
render on `loopmark lambda-local` (the real handler in its own process, its own data folder),
which resolves the clip from its description in the bucket, prepares it and renders it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from loopmark.composition import Services, build_services
from loopmark.config import Settings
from loopmark.service.render_service import media_keys
from loopmark.service.uploads import new_upload_id, source_key
from tests.service.test_aws_path import BUCKET, aws_env, lambda_endpoint

# Generous: preparing a clip at 480 px on a shared two-core machine can take a minute.
PROCESS_SECONDS = 240.0

__all__ = ["lambda_endpoint"]  # the fixture, used by name below


@pytest.fixture
def aws_site(lambda_endpoint: str, tmp_path: Path) -> Iterator[Services]:
    services = build_services(Settings.from_env(aws_env(tmp_path / "site")))
    yield services
    services.render.dispatcher.close()


def test_an_upload_renders_on_lambda_and_its_file_is_deleted(
    aws_site: Services, clip: Path, tmp_path: Path
) -> None:
    upload_id = new_upload_id()
    info = aws_site.uploads.store(upload_id, clip)
    assert (info.width, info.height) == (1280, 720)
    s3 = boto3.client("s3")
    assert s3.head_object(Bucket=BUCKET, Key=f"site/{source_key(upload_id)}")
    outcome = aws_site.uploads.request_render(
        upload_id, start_s=1.0, duration_s=1.0, caption="From Lambda", wait_s=PROCESS_SECONDS
    )
    assert outcome.status == "done", outcome
    assert outcome.template_id.startswith("u-")
    gif = s3.get_object(Bucket=BUCKET, Key=f"site/{media_keys(outcome.key)['gif']}")
    assert gif["Body"].read()[:6] == b"GIF89a"
    # Prepared on the Lambda side (its own data folder), not by the site...
    assert not list((tmp_path / "site" / "prepared").glob("u-*"))
    assert list((tmp_path / "lambda" / "prepared").glob("u-*"))
    # ...and the processed upload is gone from the bucket.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"site/incoming/{upload_id}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [
        f"site/incoming/{upload_id}/upload.json"
    ]


def test_a_new_caption_on_a_processed_upload_renders_on_lambda(
    aws_site: Services, clip: Path, tmp_path: Path
) -> None:
    """The upload is deleted once its clip is prepared on a Lambda (whose disk the site never
    sees): a second caption on the same trim still renders, from the clip's prepared frames
    kept in the bucket beside its description."""
    upload_id = new_upload_id()
    aws_site.uploads.store(upload_id, clip)
    first = aws_site.uploads.request_render(
        upload_id, start_s=1.0, duration_s=1.0, caption="First words", wait_s=PROCESS_SECONDS
    )
    assert first.status == "done", first
    s3 = boto3.client("s3")
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=BUCKET, Key=f"site/{source_key(upload_id)}")
    second = aws_site.uploads.request_render(
        upload_id, start_s=1.0, duration_s=1.0, caption="Second words", wait_s=PROCESS_SECONDS
    )
    assert second.status == "done", second
    assert second.template_id == first.template_id and second.key != first.key
    gif = s3.get_object(Bucket=BUCKET, Key=f"site/{media_keys(second.key)['gif']}")
    assert gif["Body"].read()[:6] == b"GIF89a"
