"""Lambda handlers lambda-local runs in tests: they record what they receive in a file.

``echo`` appends one JSON line per invocation to the file named by LOOPMARK_TEST_EVENTS_FILE and
returns what it received. Test-only switches ride in the event: ``raise`` makes it fail with that
message; ``gate`` makes it wait until that path exists (a test's way to hold an invocation).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

EVENTS_FILE_ENV = "LOOPMARK_TEST_EVENTS_FILE"
GATE_TIMEOUT_SECONDS = 60.0
GATE_POLL_SECONDS = 0.02

_write_lock = threading.Lock()


def echo(event: Any, context: Any) -> dict[str, Any]:
    if isinstance(event, dict):
        if "raise" in event:
            raise RuntimeError(str(event["raise"]))
        gate = event.get("gate")
        if isinstance(gate, str):
            deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
            while not Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(GATE_POLL_SECONDS)
    line = json.dumps(
        {"event": event, "function": context.function_name, "request_id": context.aws_request_id}
    )
    with _write_lock, open(os.environ[EVENTS_FILE_ENV], "a", encoding="utf-8") as out:
        out.write(line + "\n")
    return {"echo": event, "function": context.function_name}
