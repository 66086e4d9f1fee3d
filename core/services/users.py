"""Users, their roles and passwords (argon2), and API tokens (hashed, shown once, revocable)."""

from __future__ import annotations

import builtins
import datetime as dt
import hashlib
import secrets
import unicodedata
import uuid
from typing import Annotated

import argon2
import msgspec
from kith.actor import Actor, Role
from kith.errors import Conflict, InvalidInput, NotAuthenticated, NotFound
from kith.events import utcnow
from kith.ids import new_id
from kith.logs import get_logger
from kith.normalize import normalize_email
from kith.pagination import check_limit, decode_id_cursor, encode_cursor
from kith.runtime import Kith
from kith.schemas import Page
from kith.storage.prepared import Prepared
from kith.tables import ApiToken, User

TOKEN_PREFIX = "kith_"
_hasher = argon2.PasswordHasher()
_log = get_logger("kith.users")
PASSWORD_MIN, PASSWORD_MAX = 10, 1024
# What the columns hold.
USER_NAME_MAX = 200
TOKEN_NAME_MAX = 100
# Ten years: a token is meant to be replaced now and then.
TOKEN_DAYS_MAX = 3650


class UserOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    email: str
    name: str
    role: Role
    active: bool
    created_at: dt.datetime


class TokenOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class IssuedToken(msgspec.Struct, kw_only=True):
    """A new token: ``secret`` is shown this once and never stored."""

    token: TokenOut
    secret: str


class UserCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new user: a role, and a password only for signing in (it is stored hashed)."""

    email: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]
    role: Role
    name: Annotated[str, msgspec.Meta(max_length=USER_NAME_MAX)] = ""
    password: (
        Annotated[str, msgspec.Meta(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)] | None
    ) = None


class TokenCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new API token for a user; it stops working after ``expires_days``."""

    user_id: uuid.UUID
    name: Annotated[str, msgspec.Meta(max_length=TOKEN_NAME_MAX)] = ""
    expires_days: Annotated[int, msgspec.Meta(ge=1, le=TOKEN_DAYS_MAX)] = 90


def _token_hash(secret: str) -> str:
    # Tokens are 256-bit random strings, so a fast hash is enough: guessing is hopeless.
    return hashlib.sha256(secret.encode()).hexdigest()


def _user_out(row: dict[str, object]) -> UserOut:
    return msgspec.convert(row, UserOut, from_attributes=False)


def _token_out(row: dict[str, object]) -> TokenOut:
    return TokenOut(
        id=row["id"],  # type: ignore[arg-type]
        user_id=row["user"],  # type: ignore[arg-type]
        name=row["name"],  # type: ignore[arg-type]
        prefix=row["prefix"],  # type: ignore[arg-type]
        created_at=row["created_at"],  # type: ignore[arg-type]
        expires_at=row["expires_at"],  # type: ignore[arg-type]
        revoked_at=row["revoked_at"],  # type: ignore[arg-type]
        last_used_at=row["last_used_at"],  # type: ignore[arg-type]
    )


def _check_name(name: str, field: str, limit: int) -> None:
    """A name is one line of text: no control characters (PostgreSQL cannot store a NUL), and
    no longer than its column."""
    if len(name) > limit:
        raise InvalidInput(f"{field} has at most {limit} characters", field=field)
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise InvalidInput(f"{field} must not contain control characters", field=field)


def _check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"a password needs at least {PASSWORD_MIN} characters", field="password")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"a password has at most {PASSWORD_MAX} characters", field="password")


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        roles = ", ".join(role.value for role in Role)
        raise InvalidInput(f"{value!r} is not a role; use one of {roles}", field="role") from None


# Every authenticated request runs this; built once, not per request (see kith.storage.prepared).
_TOKEN_BY_HASH = Prepared(
    lambda token_hash: ApiToken.select(
        ApiToken.id,
        ApiToken.expires_at,
        ApiToken.revoked_at,
        ApiToken.user.id,
        ApiToken.user.role,
        ApiToken.user.active,
        ApiToken.user.email,
    ).where(ApiToken.token_hash == token_hash)
)


class UserService:
    def __init__(self, kith: Kith) -> None:
        self.kith = kith

    async def add(
        self, email: str, role: str, name: str = "", password: str | None = None
    ) -> UserOut:
        address = normalize_email(email)
        parsed_role = parse_role(role)
        if password is not None:
            _check_password(password)
        _check_name(name.strip(), "name", USER_NAME_MAX)
        async with self.kith.unit_of_work():
            if await User.exists().where(User.email == address):
                raise Conflict(f"a user with the email {address} already exists", field="email")
            user_id = new_id()
            await User.insert(
                User(
                    id=user_id,
                    email=address,
                    name=name.strip(),
                    role=parsed_role.value,
                    password_hash=_hasher.hash(password) if password else None,
                    active=True,
                    created_at=utcnow(),
                )
            ).run()
        return await self.get(user_id)

    async def get(self, user_id: uuid.UUID) -> UserOut:
        row = await User.select().where(User.id == user_id).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        return _user_out(row)

    async def by_email(self, email: str) -> UserOut:
        address = normalize_email(email)
        row = await User.select().where(User.email == address).first()
        if row is None:
            raise NotFound(f"no user has the email {address}; add one with `kith users add`")
        return _user_out(row)

    async def list(self) -> list[UserOut]:
        return [_user_out(row) for row in await User.select().order_by(User.created_at).run()]

    async def page(self, cursor: str | None = None, limit: int = 50) -> Page[UserOut]:
        """Users in the order they were added."""
        limit = check_limit(limit)
        query = User.select().order_by(User.id).limit(limit + 1)
        if cursor:
            query = query.where(User.id > decode_id_cursor(cursor))
        rows = await query.run()
        items = [_user_out(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

    async def count(self) -> int:
        return int(await User.count())

    async def set_password(self, user_id: uuid.UUID, password: str) -> None:
        _check_password(password)
        await (
            User.update({User.password_hash: _hasher.hash(password)})
            .where(User.id == user_id)
            .run()
        )

    async def verify_password(self, email: str, password: str) -> UserOut:
        row = await User.select().where(User.email == normalize_email(email)).first()
        if row is None or not row["password_hash"] or not row["active"]:
            raise NotAuthenticated("wrong email or password")
        stored = row["password_hash"]
        try:
            _hasher.verify(stored, password)
        except argon2.exceptions.VerificationError:
            raise NotAuthenticated("wrong email or password") from None
        except argon2.exceptions.InvalidHashError:
            # Damaged in the database: the person cannot sign in until it is set again, and
            # the answer does not tell a caller that this account is different.
            _log.warning("user password hash is not a valid argon2 hash", user_id=str(row["id"]))
            raise NotAuthenticated("wrong email or password") from None
        if _hasher.check_needs_rehash(stored):
            # Hashed under older parameters: the password is at hand now, so the stored hash
            # moves to the current ones.
            await (
                User.update({User.password_hash: _hasher.hash(password)})
                .where((User.id == row["id"]) & (User.password_hash == stored))
                .run()
            )
        return _user_out(row)

    # -- API tokens --------------------------------------------------------------------------

    async def create_token(
        self, email: str, name: str = "", expires_days: int | None = 90
    ) -> IssuedToken:
        return await self._issue(await self.by_email(email), name, expires_days)

    async def create_token_for(
        self, user_id: uuid.UUID, name: str = "", expires_days: int | None = 90
    ) -> IssuedToken:
        try:
            user = await self.get(user_id)
        except NotFound as exc:
            raise InvalidInput(exc.detail, field="user_id") from None
        return await self._issue(user, name, expires_days)

    async def _issue(self, user: UserOut, name: str, expires_days: int | None) -> IssuedToken:
        if expires_days is not None and not 1 <= expires_days <= TOKEN_DAYS_MAX:
            raise InvalidInput(
                f"a token lives from 1 to {TOKEN_DAYS_MAX} days", field="expires_days"
            )
        _check_name(name, "name", TOKEN_NAME_MAX)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        token_id = new_id()
        await ApiToken.insert(
            ApiToken(
                id=token_id,
                user=user.id,
                name=name,
                prefix=secret[: len(TOKEN_PREFIX) + 6],
                token_hash=_token_hash(secret),
                created_at=now,
                expires_at=now + dt.timedelta(days=expires_days) if expires_days else None,
            )
        ).run()
        row = await ApiToken.select().where(ApiToken.id == token_id).first()
        assert row is not None
        return IssuedToken(token=_token_out(row), secret=secret)

    async def list_tokens(self, email: str | None = None) -> builtins.list[TokenOut]:
        query = ApiToken.select().order_by(ApiToken.created_at)
        if email is not None:
            query = query.where(ApiToken.user == (await self.by_email(email)).id)
        return [_token_out(row) for row in await query.run()]

    async def token_page(
        self, user_id: uuid.UUID | None = None, cursor: str | None = None, limit: int = 50
    ) -> Page[TokenOut]:
        """API tokens (of one user), in the order they were created; never the tokens."""
        limit = check_limit(limit)
        query = ApiToken.select().order_by(ApiToken.id).limit(limit + 1)
        if user_id is not None:
            query = query.where(ApiToken.user == user_id)
        if cursor:
            query = query.where(ApiToken.id > decode_id_cursor(cursor))
        rows = await query.run()
        items = [_token_out(row) for row in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)

    async def get_token(self, token_id: uuid.UUID) -> TokenOut:
        row = await ApiToken.select().where(ApiToken.id == token_id).first()
        if row is None:
            raise NotFound(f"token {token_id} does not exist")
        return _token_out(row)

    async def revoke_token(self, token: str) -> TokenOut:
        """Revoke by token id, by its shown prefix, or by the token itself."""
        token = token.strip()
        query = ApiToken.select()
        try:
            query = query.where(ApiToken.id == uuid.UUID(token))
        except ValueError:
            if len(token) > len(TOKEN_PREFIX) + 6:
                query = query.where(ApiToken.token_hash == _token_hash(token))
            else:
                query = query.where(ApiToken.prefix == token)
        rows = await query.run()
        if not rows:
            raise NotFound(f"no token matches {token[:12]!r}; `kith tokens list` shows them")
        if len(rows) > 1:
            raise Conflict(f"{token!r} matches {len(rows)} tokens; revoke by id instead")
        row = rows[0]
        if row["revoked_at"] is None:
            await (
                ApiToken.update({ApiToken.revoked_at: utcnow()})
                .where(ApiToken.id == row["id"])
                .run()
            )
        self.kith.token_cache.forget(str(row["token_hash"]))
        return _token_out(await ApiToken.select().where(ApiToken.id == row["id"]).first() or row)

    async def authenticate(self, secret: str) -> Actor:
        """The user behind a bearer token; :class:`NotAuthenticated` says why it was refused."""
        if not secret.startswith(TOKEN_PREFIX):
            raise NotAuthenticated("this is not a Kith API token")
        digest = _token_hash(secret)
        now = utcnow()
        actor = self.kith.token_cache.get(digest, now)
        if actor is None:
            actor = await self._check_token(digest, now)
        if self.kith.token_cache.use_to_record(digest, now):
            # At most once a minute per token and process (kith.token_cache), so a read
            # stays a read.
            await (
                ApiToken.update({ApiToken.last_used_at: now})
                .where(ApiToken.token_hash == digest)
                .run()
            )
        return actor

    async def _check_token(self, digest: str, now: dt.datetime) -> Actor:
        rows = await _TOKEN_BY_HASH.run(token_hash=digest)
        if not rows:
            raise NotAuthenticated("unknown API token")
        row = rows[0]
        if row["revoked_at"] is not None:
            raise NotAuthenticated("this API token was revoked")
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise NotAuthenticated("this API token has expired; create a new one")
        if not row["user.active"]:
            raise NotAuthenticated("the user of this token is deactivated")
        actor = Actor(
            kind="user", id=row["user.id"], role=Role(row["user.role"]), name=row["user.email"]
        )
        self.kith.token_cache.put(digest, actor, row["expires_at"])
        return actor
