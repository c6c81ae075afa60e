"""A processed upload (its file deleted) takes a new caption on another worker: the clip's
prepared frames are kept in storage, so a worker whose disk never saw the clip (another
server's pool, a fresh Lambda) renders it from them. Both storages, the local pool; the Lambda
dispatcher is covered in test_upload_lambda."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.composition import Services, build_services, setup_backends
from loopmark.renderer.prepare import PreparedTemplate
from loopmark.service.clips import STORED_INDEX, stored_prefix
from loopmark.service.render_service import media_keys
from loopmark.service.uploads import new_upload_id, source_key
from tests.service.conftest import make_settings

WAIT_SECONDS = 240.0  # preparing a clip on a shared two-core machine


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "s3":
        request.getfixturevalue("aws")
        return "s3://loopmark-clips/media"
    return f"file://{tmp_path / 'media'}"


@pytest.fixture
def two_workers(
    storage: str, tmp_path: Path, workdir: Path, small: PreparedTemplate
) -> Iterator[tuple[Services, Services]]:
    """Two sites over one storage and one database, each with its own disk."""
    made = []
    for name in ("one", "two"):
        settings = make_settings(
            tmp_path,
            workdir,
            LOOPMARK_STORAGE=storage,
            LOOPMARK_DATA_DIR=str(tmp_path / name),  # prepared/ and clip sources: its own
            LOOPMARK_UPLOAD_STYLE_TEMPLATE="small",
        )
        setup_backends(settings)
        made.append(build_services(settings))
    yield made[0], made[1]
    for services in made:
        services.close()


def test_a_new_caption_renders_on_a_worker_that_never_saw_the_clip(
    two_workers: tuple[Services, Services], clip: Path, tmp_path: Path
) -> None:
    one, two = two_workers
    upload_id = new_upload_id()
    one.uploads.store(upload_id, clip)
    first = one.uploads.request_render(
        upload_id, start_s=1.0, duration_s=1.0, caption="First", wait_s=WAIT_SECONDS
    )
    assert first.status == "done", first
    blobs = one.render.blobs
    assert not blobs.exists(source_key(upload_id))  # processed: the visitor's file is gone
    template = one.uploads.clips.clip(first.template_id)
    assert blobs.exists(f"{stored_prefix(template)}/{STORED_INDEX}")
    assert not list((tmp_path / "two" / "prepared").glob("u-*"))

    second = two.uploads.request_render(
        upload_id, start_s=1.0, duration_s=1.0, caption="Second", wait_s=WAIT_SECONDS
    )
    assert second.status == "done", second
    assert second.template_id == first.template_id and second.key != first.key
    # Rendered by the second worker, from the frames it fetched (the same bytes).
    fetched = list((tmp_path / "two" / "prepared" / first.template_id).glob("*/frames.npy"))
    prepared = list((tmp_path / "one" / "prepared" / first.template_id).glob("*/frames.npy"))
    assert len(fetched) == len(prepared) == 1
    assert fetched[0].read_bytes() == prepared[0].read_bytes()
    assert blobs.get(media_keys(second.key)["gif"])[:6] == b"GIF89a"
