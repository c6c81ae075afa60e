"""What every record kind and both backends share: the clock type and the records URL's form."""

from __future__ import annotations

from collections.abc import Callable

from loopmark.errors import ConfigInvalid

Clock = Callable[[], float]


def split_records_url(url: str) -> tuple[str, str]:
    """``scheme://rest`` → (scheme, rest). Raises ConfigInvalid for anything else."""
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or not rest:
        raise ConfigInvalid(
            f"LOOPMARK_RECORDS must look like sqlite:///path or dynamodb://table, got {url!r}"
        )
    return scheme.lower(), rest
