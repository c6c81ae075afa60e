"""Loopmark: a branded GIF micro-site. The import package owns the site, renderer and admin."""

__version__ = "0.1.0"
