"""The renderer: pure functions from a template and a caption to GIF, MP4 and poster bytes.

It knows nothing of HTTP, storage or AWS; the site's render service and the Lambda handler wrap it.
"""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: object = None) -> dict[str, Any]:
    """AWS Lambda's entry point (``loopmark.renderer.lambda_handler``): one render job.

    A thin wrapper: the work is the render service's ``execute``, imported only when invoked.
    """
    from loopmark.lambda_entry import handle

    return handle(event, context)
