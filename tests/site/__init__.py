"""Tests of the public site (loopmark.site)."""
