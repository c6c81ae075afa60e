"""Names the stack and deploy/tasks.py share; plain constants, so tasks.py runs without the CDK."""

from __future__ import annotations

import re

STACK_NAME_PREFIX = "Loopmark-"
STAGE_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,19}")

# SSM parameters under /loopmark/<stage>/ (settings.py explains each).
SECRET_KEY = "secret-key"
ORIGIN_VERIFY = "origin-verify"
SITE_URL = "site-url"
MEDIA_BASE_URL = "media-base-url"
CDN_PURGE = "cdn-purge"
# Made by tasks.py before the stack, with whether each is a SecureString.
PRE_DEPLOY_PARAMETERS = ((SECRET_KEY, True), (ORIGIN_VERIFY, False))

# Stack outputs.
OUTPUT_SITE_URL = "SiteUrl"
OUTPUT_DISTRIBUTION_ID = "DistributionId"
OUTPUT_BUCKET = "MediaBucketName"
OUTPUT_STORAGE_URL = "StorageUrl"
OUTPUT_TABLE = "TableName"
OUTPUT_RECORDS_URL = "RecordsUrl"
OUTPUT_RENDERER = "RendererFunctionName"


def stack_name(stage: str) -> str:
    return STACK_NAME_PREFIX + stage


def parameter_prefix(stage: str) -> str:
    return f"/loopmark/{stage}"
