"""The BlobStore contract, run against every adapter: local files and S3 (moto's real server)."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path

import pytest

from loopmark.errors import BadInput, ConfigInvalid
from loopmark.storage import BlobStore, LocalBlobStore, open_blob_store, validate_key

KEY = "r/ab/abcdef0123456789/loop.gif"
BINARY = bytes(range(256)) * 4 + b"\x00GIF89a\r\n\x1a\xff"
CDN = "https://cdn.example.test/m/"
INVALID_KEYS = ["../x", "/abs", "a//b", "A B", "r/../x", "a/./b", "x/", "", "é", "a" * 513]


def _storage_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "local":
        return f"file://{tmp_path / 'media'}"
    request.getfixturevalue("aws")
    return "s3://loopmark-test/media/v1"


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> BlobStore:
    blob_store = open_blob_store(_storage_url(kind, tmp_path, request))
    blob_store.setup()
    return blob_store


@pytest.fixture
def cdn_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> BlobStore:
    blob_store = open_blob_store(_storage_url(kind, tmp_path, request), media_base_url=CDN)
    blob_store.setup()
    return blob_store


def test_is_a_blob_store(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_put_then_get_returns_the_same_binary_bytes(store: BlobStore) -> None:
    store.put(KEY, BINARY, content_type="image/gif")
    assert store.get(KEY) == BINARY


def test_put_overwrites(store: BlobStore) -> None:
    store.put(KEY, b"first", content_type="image/gif")
    store.put(KEY, b"second", content_type="image/gif")
    assert store.get(KEY) == b"second"


def test_empty_object_roundtrips(store: BlobStore) -> None:
    store.put(KEY, b"", content_type="image/gif")
    assert store.exists(KEY)
    assert store.get(KEY) == b""


def test_get_missing_key_raises_file_not_found(store: BlobStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.get(KEY)


def test_a_key_prefix_is_not_an_object(store: BlobStore) -> None:
    store.put(KEY, b"x", content_type="image/gif")
    assert not store.exists("r/ab")
    with pytest.raises(FileNotFoundError):
        store.get("r/ab")


def test_exists_follows_put_and_delete(store: BlobStore) -> None:
    assert not store.exists(KEY)
    store.put(KEY, b"x", content_type="image/gif")
    assert store.exists(KEY)
    store.delete(KEY)
    assert not store.exists(KEY)
    with pytest.raises(FileNotFoundError):
        store.get(KEY)


def test_delete_is_idempotent(store: BlobStore) -> None:
    store.delete(KEY)
    store.put(KEY, b"x", content_type="image/gif")
    store.delete(KEY)
    store.delete(KEY)
    assert not store.exists(KEY)


def test_delete_leaves_other_keys(store: BlobStore) -> None:
    other = "r/ab/abcdef0123456789/loop.mp4"
    store.put(KEY, b"gif", content_type="image/gif")
    store.put(other, b"mp4", content_type="video/mp4")
    store.delete(KEY)
    assert store.get(other) == b"mp4"


def test_list_finds_the_keys_under_a_prefix_with_size_and_time(store: BlobStore) -> None:
    before = time.time() - 60
    stored = {
        KEY: b"gif",
        "r/ab/abcdef0123456789/loop.mp4": b"mp4!",
        "r/ac/other/loop.gif": b"x",
        "blocked/abc.json": b"{}",
    }
    for key, data in stored.items():
        store.put(key, data, content_type="application/octet-stream")
    assert list(store.list("nothing/")) == []
    listed = {blob.key: blob for blob in store.list("r/ab/")}
    assert set(listed) == {KEY, "r/ab/abcdef0123456789/loop.mp4"}
    assert listed[KEY].size == 3
    assert before < listed[KEY].modified_at < time.time() + 60
    assert {blob.key for blob in store.list("r/a")} == {k for k in stored if k.startswith("r/")}
    assert {blob.key for blob in store.list("blocked/")} == {"blocked/abc.json"}
    assert {blob.key for blob in store.list("")} == set(stored)
    store.delete(KEY)
    assert KEY not in {blob.key for blob in store.list("r/")}


def test_list_refuses_a_bad_prefix(store: BlobStore) -> None:
    with pytest.raises(ValueError):
        list(store.list("../"))


def test_url_with_media_base_url_is_base_plus_key(cdn_store: BlobStore) -> None:
    assert cdn_store.url(KEY) == CDN + KEY


def test_url_without_base_names_the_key(store: BlobStore, kind: str) -> None:
    url = store.url(KEY)
    if kind == "local":
        assert url == "/media/" + KEY
    else:
        assert url.startswith(os.environ["AWS_ENDPOINT_URL"])
        assert "/media/v1/" + KEY + "?" in url


def test_download_url_saves_the_blob_under_the_given_name(
    store: BlobStore, cdn_store: BlobStore, kind: str
) -> None:
    store.put(KEY, BINARY, content_type="image/gif")
    for each in (store, cdn_store):
        url = each.download_url(KEY, "hop-and-co-abc.gif", content_type="image/gif")
        if kind == "local":
            assert url is None  # the site serves the file itself, with the disposition
            assert each.local_path(KEY) is not None
            continue
        # Signed against S3 itself, never the CDN: the name travels in the signed query.
        assert url is not None and url.startswith(os.environ["AWS_ENDPOINT_URL"])
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"] == (
                'attachment; filename="hop-and-co-abc.gif"'
            )
            assert response.headers["Content-Type"] == "image/gif"
            assert response.read() == BINARY


@pytest.mark.parametrize("bad_name", ['a".gif', "a/b.gif", "a b.gif", "", ".hidden", "é.gif"])
def test_download_url_refuses_a_name_that_is_not_plain(store: BlobStore, bad_name: str) -> None:
    with pytest.raises(ValueError):
        store.download_url(KEY, bad_name, content_type="image/gif")


def test_setup_is_idempotent_and_keeps_objects(store: BlobStore) -> None:
    store.put(KEY, b"kept", content_type="image/gif")
    store.setup()
    store.setup()
    assert store.get(KEY) == b"kept"


def test_check_passes_after_setup(store: BlobStore) -> None:
    store.check()


@pytest.mark.parametrize("bad_key", INVALID_KEYS)
def test_invalid_keys_are_refused_by_every_method(store: BlobStore, bad_key: str) -> None:
    with pytest.raises(ValueError):
        store.put(bad_key, b"x", content_type="image/gif")
    with pytest.raises(ValueError):
        store.get(bad_key)
    with pytest.raises(ValueError):
        store.exists(bad_key)
    with pytest.raises(ValueError):
        store.url(bad_key)
    with pytest.raises(ValueError):
        store.download_url(bad_key, "x.gif", content_type="image/gif")
    with pytest.raises(ValueError):
        store.delete(bad_key)


@pytest.mark.parametrize("bad_key", INVALID_KEYS)
def test_local_path_of_an_invalid_key_is_none(store: BlobStore, bad_key: str) -> None:
    # Not ValueError like the other methods: a route may pass it a key taken from its URL.
    assert store.local_path(bad_key) is None


def test_local_path_is_none_or_the_file_holding_the_bytes(store: BlobStore, kind: str) -> None:
    store.put(KEY, BINARY, content_type="image/gif")
    path = store.local_path(KEY)
    if kind == "local":
        assert path is not None
        assert path.read_bytes() == BINARY
    else:
        assert path is None


def test_local_path_of_a_missing_or_deleted_key_is_none(store: BlobStore) -> None:
    assert store.local_path(KEY) is None
    store.put(KEY, b"x", content_type="image/gif")
    store.delete(KEY)
    assert store.local_path(KEY) is None


def test_local_path_of_a_key_prefix_is_none(store: BlobStore) -> None:
    store.put(KEY, b"x", content_type="image/gif")
    assert store.local_path("r/ab") is None


def test_large_object_roundtrips(store: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    store.put(KEY, data, content_type="video/mp4")
    assert store.get(KEY) == data


# validate_key and the factory: the rules every adapter shares.


@pytest.mark.parametrize("bad_key", INVALID_KEYS)
def test_validate_key_refuses(bad_key: str) -> None:
    with pytest.raises(ValueError):
        validate_key(bad_key)


@pytest.mark.parametrize(
    "good_key", [KEY, "r/00/0f/poster.jpg", "a", "t/city-loop_v2/preview.webp", "a" * 512]
)
def test_validate_key_accepts_server_generated_keys(good_key: str) -> None:
    assert validate_key(good_key) == good_key


def test_factory_picks_the_adapter_by_scheme(tmp_path: Path) -> None:
    from loopmark.storage.s3 import S3BlobStore

    assert isinstance(open_blob_store(f"file://{tmp_path}"), LocalBlobStore)
    s3_store = open_blob_store("s3://bucket-name/some/prefix/")
    assert isinstance(s3_store, S3BlobStore)
    assert (s3_store.bucket, s3_store.prefix) == ("bucket-name", "some/prefix/")


@pytest.mark.parametrize(
    "bad_url",
    [
        "",
        "/var/media",
        "ftp://host/dir",
        "file:/var/media",
        "file://",
        "file:///var/media?x=1",
        "s3://",
        "s3://Bad_Bucket/prefix",
        "s3://ab",
        "s3://bucket/../up",
        "s3://bucket/Prefix With Spaces",
        "s3://bucket/p?versionId=1",
    ],
)
def test_factory_refuses_bad_urls_with_a_reason(bad_url: str) -> None:
    with pytest.raises(ConfigInvalid) as excinfo:
        open_blob_store(bad_url)
    assert isinstance(excinfo.value, BadInput)
    assert excinfo.value.code == "config_invalid"
    assert repr(bad_url) in excinfo.value.reason


@pytest.mark.parametrize("bad_base", ["cdn.example.test", "ftp://cdn", "//cdn.example.test/"])
def test_factory_refuses_a_bad_media_base_url(tmp_path: Path, bad_base: str) -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_MEDIA_BASE_URL"):
        open_blob_store(f"file://{tmp_path}", media_base_url=bad_base)
    with pytest.raises(ConfigInvalid, match="LOOPMARK_MEDIA_BASE_URL"):
        open_blob_store("s3://bucket-name", media_base_url=bad_base)


def test_media_base_url_without_trailing_slash_still_joins(tmp_path: Path) -> None:
    blob_store = open_blob_store(f"file://{tmp_path}", media_base_url="https://cdn.example.test")
    assert blob_store.url(KEY) == "https://cdn.example.test/" + KEY


def test_put_file_then_get_file_stream_big_files(store: BlobStore, tmp_path: Path) -> None:
    # 9 MB: past S3's 8 MB multipart threshold, so the upload is assembled from parts.
    data = bytes(range(256)) * (9 * 1024 * 4)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    store.put_file("incoming/abc/source", source, content_type="application/octet-stream")
    assert store.exists("incoming/abc/source")
    target = tmp_path / "back.bin"
    store.get_file("incoming/abc/source", target)
    assert target.read_bytes() == data
    with pytest.raises(FileNotFoundError):
        store.get_file("incoming/missing/source", tmp_path / "missing.bin")


def test_presigned_post_only_where_storage_takes_forms(store: BlobStore, kind: str) -> None:
    post = store.presigned_post(
        "incoming/abc/source", max_bytes=1000, content_type="video/mp4", expires_s=60
    )
    if kind == "local":
        assert post is None  # the site receives the form itself
    else:
        assert post is not None
        url, fields = post
        assert url.startswith("http") and fields["key"].endswith("incoming/abc/source")
        assert fields["Content-Type"] == "video/mp4" and "policy" in fields
