"""Admin passwords: argon2id hashes (argon2-cffi), checked with the same work for unknown users.

A login for a name that does not exist still pays one argon2 verification (against a hash made
once per process), so the answer's timing does not tell whether the user exists.
"""

from __future__ import annotations

import functools
import hashlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from loopmark.errors import BadInput

MIN_PASSWORD_CHARS = 8
# Long enough for any passphrase or password manager; bounds the work a login form can ask for.
MAX_PASSWORD_CHARS = 1024
FINGERPRINT_CHARS = 16


@functools.cache
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults (argon2id, RFC 9106's low-memory profile: 64 MiB, 3 passes).
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password anybody has")


def check_new_password(password: str) -> str:
    """The password to store; BadInput when it is empty, too short or too long."""
    if not password or not password.strip():
        raise BadInput("the password cannot be empty")
    if len(password) < MIN_PASSWORD_CHARS:
        raise BadInput(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise BadInput(f"the password must have at most {MAX_PASSWORD_CHARS} characters")
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(check_new_password(password))


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; None (no such user) costs the same and
    answers False."""
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS]
        stored_hash = None  # never a match, still the same work
    try:
        matched = _hasher().verify(stored_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher().check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


def fingerprint(stored_hash: str) -> str:
    """A short digest of a user's hash, kept in the session: a new password ends old sessions."""
    return hashlib.sha256(stored_hash.encode()).hexdigest()[:FINGERPRINT_CHARS]
