"""Users, API tokens, web sessions and login throttling, kept in the database (migration 0023).

Passwords are hashed with scrypt (werkzeug.security); tokens and session ids are random 256-bit
values stored as their SHA-256 only, so the database never holds anything that logs in by itself.
No Flask here: the web app, the OGC face and the CLI all call these functions.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass

import psycopg
from psycopg.rows import dict_row
from werkzeug.security import check_password_hash, generate_password_hash

from ..errors import InvalidParameter, TooManyRequests
from ..rows import one
from .rules import ANONYMOUS, ROLES

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}$")
MIN_PASSWORD = 10
TOKEN_PREFIX = "iocgis_"
# Throttling: at most this many failed logins in WINDOW per account name, and per client address.
WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 30
SESSION_HOURS = 12


@dataclass(frozen=True)
class Principal:
    """Who makes a request: a logged-in user, a token's client, or the anonymous public."""

    name: str
    role: str
    kind: str  # 'user', 'token' or 'anonymous'

    @property
    def actor(self) -> str:
        """How the audit trail names them ('user:lan', 'token:qgis-sync')."""
        return f"{self.kind}:{self.name}"

    @property
    def anonymous(self) -> bool:
        return self.kind == ANONYMOUS


PUBLIC = Principal("public", ANONYMOUS, ANONYMOUS)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the name is unknown, so that the answer takes as long either way."""
    return generate_password_hash("not a password of anyone", method="scrypt")


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameter("Tên chỉ gồm chữ thường không dấu, số, '.', '_', '-' (2–63 ký tự).",
                               "A name is 2–63 lowercase ASCII letters, digits, '.', '_' or '-'.")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidParameter(f"Vai trò không tồn tại: {role!r}.",
                               f"Unknown role {role!r} (one of {', '.join(ROLES)}).")
    return role


def hash_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidParameter(f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự.",
                               f"A password needs at least {MIN_PASSWORD} characters.")
    return generate_password_hash(password, method="scrypt")


# -- users ---------------------------------------------------------------------------------------


def add_user(conn: psycopg.Connection, name: str, role: str, password: str, full_name: str | None = None) -> None:
    try:
        conn.execute("INSERT INTO users (name, role, password_hash, full_name) VALUES (%s, %s, %s, %s)",
                     (check_name(name), check_role(role), hash_password(password), full_name))
    except psycopg.errors.UniqueViolation:
        raise InvalidParameter(f"Người dùng '{name}' đã có.", f"User '{name}' already exists.") from None


def _one_user(conn: psycopg.Connection, statement: str, params: tuple, name: str) -> None:
    if conn.execute(statement, params).rowcount != 1:
        raise InvalidParameter(f"Không có người dùng '{name}'.", f"No user '{name}'.")


def set_password(conn: psycopg.Connection, name: str, password: str) -> None:
    """A new password ends every session the user had."""
    _one_user(conn, "UPDATE users SET password_hash = %s WHERE name = %s", (hash_password(password), name), name)
    conn.execute("DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users WHERE name = %s)", (name,))


def set_disabled(conn: psycopg.Connection, name: str, disabled: bool = True) -> None:
    _one_user(conn, "UPDATE users SET disabled = %s WHERE name = %s", (disabled, name), name)
    if disabled:
        conn.execute("DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users WHERE name = %s)", (name,))


def list_users(conn: psycopg.Connection) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT name, full_name, role, disabled, created_at, last_login_at FROM users"
                           " ORDER BY name").fetchall()


# -- API tokens ----------------------------------------------------------------------------------


def create_token(conn: psycopg.Connection, name: str, role: str, days: int = 365,
                 created_by: str | None = None) -> str:
    """A new token; the secret is returned once and only its hash is kept."""
    if not 1 <= days <= 3650:
        raise InvalidParameter("Thời hạn token từ 1 đến 3650 ngày.", "A token lasts 1 to 3650 days.")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        conn.execute("INSERT INTO api_tokens (name, role, token_hash, created_by, expires_at)"
                     " VALUES (%s, %s, %s, %s, now() + make_interval(days => %s))",
                     (check_name(name), check_role(role), _digest(secret), created_by, days))
    except psycopg.errors.UniqueViolation:
        raise InvalidParameter(f"Token '{name}' đã có.", f"Token '{name}' already exists.") from None
    return secret


def revoke_token(conn: psycopg.Connection, name: str) -> None:
    if conn.execute("UPDATE api_tokens SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
                    (name,)).rowcount != 1:
        raise InvalidParameter(f"Không có token còn hiệu lực tên '{name}'.", f"No live token named '{name}'.")


def list_tokens(conn: psycopg.Connection) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT name, role, created_by, created_at, expires_at, revoked_at, last_used_at"
                           " FROM api_tokens ORDER BY name").fetchall()


def token_principal(conn: psycopg.Connection, secret: str) -> Principal | None:
    """The client a bearer token names, or None when it is unknown, expired or revoked."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    row = conn.execute("SELECT id, name, role, last_used_at < now() - interval '5 minutes' OR last_used_at IS NULL"
                       " FROM api_tokens WHERE token_hash = %s AND revoked_at IS NULL AND expires_at > now()",
                       (_digest(secret),)).fetchone()
    if row is None:
        return None
    token_id, name, role, stale = row
    if stale:  # when it was last used, to the nearest five minutes: no write on every request
        conn.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = %s", (token_id,))
    return Principal(name, role, "token")


# -- logging in, web sessions ------------------------------------------------------------------


def _throttled(conn: psycopg.Connection, name: str, address: str) -> bool:
    by_name, by_address = one(conn.execute(
        "SELECT count(*) FILTER (WHERE name = %(name)s), count(*) FILTER (WHERE address = %(address)s)"
        " FROM login_failures WHERE at > now() - %(window)s AND (name = %(name)s OR address = %(address)s)",
        {"name": name, "address": address, "window": WINDOW}))
    return by_name >= MAX_FAILURES_PER_NAME or by_address >= MAX_FAILURES_PER_ADDRESS


def login(conn: psycopg.Connection, name: str, password: str, address: str) -> tuple[Principal, str] | None:
    """Check a password and open a web session: the principal and the new session id (for the
    cookie), or None for a wrong name or password (the failure is recorded: the caller commits, it
    does not raise inside the transaction). Failures are counted per name and per address; past the
    bound, 429 until the window passes, whatever the password."""
    name = (name or "").strip().lower()[:63]
    if _throttled(conn, name, address):
        raise TooManyRequests("Đăng nhập sai quá nhiều lần; vui lòng thử lại sau 15 phút.",
                              "Too many failed logins; please try again in 15 minutes.",
                              int(WINDOW.total_seconds()))
    row = conn.execute("SELECT id, role, password_hash FROM users WHERE name = %s AND NOT disabled",
                       (name,)).fetchone()
    ok = check_password_hash(row[2] if row else _dummy_hash(), password or "")
    if not (row and ok):
        conn.execute("DELETE FROM login_failures WHERE at < now() - interval '1 day'")
        conn.execute("INSERT INTO login_failures (name, address) VALUES (%s, %s)", (name, address))
        return None
    user_id, role, _hash = row
    conn.execute("DELETE FROM login_failures WHERE name = %s", (name,))
    conn.execute("UPDATE users SET last_login_at = now() WHERE id = %s", (user_id,))
    conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
    session_id = secrets.token_urlsafe(32)
    conn.execute("INSERT INTO web_sessions (id_hash, user_id, expires_at) VALUES (%s, %s, now() + %s)",
                 (_digest(session_id), user_id, dt.timedelta(hours=SESSION_HOURS)))
    return Principal(name, role, "user"), session_id


def session_principal(conn: psycopg.Connection, session_id: str) -> Principal | None:
    """The user of a live web session (None once it expired, was ended, or the user disabled)."""
    row = conn.execute("SELECT u.name, u.role FROM web_sessions s JOIN users u ON u.id = s.user_id"
                       " WHERE s.id_hash = %s AND s.expires_at > now() AND NOT u.disabled",
                       (_digest(session_id),)).fetchone()
    return Principal(row[0], row[1], "user") if row else None


def logout(conn: psycopg.Connection, session_id: str) -> None:
    conn.execute("DELETE FROM web_sessions WHERE id_hash = %s", (_digest(session_id),))
