"""Who may use the back-office, server-side: admin sessions and the failed-login limits.

Sessions: the cookie (signed by Flask) carries a random id; the records keep its SHA-256 with
the user's name and its end, and every admin request checks it there. So logout really ends a
session (a copied cookie replayed afterwards is refused), and a new password ends them all.

Failed logins are limited per (name, address) pair and per address, never per name alone: a
stranger who types the admin's name with wrong passwords from other addresses holds back only
those addresses, and the admin still logs in from theirs. The counts live in the records, not in
the web process's memory, so every process (and ``loopmark admin unlock NAME``) sees the same
ones. A botnet guessing one name from many addresses is not stopped by a count; argon2's cost
per guess and a strong password are what stand in its way, and each failure is logged.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, parse_many

from loopmark.errors import ConfigInvalid
from loopmark.records.users import AdminUserRecords

SESSION_ID_BYTES = 32


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class AdminSessions:
    """Sessions held in the user records (see the module doc)."""

    def __init__(
        self, records: AdminUserRecords, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.records = records
        self.clock = clock

    def open(self, name: str, *, lifetime_s: float) -> str:
        """A new session for ``name``; its id, for the (signed) cookie."""
        session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
        self.records.add_session(
            session_hash(session_id), name, expires_at=self.clock() + lifetime_s
        )
        return session_id

    def user(self, session_id: object) -> str | None:
        """The name of the live session ``session_id``, or None."""
        if not isinstance(session_id, str) or not session_id:
            return None
        return self.records.session_user(session_hash(session_id))

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str) and session_id:
            self.records.delete_session(session_hash(session_id))


@dataclass(frozen=True)
class Limit:
    amount: int
    window_s: float


def parse_limits(text: str, variable: str) -> tuple[Limit, ...]:
    """``5/minute;30/hour`` → limits; ConfigInvalid naming ``variable`` otherwise."""
    try:
        items: list[RateLimitItem] = parse_many(text)
    except ValueError:
        items = []
    if not items:
        raise ConfigInvalid(f"{variable} must look like '5/minute;30/hour', got {text!r}")
    return tuple(Limit(item.amount, float(item.get_expiry())) for item in items)


class LoginLimits:
    """Failed logins per (name, address) pair and per address, counted in the records."""

    def __init__(
        self,
        records: AdminUserRecords,
        *,
        pair_limits: tuple[Limit, ...],
        address_limits: tuple[Limit, ...],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.pair_limits = pair_limits
        self.address_limits = address_limits
        self.clock = clock

    def retry_after(self, name: str, address: str) -> int | None:
        """Seconds to wait when ``name`` from ``address`` is held back by failed logins, else
        None. Checked before the password, so a held-back guess costs no argon2 work."""
        windows = sorted({limit.window_s for limit in self.pair_limits + self.address_limits})
        now = self.clock()
        counts = dict(
            zip(
                windows,
                self.records.failures_since(name, address, [now - w for w in windows]),
                strict=True,
            )
        )
        held = [
            limit.window_s
            for limits, which in ((self.pair_limits, 0), (self.address_limits, 1))
            for limit in limits
            if counts[limit.window_s][which] >= limit.amount
        ]
        # The whole window: the exact time the oldest failure leaves it is not worth a query.
        return math.ceil(max(held)) if held else None

    def failed(self, name: str, address: str) -> None:
        self.records.add_failure(name, address)

    def unlock(self, name: str) -> int:
        """Forget the failed logins of ``name`` and of the addresses they came from; how many."""
        return self.records.clear_failures(name)
