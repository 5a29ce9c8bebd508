"""The rectification ledger's staff API (整改台账)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fengqiao.http import StaffPrincipal, api_error, iso
from fengqiao.runtime import RuntimeDep
from mediation import db, rectification
from mediation.deps import TRACKING_NO_PATTERN, CurrentActor, RowId
from mediation.unit import audit, staff_unit

router = APIRouter(prefix="/api/v1/rectifications", tags=["rectification"])


TrackingNos = list[Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=TRACKING_NO_PATTERN)]]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MeasureIn(_In):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    owner_id: str = Field(min_length=1, max_length=64)
    due_at: datetime
    tracking_nos: TrackingNos = Field(min_length=1, max_length=500)


class ItemsIn(_In):
    tracking_nos: TrackingNos = Field(min_length=1, max_length=500)


class NoteIn(_In):
    note: str = Field(min_length=1, max_length=5000)


class EvidenceIn(_In):
    evidence: str = Field(min_length=1, max_length=5000)


def _now() -> datetime:
    return datetime.now(UTC)


def _row(r: Any) -> dict:
    return {k: iso(v) for k, v in dict(r).items()}


@router.post("", status_code=201)
async def create_measure(body: MeasureIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        measure_id = await rectification.create(
            conn,
            actor,
            title=body.title,
            description=body.description,
            owner_id=body.owner_id,
            due_at=body.due_at,
            tracking_nos=body.tracking_nos,
            now=_now(),
        )
        await audit(conn, principal, "create_rectification", None, actor.station, f"measure {measure_id}")
    return {"measure_id": measure_id, "status": "open"}


@router.post("/{measure_id}/items")
async def link_items(
    measure_id: RowId, body: ItemsIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        await rectification.link(conn, actor, measure_id, body.tracking_nos)
    return {"measure_id": measure_id, "linked": body.tracking_nos}


@router.post("/{measure_id}/progress")
async def add_progress(
    measure_id: RowId, body: NoteIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        await rectification.progress(conn, actor, measure_id, body.note, _now())
    return {"measure_id": measure_id}


@router.post("/{measure_id}/complete")
async def complete(
    measure_id: RowId, body: EvidenceIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        await rectification.complete(conn, actor, measure_id, body.evidence, _now())
        await audit(conn, principal, "complete_rectification", None, actor.station, f"measure {measure_id}")
    return {"measure_id": measure_id, "status": "done"}


@router.post("/{measure_id}/verify")
async def verify(
    measure_id: RowId, body: NoteIn, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, outbox):
        told = await rectification.verify(conn, outbox, actor, measure_id, body.note, _now())
        await audit(conn, principal, "verify_rectification", None, actor.station, f"measure {measure_id}")
    return {"measure_id": measure_id, "status": "verified", "citizens_told": told}


@router.get("")
async def list_measures(rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.rectification.list_measures(conn)
    return {"measures": [_row(r) for r in rows]}


@router.get("/unaddressed")
async def unaddressed(rt: RuntimeDep, principal: StaffPrincipal, days: int = 7) -> dict:
    """Opinions and complaints about the station's work with no measure after `days` days."""
    if not 0 <= days <= 365:
        raise api_error(422, "invalid_field", "days 须在 0 到 365 之间。", field="days")
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await rectification.unaddressed(conn, None, _now(), timedelta(days=days))
    return {"items": [_row(r) for r in rows], "days": days}


@router.get("/{measure_id}")
async def get_measure(measure_id: RowId, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with staff_unit(rt.pool, principal) as (conn, _):
        m = await rectification.measure(conn, measure_id)
    return {**_row(m), "progress": [_row(n) for n in m["progress"]]}
