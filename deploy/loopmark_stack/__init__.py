"""Loopmark on AWS as one CDK stack of small constructs: storage and CDN (storage.py, cdn.py),
records (records.py), the renderer and the site (functions.py), settings and secrets
(settings.py), alarms (alarms.py), wired in stack.py; names.py holds what deploy/tasks.py shares
with the stack without importing the CDK."""
