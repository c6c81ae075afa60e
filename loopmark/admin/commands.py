"""``loopmark admin create-user NAME``: store an admin's argon2 hash in the configured records.

The password comes from a prompt (typed twice) on a terminal, or from the first line of standard
input otherwise (``printf '%s\\n' "$PW" | loopmark admin create-user ana``), never from argv
where other users of the machine could read it.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from loopmark.errors import BadInput
from loopmark.service.passwords import MAX_PASSWORD_CHARS, check_new_password
from loopmark.service.users import AdminUsers, check_name


def read_new_password(stdin: TextIO | None = None) -> str:
    """The new password: prompted twice on a terminal, else standard input's first line."""
    stream = sys.stdin if stdin is None else stdin
    if stream.isatty():
        try:
            password = getpass.getpass("Password: ")
            check_new_password(password)
            again = getpass.getpass("Again: ")
        except EOFError:
            raise BadInput("no password given") from None
        if again != password:
            raise BadInput("the passwords do not match")
        return password
    line = stream.readline(MAX_PASSWORD_CHARS + 2)
    return check_new_password(line.removesuffix("\n").removesuffix("\r"))


def run_create_user(name: str, users: AdminUsers, stdin: TextIO | None = None) -> str:
    """The CLI's work: check the name first (before any prompt), read, store; the line to print."""
    check_name(name)
    created = users.set_password(name, read_new_password(stdin))
    return f"admin user {name} {'created' if created else 'has a new password'}"
