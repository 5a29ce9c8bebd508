"""API tokens for staff and integrations: random bearer tokens, stored only as SHA-256 hashes.

Tokens carry 256 bits of randomness, so a fast hash is the right tool (a password hash would only
slow every request). Lookups compare hashes through the unique index; the token never appears in
logs."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg

TOKEN_PREFIX = "fq_"
STATION_ROLES = frozenset({"officer", "mediator", "instructor", "leader"})
DEPLOYMENT_ROLES = frozenset({"bureau", "admin"})
ALL_ROLES = STATION_ROLES | DEPLOYMENT_ROLES | {"integration"}


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: str
    station: str | None
    staff_id: str | None

    @property
    def is_staff(self) -> bool:
        return self.role != "integration"

    @property
    def sees_all_stations(self) -> bool:
        return self.role in DEPLOYMENT_ROLES

    def can_see_station(self, station: str) -> bool:
        return self.sees_all_stations or self.station == station

    def may_file_for(self, station: str) -> bool:
        """Staff file items for their own station only; other bureau systems for any."""
        return not self.is_staff or self.can_see_station(station)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


# A token acts with its staff member's *current* role and station, and only while they are active at
# the token's station: deactivating or transferring someone stops their tokens as soon as the
# directory event reaches the service, even before the revocation itself arrives.
_AUTHENTICATE = """
SELECT t.token_id, t.staff_id, t.last_used_at,
       CASE WHEN t.staff_id IS NULL THEN t.role ELSE s.role END AS role,
       CASE WHEN t.staff_id IS NULL THEN t.station ELSE s.station END AS station
  FROM api_tokens t LEFT JOIN staff s ON s.staff_id = t.staff_id
 WHERE t.token_hash = $1
   AND NOT t.revoked
   AND (t.expires_at IS NULL OR t.expires_at > now())
   AND (t.staff_id IS NULL OR (s.active AND s.station IS NOT DISTINCT FROM t.station))
"""
LAST_USED_GRANULARITY_S = 60  # at most one write per token and minute, not one per request


async def authenticate(conn: asyncpg.Connection, token: str | None) -> Principal | None:
    """Resolve a bearer token against this service's directory read model."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = await conn.fetchrow(_AUTHENTICATE, hash_token(token))
    if row is not None:
        await conn.execute(
            "UPDATE api_tokens SET last_used_at = now() WHERE token_id = $1 "
            "AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => $2))",
            row["token_id"],
            LAST_USED_GRANULARITY_S,
        )
    return principal_from_row(row)


def principal_from_row(row: asyncpg.Record | None) -> Principal | None:
    """The principal of a token row, or None for a row no request may act as: an unknown role, or
    a station role without a station (code that reads "no station" as "every station" would widen
    it to the whole deployment; the review found such reads in triage and notify)."""
    if row is None or row["role"] not in ALL_ROLES:
        return None
    if row["role"] in STATION_ROLES and not row["station"]:
        return None
    return Principal(token_id=row["token_id"], role=row["role"], station=row["station"], staff_id=row["staff_id"])
