"""The directory (stations, staff, duty rosters, API token hashes).

Mediation owns it: `DirectoryWriter` changes the rows and emits a directory event through the
outbox in the same transaction. Every other service keeps a local copy from those events with
`READ_MODEL_HANDLERS` (event-carried state transfer), so no service reads another's tables."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time

import asyncpg
from pydantic import BaseModel

from fengqiao.auth import hash_token, new_token
from fengqiao.events import (
    CloudEvent,
    EventTypes,
    Role,
    RosterPublished,
    StaffUpserted,
    StationUpserted,
    TokenIssued,
    Topics,
    new_event,
)
from fengqiao.outbox import Outbox

DIRECTORY_SOURCE = "/fengqiao/mediation/directory"


def _hhmm(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


# -- writes shared by the owner (mediation) and every read model ----------------------------------


async def upsert_station(conn: asyncpg.Connection, s: StationUpserted) -> None:
    await conn.execute(
        "INSERT INTO stations (code, name, jurisdiction, phone, active, mailbox, duty_starts, duty_ends, teams, "
        "category_teams, alert_thresholds) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb) "
        "ON CONFLICT (code) DO UPDATE SET name = $2, jurisdiction = $3, phone = coalesce($4, stations.phone), "
        "active = $5, mailbox = $6, duty_starts = $7, duty_ends = $8, teams = $9, category_teams = $10::jsonb, "
        "alert_thresholds = $11::jsonb, updated_at = now()",
        s.code,
        s.name,
        s.jurisdiction,
        s.phone,
        s.active,
        s.mailbox,
        _hhmm(s.duty_starts) if s.duty_starts else None,
        _hhmm(s.duty_ends) if s.duty_ends else None,
        s.teams,
        json.dumps(s.category_teams),
        json.dumps(s.alert_thresholds),
    )


async def upsert_staff(conn: asyncpg.Connection, s: StaffUpserted) -> None:
    await conn.execute(
        "INSERT INTO staff (staff_id, station, name, role, team, badge_no, active, confidential_handler) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (staff_id) DO UPDATE SET station = $2, name = $3, "
        "role = $4, team = $5, badge_no = $6, active = $7, confidential_handler = $8, updated_at = now()",
        s.staff_id,
        s.station,
        s.name,
        s.role,
        s.team,
        s.badge_no,
        s.active,
        s.confidential_handler,
    )


async def replace_roster(conn: asyncpg.Connection, r: RosterPublished) -> None:
    day = date.fromisoformat(r.day)
    await conn.execute("DELETE FROM roster WHERE station = $1 AND day = $2", r.station, day)
    await conn.executemany(
        "INSERT INTO roster (station, day, staff_id, starts, ends) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        [(r.station, day, s["staff_id"], _hhmm(s["start"]), _hhmm(s["end"])) for s in r.shifts],
    )


async def upsert_token(conn: asyncpg.Connection, t: TokenIssued) -> None:
    """Apply a token event. For the same secret a revocation is final (a replayed issue event does
    not bring it back); a newer secret (rotation) replaces the row; an event older than the row's
    secret (a replay after a rotation) changes nothing."""
    await conn.execute(
        "INSERT INTO api_tokens (token_id, token_hash, staff_id, station, role, revoked, revoked_at, issued_at, "
        "expires_at, label) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (token_id) DO UPDATE SET "
        "revoked = CASE WHEN api_tokens.token_hash = $2 THEN api_tokens.revoked OR $6 ELSE $6 END, "
        "revoked_at = CASE WHEN api_tokens.token_hash = $2 THEN COALESCE(api_tokens.revoked_at, $7) ELSE $7 END, "
        "token_hash = $2, staff_id = $3, station = $4, role = $5, issued_at = $8, expires_at = $9, label = $10 "
        "WHERE api_tokens.token_hash = $2 OR api_tokens.issued_at IS NULL OR $8 > api_tokens.issued_at",
        t.token_id,
        t.token_hash,
        t.staff_id,
        t.station,
        t.role,
        t.revoked,
        t.revoked_at,
        t.issued_at,
        t.expires_at,
        t.label,
    )


# -- read model: handlers for services that keep a copy -------------------------------------------


async def on_station_upserted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await upsert_station(conn, event.payload(StationUpserted))


async def on_staff_upserted(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await upsert_staff(conn, event.payload(StaffUpserted))


async def on_roster_published(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await replace_roster(conn, event.payload(RosterPublished))


async def on_token_issued(event: CloudEvent, conn: asyncpg.Connection, outbox: Outbox) -> None:
    await upsert_token(conn, event.payload(TokenIssued))


READ_MODEL_HANDLERS = {
    EventTypes.STATION_UPSERTED: on_station_upserted,
    EventTypes.STAFF_UPSERTED: on_staff_upserted,
    EventTypes.ROSTER_PUBLISHED: on_roster_published,
    EventTypes.TOKEN_ISSUED: on_token_issued,
}


# -- the owner's side: change a row and emit its event in one transaction -------------------------


class DirectoryWriter:
    def __init__(self, conn: asyncpg.Connection, outbox: Outbox) -> None:
        self.conn = conn
        self.outbox = outbox

    def _emit(self, type_: str, payload: BaseModel, key: str, station: str | None) -> None:
        self.outbox.add(
            Topics.DIRECTORY, new_event(type_, payload, source=DIRECTORY_SOURCE, stationid=station), key=key
        )

    async def station(self, s: StationUpserted) -> None:
        await upsert_station(self.conn, s)
        self._emit(EventTypes.STATION_UPSERTED, s, f"station:{s.code}", s.code)

    async def staff(self, s: StaffUpserted) -> list[str]:
        """Create or change a staff record. Deactivating someone, or moving them to another station,
        revokes every token they hold in the same transaction; returns the revoked token ids."""
        before = await self.conn.fetchrow("SELECT station, active FROM staff WHERE staff_id = $1", s.staff_id)
        await upsert_staff(self.conn, s)
        self._emit(EventTypes.STAFF_UPSERTED, s, f"staff:{s.staff_id}", s.station)
        leaves = before is not None and (not s.active or before["station"] != s.station)
        return await self.revoke_staff_tokens(s.staff_id) if leaves else []

    async def roster(self, r: RosterPublished) -> None:
        await replace_roster(self.conn, r)
        self._emit(EventTypes.ROSTER_PUBLISHED, r, f"roster:{r.station}:{r.day}", r.station)

    async def issue_token(
        self,
        *,
        token_id: str,
        role: Role,
        station: str | None,
        staff_id: str | None = None,
        expires_at: datetime | None = None,
        label: str | None = None,
        token: str | None = None,
    ) -> str:
        """Create (or rotate) a token; returns the plaintext, which is shown once and never stored.
        `token`: a plaintext the caller derives itself (a console session's, from its cookie)."""
        token = token or new_token()
        t = TokenIssued(
            token_id=token_id,
            token_hash=hash_token(token),
            staff_id=staff_id,
            station=station,
            role=role,
            issued_at=datetime.now(UTC),
            expires_at=expires_at,
            label=label,
        )
        await upsert_token(self.conn, t)
        self._emit(EventTypes.TOKEN_ISSUED, t, f"token:{token_id}", station)
        return token

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke one token (announced to every service); False if there is none or it is revoked."""
        row = await self.conn.fetchrow("SELECT * FROM api_tokens WHERE token_id = $1 AND NOT revoked", token_id)
        if row is None:
            return False
        t = TokenIssued(
            token_id=row["token_id"],
            token_hash=row["token_hash"],
            staff_id=row["staff_id"],
            station=row["station"],
            role=row["role"],
            revoked=True,
            revoked_at=datetime.now(UTC),
            issued_at=row["issued_at"],
            expires_at=row["expires_at"],
            label=row["label"],
        )
        await upsert_token(self.conn, t)
        self._emit(EventTypes.TOKEN_ISSUED, t, f"token:{token_id}", row["station"])
        return True

    async def revoke_staff_tokens(self, staff_id: str) -> list[str]:
        ids = [
            r["token_id"]
            for r in await self.conn.fetch(
                "SELECT token_id FROM api_tokens WHERE staff_id = $1 AND NOT revoked ORDER BY token_id", staff_id
            )
        ]
        return [i for i in ids if await self.revoke_token(i)]
