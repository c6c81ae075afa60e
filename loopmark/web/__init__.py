"""The web shell the site and the admin share: the services a request reaches (``context``),
error pages and JSON errors, rate limits, links to media and templates, fingerprinted assets,
security and cache headers, request logs, and the production server (cheroot). It imports
neither the site nor the admin; ``loopmark.app`` puts them together."""
