"""Tests of the shared web shell (loopmark.web): headers, assets, logs, errors, limits."""
