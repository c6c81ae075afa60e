"""``loopmark admin create-user NAME``: store an admin's argon2 hash in the configured records.

The password comes from a prompt (typed twice) on a terminal, or from the first line of standard
input otherwise (``printf '%s\\n' "$PW" | loopmark admin create-user ana``), never from argv
where other users of the machine could read it.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

from loopmark.admin.passwords import MAX_PASSWORD_CHARS, check_new_password, hash_password
from loopmark.config import Settings
from loopmark.errors import BadInput
from loopmark.records.users import open_user_records, valid_name


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


def create_user(settings: Settings, name: str, password: str) -> bool:
    """Create the user or give them a new password (which ends their sessions). True when the
    user is new."""
    if not valid_name(name):
        raise BadInput("a user name is 1 to 40 of a-z, 0-9, '.', '_' and '-'")
    password_hash = hash_password(password)
    users = open_user_records(settings.records_url)
    try:
        existed = users.get(name) is not None
        users.put(name, password_hash)
    finally:
        users.close()
    return not existed


def run_create_user(name: str, settings: Settings, stdin: TextIO | None = None) -> str:
    """The CLI's work: check the name first (before any prompt), read, store; the line to print."""
    if not valid_name(name):
        raise BadInput("a user name is 1 to 40 of a-z, 0-9, '.', '_' and '-'")
    created = create_user(settings, name, read_new_password(stdin))
    return f"admin user {name} {'created' if created else 'has a new password'}"
