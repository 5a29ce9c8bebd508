"""People sign in (DESIGN 4.8): accounts with argon2id password hashes, lockout and delay after
repeated failures, server-side sessions with idle and absolute timeouts, CSRF tokens per session.

A session is valid only while its person is active in the directory: deactivating or moving
someone ends it at once (the directory writer also deletes their sessions).

Each session carries a session-bound API token (issue 16), so the console can call intake's and
notify's APIs as the signed-in person without reading their databases: its plaintext is derived
from the session cookie (never stored, never sent to the browser), only its hash is announced like
every token's, it expires with the session, and every path that ends a session revokes it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from fengqiao.auth import TOKEN_PREFIX
from fengqiao.directory import DirectoryWriter
from fengqiao.outbox import Outbox
from mediation import db

# argon2id with the library's defaults (RFC 9106's second recommended profile: 64 MiB, t=3).
HASHER = PasswordHasher()
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))  # verified for unknown names: same cost, same time

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)  # a shift; then sign in again
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most once a minute per session
LOCK_AFTER = 5  # failed sign-ins of one user name within the window lock it
FAILURE_WINDOW_S = 15 * 60
LOCK_S = 15 * 60
MAX_DELAY_S = 3.0  # each failure answers a little later, up to this
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256  # argon2 takes any length; the form does not need more


class SignInRefused(Exception):
    """Wrong name or password (never which of the two), or a locked name; message in Chinese."""

    def __init__(self, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class PasswordRefused(ValueError):
    """A new password that does not meet the rules; message in Chinese, naming the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Session:
    session_hash: str
    staff_id: str
    role: str
    station: str | None
    name: str
    csrf_token: str
    must_change: bool
    # the session-bound API token for intake and notify (server side only; never rendered)
    api_token: str = field(default="", repr=False)


SESSION_TOKEN_LABEL = "工作台会话"


_TOKEN_KEY: list[bytes] = []  # the server's secret for session tokens: use_token_key() at start


def use_token_key(key: bytes) -> None:
    """Set by the composition root from the blind-index key: with the cookie alone nobody can
    compute the session's API token (a stolen cookie stays a console session, not an API key)."""
    _TOKEN_KEY[:] = [hashlib.sha256(b"fengqiao console-api token\0" + key).digest()]


def session_api_token(cookie: str) -> str:
    """The session's API token, recomputed from its cookie and the server's secret on each request
    (only its hash is stored)."""
    if not _TOKEN_KEY:
        raise RuntimeError("signin.use_token_key() was not called")
    digest = hmac.new(_TOKEN_KEY[0], cookie.encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def session_token_id(session_hash: str) -> str:
    """The token's id: derived from the session hash, so ending a session finds its token."""
    return "session:" + hashlib.sha256(f"token-id:{session_hash}".encode()).hexdigest()[:16]


async def _open_session(
    conn: asyncpg.Connection, cookie: str, account: asyncpg.Record, csrf: str, method: str = "password"
) -> None:
    """The session row and its token, in the caller's transaction (the token's event through the
    outbox). A person who must still choose a password gets the token only once they have."""
    session_hash = _hash(cookie)
    await db.accounts.create_session(conn, session_hash, account["staff_id"], csrf, method=method)
    if method == "password" and account["must_change"]:
        return
    await _issue_session_token(conn, session_hash, account, session_api_token(cookie))


async def _issue_session_token(conn: asyncpg.Connection, session_hash: str, account: Any, token: str) -> None:
    outbox = Outbox(conn)
    await DirectoryWriter(conn, outbox).issue_token(
        token_id=session_token_id(session_hash),
        role=account["role"],
        station=account["station"],
        staff_id=account["staff_id"],
        expires_at=datetime.now(UTC) + ABSOLUTE_TIMEOUT,
        label=SESSION_TOKEN_LABEL,
        token=token,
    )
    await outbox.flush()


async def revoke_session_tokens(conn: asyncpg.Connection, session_hashes: list[str]) -> None:
    """The tokens of ended sessions are revoked, announced to every service (call in a transaction)."""
    if not session_hashes:
        return
    outbox = Outbox(conn)
    writer = DirectoryWriter(conn, outbox)
    for session_hash in session_hashes:
        await writer.revoke_token(session_token_id(session_hash))
    await outbox.flush()


async def sweep_expired_sessions(pool: asyncpg.Pool, now: datetime) -> int:
    """Sessions nobody came back to after their timeout: ended, and their tokens revoked (a leaked
    cookie must not keep working at intake and notify until the token's own 12-hour expiry)."""
    async with pool.acquire() as conn, conn.transaction():
        ended = await db.accounts.end_expired_sessions(
            conn, now, IDLE_TIMEOUT.total_seconds(), ABSOLUTE_TIMEOUT.total_seconds()
        )
        await revoke_session_tokens(conn, ended)
    return len(ended)


async def end_sessions_of(conn: asyncpg.Connection, staff_id: str) -> None:
    """Every session of a person ends (password reset, new role) and their tokens are revoked."""
    await revoke_session_tokens(conn, await db.accounts.end_sessions_of(conn, staff_id))


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def _verify(password_hash: str, password: str) -> bool:
    """argon2 costs ~50 ms of CPU: off the event loop."""

    def check() -> bool:
        try:
            return HASHER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


class _Locked(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


async def _count_attempt(pool: asyncpg.Pool, username: str, now: datetime) -> int:
    """Count this attempt before the password is checked; _Locked if the name is locked, or if
    this attempt is one past the limit (it then locks the name). Returns the attempt's number."""
    async with pool.acquire() as conn, conn.transaction():
        row = await db.accounts.reserve_attempt(conn, username or "-", now=now, window_s=FAILURE_WINDOW_S)
        if row["locked_until"] and row["locked_until"] > now:
            raise _Locked(int((row["locked_until"] - now).total_seconds()) + 1)
        if row["attempts"] > LOCK_AFTER:
            await db.accounts.lock(conn, username or "-", now=now, lock_s=LOCK_S)
            raise _Locked(LOCK_S)
    attempts: int = row["attempts"]
    return attempts


async def _after_failure(pool: asyncpg.Pool, username: str, attempts: int, now: datetime) -> None:
    """A wrong password: the name locks at the limit, and the answer comes a little later."""
    if attempts >= LOCK_AFTER:
        async with pool.acquire() as conn:
            await db.accounts.lock(conn, username or "-", now=now, lock_s=LOCK_S)
    await asyncio.sleep(min(MAX_DELAY_S, 0.5 * attempts))


def _locked_message(retry_after_s: int) -> str:
    return f"登录失败次数过多，该账号已暂时锁定，请 {retry_after_s // 60 + 1} 分钟后再试，或联系所领导重置密码。"


async def sign_in(pool: asyncpg.Pool, username: str, password: str, now: datetime) -> tuple[str, Session]:
    """Check the name and password; returns the new session's cookie value and the session.

    Every attempt is counted before its password is checked, so parallel guesses gain nothing:
    at most LOCK_AFTER passwords of a name are ever checked per window."""
    username = username.strip()[:100]
    password = password[:MAX_PASSWORD_LENGTH]
    try:
        attempts = await _count_attempt(pool, username, now)
    except _Locked as exc:
        raise SignInRefused(_locked_message(exc.retry_after_s), retry_after_s=exc.retry_after_s) from None
    async with pool.acquire() as conn:
        account = await db.accounts.account_by_username(conn, username) if username else None
    ok = await _verify(account["password_hash"] if account else _DUMMY_HASH, password)
    if not ok or account is None or not account["active"]:
        await _after_failure(pool, username, attempts, now)
        raise SignInRefused("用户名或密码错误。")
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await db.accounts.clear_failures(conn, username)
        if HASHER.check_needs_rehash(account["password_hash"]):
            await db.accounts.rehash(conn, account["staff_id"], HASHER.hash(password))
        await _open_session(conn, cookie, account, csrf)
    session = Session(
        _hash(cookie),
        account["staff_id"],
        account["role"],
        account["station"],
        account["name"],
        csrf,
        account["must_change"],
        session_api_token(cookie),
    )
    return cookie, session


async def sign_in_verified(pool: asyncpg.Pool, username: str, now: datetime) -> tuple[str, Session]:
    """A person the bureau's identity provider vouched for (OpenID Connect, `mediation.oidc`):
    the account must exist and its person be active in the directory. The same session as a
    password sign-in, without the forced password change (they never typed a one-time password)."""
    del now  # the session's times are the database's, as for a password sign-in
    username = username.strip()[:100]
    async with pool.acquire() as conn:
        account = await db.accounts.account_by_username(conn, username) if username else None
    if account is None:
        raise SignInRefused("统一身份认证的账号在本系统中没有对应的工作人员，请联系系统管理员。")
    if not account["active"]:
        raise SignInRefused("该工作人员账号已停用，无法登录。")
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with pool.acquire() as conn, conn.transaction():
        await _open_session(conn, cookie, account, csrf, method="oidc")
    session = Session(
        _hash(cookie),
        account["staff_id"],
        account["role"],
        account["station"],
        account["name"],
        csrf,
        False,
        session_api_token(cookie),
    )
    return cookie, session


async def current_session(
    conn: asyncpg.Connection, cookie: str | None, now: datetime, *, activity: bool = True
) -> Session | None:
    """The session of a cookie, if it is still valid (idle and absolute timeouts, person active).
    `activity=False`: a page's own background poll, which must not keep an unattended session alive."""
    if not cookie or len(cookie) > 100:
        return None
    row = await db.accounts.session(conn, _hash(cookie))
    if row is None:
        return None
    if now - row["last_seen_at"] > IDLE_TIMEOUT or now - row["created_at"] > ABSOLUTE_TIMEOUT:
        async with conn.transaction():  # an idle-expired session's token goes with it
            await revoke_session_tokens(conn, await db.accounts.end_session(conn, row["session_hash"]))
        return None
    if activity and now - row["last_seen_at"] > TOUCH_EVERY:
        await db.accounts.touch_session(conn, row["session_hash"], now)
    return Session(
        row["session_hash"],
        row["staff_id"],
        row["role"],
        row["station"],
        row["name"],
        row["csrf_token"],
        row["must_change"],
        session_api_token(cookie),
    )


def csrf_ok(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and secrets.compare_digest(session.csrf_token, str(submitted))


def check_new_password(username: str, current: str, new: str, confirm: str) -> None:
    if len(new) < MIN_PASSWORD_LENGTH:
        raise PasswordRefused("new_password", f"新密码至少 {MIN_PASSWORD_LENGTH} 位。")
    if len(new) > MAX_PASSWORD_LENGTH:
        raise PasswordRefused("new_password", f"新密码不能超过 {MAX_PASSWORD_LENGTH} 位。")
    if new == current:
        raise PasswordRefused("new_password", "新密码不能与当前密码相同。")
    if username.lower() in new.lower():
        raise PasswordRefused("new_password", "新密码不能包含用户名。")
    if len(set(new)) < 4:
        raise PasswordRefused("new_password", "新密码过于简单，请混合使用字母、数字和符号。")
    if new != confirm:
        raise PasswordRefused("confirm_password", "两次输入的新密码不一致。")


async def change_password(pool: asyncpg.Pool, session: Session, current: str, new: str, confirm: str) -> None:
    """The signed-in person changes their password; their other sessions end."""
    async with pool.acquire() as conn:
        account = await db.accounts.account_of(conn, session.staff_id)
        row = await db.accounts.account_by_username(conn, account["username"]) if account else None
    if row is None:
        raise PasswordRefused("current_password", "当前密码不正确。")
    # Guessing the current password from a session left open is limited like signing in.
    now = datetime.now(UTC)
    try:
        attempts = await _count_attempt(pool, row["username"], now)
    except _Locked as exc:
        raise PasswordRefused("current_password", _locked_message(exc.retry_after_s)) from None
    if not await _verify(row["password_hash"], current[:MAX_PASSWORD_LENGTH]):
        await _after_failure(pool, row["username"], attempts, now)
        raise PasswordRefused("current_password", "当前密码不正确。")
    async with pool.acquire() as conn:
        await db.accounts.clear_failures(conn, row["username"])
    check_new_password(row["username"], current, new, confirm)
    new_hash = await asyncio.to_thread(HASHER.hash, new)
    async with pool.acquire() as conn, conn.transaction():
        await db.accounts.set_password(conn, session.staff_id, row["username"], new_hash, must_change=False)
        ended = await db.accounts.end_other_sessions(conn, session.staff_id, session.session_hash)
        await revoke_session_tokens(conn, ended)
        if session.must_change:  # the session's token, held back until the person chose a password
            person = {"staff_id": session.staff_id, "role": session.role, "station": session.station}
            await _issue_session_token(conn, session.session_hash, person, session.api_token)


async def set_account(
    conn: asyncpg.Connection, staff_id: str, username: str, password: str, *, must_change: bool = True
) -> None:
    """Create or reset an account (by a leader or an administrator, or the demo seed): the person
    must choose their own password at the next sign-in unless `must_change` is False (demo only)."""
    username = username.strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise PasswordRefused("username", "用户名须为 1 至 64 个字符，不含空格。")
    if await db.accounts.username_taken(conn, username, staff_id):
        raise PasswordRefused("username", f"用户名“{username}”已被使用。")
    try:
        async with conn.transaction():  # a savepoint inside the caller's transaction
            await db.accounts.set_password(conn, staff_id, username, HASHER.hash(password), must_change=must_change)
    except asyncpg.UniqueViolationError:  # the same name taken at the same moment by another request
        raise PasswordRefused("username", f"用户名“{username}”已被使用。") from None
    await end_sessions_of(conn, staff_id)


async def sign_out(conn: asyncpg.Connection, session: Session, *, everywhere: bool = False) -> None:
    async with conn.transaction():
        if everywhere:
            await end_sessions_of(conn, session.staff_id)
        else:
            await revoke_session_tokens(conn, await db.accounts.end_session(conn, session.session_hash))
