"""`loopmark admin create-user NAME`: the password from a pipe or a prompt; exit 2 on bad input."""

from __future__ import annotations

import contextlib
import getpass
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopmark.admin import commands
from loopmark.errors import BadInput
from loopmark.records import setup_all
from loopmark.records.users import open_user_records
from loopmark.service.passwords import verify_password
from loopmark.service.users import AdminUsers


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    settings = {
        "LOOPMARK_DATA_DIR": str(tmp_path),
        "LOOPMARK_RECORDS": f"sqlite:///{tmp_path / 'loopmark.db'}",
    }
    setup_all(settings["LOOPMARK_RECORDS"])
    return settings


def run(env: dict[str, str], *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopmark", "admin", "create-user", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
    )


def stored_hash(env: dict[str, str], name: str) -> str | None:
    users = open_user_records(env["LOOPMARK_RECORDS"])
    try:
        user = users.get(name)
    finally:
        users.close()
    return None if user is None else user.password_hash


def test_create_user_from_standard_input(env: dict[str, str]) -> None:
    result = run(env, "ana", stdin="a long passphrase\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "admin user ana created"
    password_hash = stored_hash(env, "ana")
    assert password_hash is not None and password_hash.startswith("$argon2id$")
    assert verify_password(password_hash, "a long passphrase")
    again = run(env, "ana", stdin="another passphrase\n")
    assert again.stdout.strip() == "admin user ana has a new password"
    assert verify_password(stored_hash(env, "ana"), "another passphrase")


@pytest.mark.parametrize(
    ("name", "stdin", "reason"),
    [
        ("ana", "", "the password cannot be empty"),
        ("ana", "\n", "the password cannot be empty"),
        ("ana", "short\n", "at least 8 characters"),
        ("Ana Maria", "a long passphrase\n", "a user name is 1 to 40"),
        ("../etc", "a long passphrase\n", "a user name is 1 to 40"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    env: dict[str, str], name: str, stdin: str, reason: str
) -> None:
    result = run(env, name, stdin=stdin)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert reason in result.stderr
    assert stored_hash(env, "ana") is None


@contextlib.contextmanager
def users_of(env: dict[str, str]) -> Iterator[AdminUsers]:
    """The admin users service over the test's records."""
    users = AdminUsers(open_user_records(env["LOOPMARK_RECORDS"]))
    try:
        yield users
    finally:
        users.close()


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_prompts_twice(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["a long passphrase", "a long passphrase"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    with users_of(env) as users:
        line = commands.run_create_user("bo", users, FakeTerminal())
    assert line == "admin user bo created"
    assert verify_password(stored_hash(env, "bo"), "a long passphrase")


def test_a_terminal_mismatch_is_refused(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["a long passphrase", "a long passfrase"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    with pytest.raises(BadInput, match="do not match"), users_of(env) as users:
        commands.run_create_user("bo", users, FakeTerminal())
    assert stored_hash(env, "bo") is None
