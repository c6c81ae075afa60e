"""Admin user records: who may log in to the back-office, their password hash, their sessions
and the failed logins that hold a login back.

The admin hashes passwords before they reach this module; here a hash is an opaque, non-empty
string. Names are 1 to 40 of ``[a-z0-9._-]``: ``put`` refuses anything else (BadInput), while
``get`` and ``delete`` simply find nothing, so a login form can pass whatever was typed.

Sessions are held here, server-side: the session cookie carries a random id, the records keep a
hash of it (a leaked database holds no usable session) with the user's name and its end. Logout
deletes it; a new password or deleting the user deletes all of that user's sessions.

Failed logins are kept one per failure (name, address, when), so the admin can limit them per
(name, address) pair and per address from the same rows, every process seeing the same counts,
and ``loopmark admin unlock NAME`` can clear them from the command line.

SQLite: tables ``admin_users``, ``admin_sessions``, ``login_failures``. DynamoDB (the shared
table): the back-office has a handful of admins, so they are one item, ``admin#users``, with two
attributes per user (``hash:<name>``, ``created:<name>``) and a ``user_count`` that bounds the
item (MAX_ADMIN_USERS, far below the 400 KB item limit). ``all`` is then one GetItem, and every
change one conditional UpdateItem. Sessions are one item, ``admin#sessions``, one attribute per
session (``s:<hash>`` → name and end; expired ones pruned at each login, at most
MAX_SESSIONS). Failed logins are a list of times on ``login#pair#<name>#<address>`` and on
``login#address#<address>``, and the set of addresses that failed for a name on
``login#name#<name>`` (for unlock); all three expire (TTL) a day after their last failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from loopmark.errors import BadInput, RecordsUnavailable
from loopmark.records.backend import open_adapter
from loopmark.records.common import Clock
from loopmark.records.dynamodb import TTL_ATTRIBUTE, ConditionFailed, DynamoAdapter, number
from loopmark.records.sqlite import SqliteAdapter

NAME_PATTERN = re.compile(r"[a-z0-9._-]{1,40}")
MAX_HASH_CHARS = 1024  # argon2/scrypt/pbkdf2 encodings are a few hundred characters at most
MAX_ADMIN_USERS = 100
USERS_KEY = "admin#users"
# put's create-or-replace may race another admin's put of the same name; it settles in a few.
MAX_WRITE_ATTEMPTS = 10
SESSIONS_KEY = "admin#sessions"
MAX_SESSIONS = 1000  # live sessions at once, all admins together (the DynamoDB item's bound)
SESSION_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
LOGIN_PREFIX = "login#"
# Failed logins are kept this long (longer than any login limit's window), then forgotten.
FAILURE_KEEP_SECONDS = 24 * 3600
MAX_ADDRESS_CHARS = 64


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
        """False when there was no such user (their sessions are deleted either way)."""
        ...

    def add_session(self, id_hash: str, name: str, *, expires_at: float) -> None:
        """Keep a new session (``id_hash``: the SHA-256 hex of its random id) until
        ``expires_at``. BadInput beyond MAX_SESSIONS live sessions."""
        ...

    def session_user(self, id_hash: str) -> str | None:
        """The name of a live session's user, or None (unknown, ended, or expired)."""
        ...

    def delete_session(self, id_hash: str) -> None:
        """End one session (logout); ending an unknown one is not an error."""
        ...

    def delete_sessions(self, name: str) -> int:
        """End every session of ``name``; how many there were."""
        ...

    def add_failure(self, name: str, address: str) -> None:
        """Note a failed login for ``name`` from ``address`` (now)."""
        ...

    def failures_since(
        self, name: str, address: str, since: Sequence[float]
    ) -> list[tuple[int, int]]:
        """For each time in ``since``: (failures of the (name, address) pair, failures from the
        address for any name) after that time."""
        ...

    def clear_failures(self, name: str) -> int:
        """Forget the failed logins of ``name`` and the per-address counts of every address that
        failed for it (unlock); how many failures of ``name`` were forgotten. Other names' pair
        counts at those addresses may be forgotten too (SQLite) or kept (DynamoDB)."""
        ...

    def forget_expired(self, *, dry_run: bool = False) -> int:
        """Delete ended sessions and failures older than FAILURE_KEEP_SECONDS (``loopmark gc``);
        how many rows. 0 on DynamoDB, where TTL does it."""
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


def _check_session(id_hash: str) -> bool:
    return isinstance(id_hash, str) and SESSION_HASH_PATTERN.fullmatch(id_hash) is not None


def _login_fields(name: str, address: str) -> tuple[str, str]:
    """What a login form sent, bounded: failures are noted for any name typed, real or not."""
    return name[:40], address[:MAX_ADDRESS_CHARS]


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
                "UPDATE admin_users SET password_hash = ? WHERE name = ? AND password_hash != ?",
                (password_hash, name, password_hash),
            )
            if cursor.rowcount == 1:
                # A new password ends every session opened with the old one.
                conn.execute("DELETE FROM admin_sessions WHERE name = ?", (name,))
                return
            if conn.execute("SELECT 1 FROM admin_users WHERE name = ?", (name,)).fetchone():
                return  # the same hash again
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
            conn.execute("DELETE FROM admin_sessions WHERE name = ?", (name,))
            return conn.execute("DELETE FROM admin_users WHERE name = ?", (name,)).rowcount == 1

    def add_session(self, id_hash: str, name: str, *, expires_at: float) -> None:
        if not _check_session(id_hash) or not valid_name(name):
            raise BadInput("a session needs a SHA-256 hex id and a user name")
        with self.db.write() as conn:
            now = self._clock()
            conn.execute("DELETE FROM admin_sessions WHERE expires_at <= ?", (now,))
            if conn.execute("SELECT COUNT(*) FROM admin_sessions").fetchone()[0] >= MAX_SESSIONS:
                raise BadInput(f"{MAX_SESSIONS} admin sessions are open: log some out first")
            conn.execute(
                "INSERT INTO admin_sessions (id_hash, name, expires_at) VALUES (?, ?, ?)",
                (id_hash, name, expires_at),
            )

    def session_user(self, id_hash: str) -> str | None:
        if not _check_session(id_hash):
            return None
        with self.db.connection() as conn:
            row = conn.execute(
                "SELECT name FROM admin_sessions WHERE id_hash = ? AND expires_at > ?",
                (id_hash, self._clock()),
            ).fetchone()
        return None if row is None else str(row[0])

    def delete_session(self, id_hash: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM admin_sessions WHERE id_hash = ?", (id_hash,))

    def delete_sessions(self, name: str) -> int:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM admin_sessions WHERE name = ?", (name,)).rowcount

    def add_failure(self, name: str, address: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                (*_login_fields(name, address), self._clock()),
            )

    def failures_since(
        self, name: str, address: str, since: Sequence[float]
    ) -> list[tuple[int, int]]:
        name, address = _login_fields(name, address)
        counts = []
        with self.db.connection() as conn:
            for start in since:
                pair, by_address = conn.execute(
                    "SELECT COUNT(*) FILTER (WHERE name = ?), COUNT(*) FROM login_failures"
                    " WHERE address = ? AND at > ?",
                    (name, address, start),
                ).fetchone()
                counts.append((int(pair), int(by_address)))
        return counts

    def clear_failures(self, name: str) -> int:
        name = name[:40]
        with self.db.write() as conn:
            mine = conn.execute("SELECT COUNT(*) FROM login_failures WHERE name = ?", (name,))
            count = int(mine.fetchone()[0])
            conn.execute(
                "DELETE FROM login_failures WHERE name = ? OR address IN"
                " (SELECT address FROM login_failures WHERE name = ?)",
                (name, name),
            )
            return count

    def forget_expired(self, *, dry_run: bool = False) -> int:
        now = self._clock()
        verb = "SELECT COUNT(*)" if dry_run else "DELETE"
        with self.db.write() as conn:
            total = 0
            for sql, param in (
                (f"{verb} FROM admin_sessions WHERE expires_at <= ?", now),
                (f"{verb} FROM login_failures WHERE at <= ?", now - FAILURE_KEEP_SECONDS),
            ):
                cursor = conn.execute(sql, (param,))
                total += int(cursor.fetchone()[0]) if dry_run else cursor.rowcount
            return total


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
                "attribute_exists(#hash) AND #hash <> :hash",
                {":hash": {"S": password_hash}},
            ):
                # A new password for an existing user ends every session opened with the old.
                self.delete_sessions(name)
                return
            current = self.get(name)
            if current is not None and current.password_hash == password_hash:
                return  # the same hash again
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
        self.delete_sessions(name)
        return self._update(
            name,
            "REMOVE #hash, #created ADD #count :minus_one",
            "attribute_exists(#hash)",
            {":minus_one": number(-1)},
        )

    # Sessions: attributes "s:<hash>" = "<expires_at> <name>" of the item SESSIONS_KEY.

    def add_session(self, id_hash: str, name: str, *, expires_at: float) -> None:
        if not _check_session(id_hash) or not valid_name(name):
            raise BadInput("a session needs a SHA-256 hex id and a user name")
        sessions = self._sessions()
        now = self._clock()
        ended = [h for h, (_, until) in sessions.items() if until <= now]
        if len(sessions) - len(ended) >= MAX_SESSIONS:
            raise BadInput(f"{MAX_SESSIONS} admin sessions are open: log some out first")
        names = {"#new": f"s:{id_hash}"} | {f"#e{i}": f"s:{h}" for i, h in enumerate(ended[:50])}
        update = "SET #new = :session" + (
            " REMOVE " + ", ".join(n for n in names if n != "#new") if len(names) > 1 else ""
        )
        self.table.update_item(
            SESSIONS_KEY,
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":session": {"S": f"{expires_at!r} {name}"}},
        )

    def session_user(self, id_hash: str) -> str | None:
        if not _check_session(id_hash):
            return None
        item = self.table.get_item(
            SESSIONS_KEY,
            ProjectionExpression="#s",
            ExpressionAttributeNames={"#s": f"s:{id_hash}"},
        )
        session = self._parse_sessions(item or {}).get(id_hash)
        if session is None or session[1] <= self._clock():
            return None
        return session[0]

    def delete_session(self, id_hash: str) -> None:
        if _check_session(id_hash):
            self.table.update_item(
                SESSIONS_KEY,
                UpdateExpression="REMOVE #s",
                ExpressionAttributeNames={"#s": f"s:{id_hash}"},
            )

    def delete_sessions(self, name: str) -> int:
        theirs = [h for h, (owner, _) in self._sessions().items() if owner == name]
        for id_hash in theirs:
            self.delete_session(id_hash)
        return len(theirs)

    def _sessions(self) -> dict[str, tuple[str, float]]:
        return self._parse_sessions(self.table.get_item(SESSIONS_KEY) or {})

    @staticmethod
    def _parse_sessions(item: dict[str, Any]) -> dict[str, tuple[str, float]]:
        sessions = {}
        for attribute, value in item.items():
            if attribute.startswith("s:") and "S" in value:
                until, _, name = str(value["S"]).partition(" ")
                sessions[attribute.removeprefix("s:")] = (name, float(until))
        return sessions

    # Failed logins: lists of times per pair and per address, and the name's addresses.

    def add_failure(self, name: str, address: str) -> None:
        name, address = _login_fields(name, address)
        now = self._clock()
        expires = number(int(now + FAILURE_KEEP_SECONDS))
        for key in (_pair_key(name, address), _address_key(address)):
            self.table.update_item(
                key,
                UpdateExpression="SET times = list_append(if_not_exists(times, :empty), :now),"
                " #ttl = :expires",
                ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":empty": {"L": []},
                    ":now": {"L": [number(now)]},
                    ":expires": expires,
                },
            )
        self.table.update_item(
            f"{LOGIN_PREFIX}name#{name}",
            UpdateExpression="ADD addresses :address SET #ttl = :expires",
            ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
            ExpressionAttributeValues={":address": {"SS": [address]}, ":expires": expires},
        )

    def failures_since(
        self, name: str, address: str, since: Sequence[float]
    ) -> list[tuple[int, int]]:
        name, address = _login_fields(name, address)
        pair_key, address_key = _pair_key(name, address), _address_key(address)
        items = self.table.batch_get([pair_key, address_key])

        def times(key: str) -> list[float]:
            return [float(t["N"]) for t in items.get(key, {}).get("times", {}).get("L", [])]

        pair, by_address = times(pair_key), times(address_key)
        return [
            (sum(t > start for t in pair), sum(t > start for t in by_address)) for start in since
        ]

    def forget_expired(self, *, dry_run: bool = False) -> int:
        return 0  # every session attribute is pruned at the next login; failures expire by TTL

    def clear_failures(self, name: str) -> int:
        name = name[:40]
        name_key = f"{LOGIN_PREFIX}name#{name}"
        item = self.table.get_item(name_key) or {}
        addresses = item.get("addresses", {}).get("SS", [])
        count = 0
        for address in addresses:
            pair = self.table.get_item(_pair_key(name, address)) or {}
            count += len(pair.get("times", {}).get("L", []))
            for key in (_pair_key(name, address), _address_key(address)):
                self.table.call("delete_item", TableName=self.table.name, Key={"key": {"S": key}})
        self.table.call("delete_item", TableName=self.table.name, Key={"key": {"S": name_key}})
        return count

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


def _pair_key(name: str, address: str) -> str:
    return f"{LOGIN_PREFIX}pair#{name}#{address}"


def _address_key(address: str) -> str:
    return f"{LOGIN_PREFIX}address#{address}"


def open_user_records(url: str, *, clock: Clock = time.time) -> AdminUserRecords:
    """The AdminUserRecords adapter ``url`` (LOOPMARK_RECORDS) names; connects on first use."""
    return open_adapter(
        url, sqlite=SqliteAdminUserRecords, dynamodb=DynamoAdminUserRecords, clock=clock
    )
