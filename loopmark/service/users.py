"""The back-office's users: names with argon2 password hashes over the user records.

``authenticate`` is the login's check (with the same work for unknown names, and a stronger hash
stored when the parameters moved on); ``set_password`` creates a user or gives one a new
password, which ends their sessions (a session keeps a fingerprint of the hash).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from loopmark.errors import BadInput, LoopmarkError
from loopmark.records.users import AdminUser, AdminUserRecords, valid_name
from loopmark.service.passwords import (
    check_new_password,
    hash_password,
    needs_rehash,
    verify_password,
)

log = logging.getLogger(__name__)

NAME_RULE = "a user name is 1 to 40 of a-z, 0-9, '.', '_' and '-'"


class AdminUsers:
    def __init__(self, records: AdminUserRecords) -> None:
        self.records = records

    def get(self, name: str) -> AdminUser | None:
        return self.records.get(name)

    def authenticate(self, name: str, password: str) -> AdminUser | None:
        """The user when the password is theirs, else None. A hash made with older parameters
        is replaced by a stronger one (best effort: the login stands if that write fails)."""
        user = self.records.get(name)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            return None
        if needs_rehash(user.password_hash):
            try:
                stronger = hash_password(password)
                self.records.put(name, stronger)
            except LoopmarkError as exc:
                log.warning("could not rehash %s's password: %s", name, exc.reason)
            else:
                user = replace(user, password_hash=stronger)
        return user

    def set_password(self, name: str, password: str) -> bool:
        """Create the user or give them a new password; True when the user is new."""
        check_name(name)
        password_hash = hash_password(check_new_password(password))
        existed = self.records.get(name) is not None
        self.records.put(name, password_hash)
        return not existed

    def close(self) -> None:
        self.records.close()


def check_name(name: str) -> None:
    if not valid_name(name):
        raise BadInput(NAME_RULE)
