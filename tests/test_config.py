"""Settings: every environment variable is read by loopmark.config, and a bad value is one line."""

from __future__ import annotations

import boto3
import pytest

from loopmark.config import Settings
from loopmark.errors import ConfigInvalid
from loopmark.service.gallery import REFRESH_SECONDS, VERSION_CHECK_SECONDS


def gallery_timing(env: dict[str, str]) -> tuple[float, float]:
    settings = Settings.from_env(env)
    return settings.gallery_refresh_seconds, settings.gallery_version_check_seconds


def test_gallery_timing_from_the_environment() -> None:
    assert gallery_timing({}) == (REFRESH_SECONDS, VERSION_CHECK_SECONDS)
    env = {
        "LOOPMARK_GALLERY_REFRESH_SECONDS": "600",
        "LOOPMARK_GALLERY_VERSION_CHECK_SECONDS": "0.5",
    }
    assert gallery_timing(env) == (600.0, 0.5)
    assert gallery_timing({"LOOPMARK_GALLERY_VERSION_CHECK_SECONDS": "0"})[1] == 0.0
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(ConfigInvalid, match="LOOPMARK_GALLERY_REFRESH_SECONDS"):
            gallery_timing({"LOOPMARK_GALLERY_REFRESH_SECONDS": bad})


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert settings.records_url == "sqlite:///var/loopmark.db"
    assert settings.storage_url == "file://var/media"
    assert settings.dispatch_url == "local"
    assert settings.site_url is None and settings.secret_key is None
    assert settings.rate_limits and settings.json_logs and not settings.debug


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LOOPMARK_SITE_URL", "example.com", "must start with https://"),
        ("LOOPMARK_SECRET_KEY", "short", "at least 32 characters"),
        ("LOOPMARK_PROXY_HOPS", "two", "whole number"),
        ("LOOPMARK_RENDER_HOLD_SLOTS", "-1", "whole number"),
        ("LOOPMARK_RENDER_CONCURRENCY", "0", "at least 1"),
        ("LOOPMARK_TEMPLATES_SOURCE", "s3", "must be one of dir, storage"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigInvalid, match=says) as raised:
        Settings.from_env({name: value})
    assert name in str(raised.value)
    assert "\n" not in str(raised.value)


def test_the_web_settings_come_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "LOOPMARK_SITE_URL": "https://gifs.example/",
            "LOOPMARK_SECRET_KEY": "k" * 32,
            "LOOPMARK_PROXY_HOPS": "2",
            "LOOPMARK_RATE_LIMITS": "off",
            "LOOPMARK_RATE_LIMIT_LOGIN": "3/minute",
            "LOOPMARK_JSON_LOGS": "off",
        }
    )
    assert settings.site_url == "https://gifs.example"
    assert settings.secret_key == "k" * 32
    assert settings.proxy_hops == 2
    assert not settings.rate_limits and not settings.json_logs
    assert settings.login_rate_limit == "3/minute"


def test_ssm_values_are_read_from_parameter_store_once(aws: str) -> None:
    ssm = boto3.client("ssm")
    secret = "p" * 48
    ssm.put_parameter(Name="/loopmark/test/secret-key", Value=secret, Type="SecureString")
    ssm.put_parameter(Name="/loopmark/test/site-url", Value="https://gifs.example", Type="String")
    env = {
        "LOOPMARK_SECRET_KEY": "ssm:/loopmark/test/secret-key",
        "LOOPMARK_SITE_URL": "ssm:/loopmark/test/site-url",
    }
    settings = Settings.from_env(env)
    assert settings.secret_key == secret
    assert settings.site_url == "https://gifs.example"
    # Read at start and kept: a second read in this process does not ask again.
    ssm.delete_parameter(Name="/loopmark/test/secret-key")
    assert Settings.from_env(env).secret_key == secret


def test_a_missing_ssm_parameter_names_its_variable(aws: str) -> None:
    with pytest.raises(ConfigInvalid, match="LOOPMARK_SECRET_KEY") as raised:
        Settings.from_env({"LOOPMARK_SECRET_KEY": "ssm:/loopmark/test/never-created"})
    assert "does not exist" in str(raised.value)


def test_an_ssm_value_is_checked_like_any_other(aws: str) -> None:
    boto3.client("ssm").put_parameter(Name="/loopmark/test/short", Value="short", Type="String")
    with pytest.raises(ConfigInvalid, match="at least 32 characters"):
        Settings.from_env({"LOOPMARK_SECRET_KEY": "ssm:/loopmark/test/short"})
