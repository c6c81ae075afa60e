"""Admin user records: who may log in to the back-office, and their password hash.

The admin hashes passwords before they reach this module; here a hash is an opaque, non-empty
string. Names are 1 to 40 of ``[a-z0-9._-]``: ``put`` refuses anything else (BadInput), while
``get`` and ``delete`` simply find nothing, so a login form can pass whatever was typed.

SQLite: table ``admin_users``. DynamoDB (the shared table): the back-office has a handful of
admins, so they are one item, ``admin#users``, with two attributes per user (``hash:<name>``,
``created:<name>``) and a ``user_count`` that bounds the item (MAX_ADMIN_USERS, far below the
400 KB item limit). ``all`` is then one GetItem, and every change one conditional UpdateItem.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

from loopmark.errors import BadInput, RecordsUnavailable
from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import ConditionFailed, DynamoAdapter, number
from loopmark.records.sqlite import SqliteAdapter

NAME_PATTERN = re.compile(r"[a-z0-9._-]{1,40}")
MAX_HASH_CHARS = 1024  # argon2/scrypt/pbkdf2 encodings are a few hundred characters at most
MAX_ADMIN_USERS = 100
USERS_KEY = "admin#users"
# put's create-or-replace may race another admin's put of the same name; it settles in a few.
MAX_WRITE_ATTEMPTS = 10


@dataclass(frozen=True)
class AdminUser:
    name: str
    password_hash: str
    created_at: float  # epoch seconds of the first put; a new password keeps it


class AdminUserRecords(Protocol):
    """The back-office's users. Every method may raise RecordsUnavailable."""

    def setup(self) -> None: ...

    def get(self, name: str) -> AdminUser | None: ...

    def put(self, name: str, password_hash: str) -> None:
        """Create the user, or give an existing one a new hash. BadInput for a bad name, an
        empty hash, or a new user beyond MAX_ADMIN_USERS."""
        ...

    def all(self) -> list[AdminUser]:
        """Every user, by name."""
        ...

    def delete(self, name: str) -> bool:
        """False when there was no such user."""
        ...

    def close(self) -> None: ...


def valid_name(name: object) -> bool:
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_user(name: str, password_hash: str) -> None:
    if not valid_name(name):
        raise BadInput("a user name is 1 to 40 of a-z, 0-9, '.', '_' and '-'")
    if not isinstance(password_hash, str) or not password_hash.strip():
        raise BadInput("a password hash cannot be empty")
    if len(password_hash) > MAX_HASH_CHARS or not password_hash.isprintable():
        raise BadInput(f"a password hash is at most {MAX_HASH_CHARS} printable characters")


def _too_many() -> BadInput:
    return BadInput(f"there are already {MAX_ADMIN_USERS} admin users: delete one first")


# --- SQLite ---------------------------------------------------------------------------------------


class SqliteAdminUserRecords(SqliteAdapter):
    """AdminUserRecords in the ``admin_users`` table of a SqliteDatabase."""

    def get(self, name: str) -> AdminUser | None:
        if not valid_name(name):
            return None
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT name, password_hash, created_at FROM admin_users WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else AdminUser(row[0], row[1], float(row[2]))

    def put(self, name: str, password_hash: str) -> None:
        check_user(name, password_hash)
        with self.db.write() as conn:
            cursor = conn.execute(
                "UPDATE admin_users SET password_hash = ? WHERE name = ?", (password_hash, name)
            )
            if cursor.rowcount == 1:
                return
            if conn.execute("SELECT COUNT(*) FROM admin_users").fetchone()[0] >= MAX_ADMIN_USERS:
                raise _too_many()
            conn.execute(
                "INSERT INTO admin_users (name, password_hash, created_at) VALUES (?, ?, ?)",
                (name, password_hash, self._clock()),
            )

    def all(self) -> list[AdminUser]:
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT name, password_hash, created_at FROM admin_users ORDER BY name"
            ).fetchall()
        return [AdminUser(name, password_hash, float(at)) for name, password_hash, at in rows]

    def delete(self, name: str) -> bool:
        if not valid_name(name):
            return False
        with self.db.write() as conn:
            return conn.execute("DELETE FROM admin_users WHERE name = ?", (name,)).rowcount == 1


# --- DynamoDB -------------------------------------------------------------------------------------


def _user_names(name: str) -> dict[str, str]:
    return {"#hash": f"hash:{name}", "#created": f"created:{name}", "#count": "user_count"}


class DynamoAdminUserRecords(DynamoAdapter):
    """AdminUserRecords as attributes of one item of a DynamoTable (see the module doc)."""

    def get(self, name: str) -> AdminUser | None:
        if not valid_name(name):
            return None
        item = self.table.get_item(
            USERS_KEY,
            ProjectionExpression="#hash, #created",
            ExpressionAttributeNames={k: v for k, v in _user_names(name).items() if k != "#count"},
        )
        users = self._users(item or {})
        return users[0] if users else None

    def put(self, name: str, password_hash: str) -> None:
        check_user(name, password_hash)
        for _ in range(MAX_WRITE_ATTEMPTS):
            if self._update(
                name,
                "SET #hash = :hash",
                "attribute_exists(#hash)",
                {":hash": {"S": password_hash}},
            ):
                return  # a new password for an existing user
            if self._update(
                name,
                "SET #hash = :hash, #created = :now ADD #count :one",
                "attribute_not_exists(#hash) AND (attribute_not_exists(#count) OR #count < :max)",
                {
                    ":hash": {"S": password_hash},
                    ":now": number(self._clock()),
                    ":one": number(1),
                    ":max": number(MAX_ADMIN_USERS),
                },
            ):
                return  # a new user
            # Neither: the user appeared or vanished meanwhile, or there is no room.
            if self.get(name) is None and len(self.all()) >= MAX_ADMIN_USERS:
                raise _too_many()
        raise RecordsUnavailable(f"DynamoDB table {self.table.name}: admin users keep changing")

    def all(self) -> list[AdminUser]:
        return self._users(self.table.get_item(USERS_KEY) or {})

    def delete(self, name: str) -> bool:
        if not valid_name(name):
            return False
        return self._update(
            name,
            "REMOVE #hash, #created ADD #count :minus_one",
            "attribute_exists(#hash)",
            {":minus_one": number(-1)},
        )

    def _update(self, name: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        names = {k: v for k, v in _user_names(name).items() if k in update or k in condition}
        try:
            self.table.update_item(
                USERS_KEY,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ConditionFailed:
            return False
        return True

    @staticmethod
    def _users(item: dict[str, Any]) -> list[AdminUser]:
        users = []
        for attribute, value in item.items():
            if attribute.startswith("hash:"):
                name = attribute.removeprefix("hash:")
                created = item.get(f"created:{name}", {}).get("N", "0")
                users.append(AdminUser(name, value["S"], float(created)))
        return sorted(users, key=lambda user: user.name)


def open_user_records(url: str, *, clock: Clock = time.time) -> AdminUserRecords:
    """The AdminUserRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(
        url, sqlite=SqliteAdminUserRecords, dynamodb=DynamoAdminUserRecords, clock=clock
    )
