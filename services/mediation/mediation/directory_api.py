"""Directory administration over HTTP (issue 15): stations and their staff, for the bureau's
administrators (every station) and each station's leader (their own; the instructor reads).
Parse, authorise, call mediation.directory_admin, answer; the rules are there.

Another station, or a person of another station, is a 404 whatever the body; the wrong role on
one's own station a 403 — both before the body is read (`dependencies=`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from fengqiao.errors import api_error
from fengqiao.http import AuthoriseFirstRoute, StaffPrincipal, iso
from fengqiao.outbox import unit_of_work
from fengqiao.runtime import RuntimeDep
from mediation import db
from mediation import directory_admin as admin
from mediation.deps import CipherDep

router = APIRouter(prefix="/api/v1", tags=["directory"], route_class=AuthoriseFirstRoute)

StationPath = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[0-9A-Za-z_-]+$")]
StaffPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z_-]+$")]


def refused(exc: Exception) -> HTTPException:
    """A refused directory change as the JSON error (registered in app.py for every route)."""
    assert isinstance(exc, admin.DirectoryRefused), "registered for DirectoryRefused only"
    return api_error(exc.status, exc.code, exc.message, exc.field)


def _json(value: dict[str, Any]) -> dict[str, Any]:
    return {k: iso(v) for k, v in value.items()}


# -- checks before the body is read ---------------------------------------------------------------


def _may_edit_station(station: StationPath, principal: StaffPrincipal) -> None:
    editor = admin.Editor.of(principal)
    if not editor.visible(station):
        raise admin.DirectoryRefused(404, "not_found", "未找到该派出所。")
    if not (editor.admin or (editor.role == "leader" and editor.station == station)):
        raise admin.DirectoryRefused(403, "forbidden", "只有本所所长或分局管理员可以修改派出所信息。")


def _admin_only(principal: StaffPrincipal) -> None:
    if principal.role != "admin":
        raise admin.DirectoryRefused(403, "forbidden", "只有分局管理员可以进行此操作。")


def _station_admin(station: StationPath, principal: StaffPrincipal) -> None:
    if not admin.Editor.of(principal).visible(station):
        raise admin.DirectoryRefused(404, "not_found", "未找到该派出所。")
    _admin_only(principal)


def _may_manage_station(station: StationPath, principal: StaffPrincipal) -> None:
    editor = admin.Editor.of(principal)
    if not editor.visible(station):
        raise admin.DirectoryRefused(404, "not_found", "未找到该派出所。")
    if not (editor.admin or (editor.role == "leader" and editor.station == station)):
        raise admin.DirectoryRefused(403, "forbidden", "只有本所所长或分局管理员可以管理人员。")


async def _may_manage_person(staff_id: StaffPath, rt: RuntimeDep, principal: StaffPrincipal) -> None:
    """A person of another station is not found; the domain checks the roles again, locked."""
    async with rt.pool.acquire() as conn:
        row = await db.directory.staff_member(conn, staff_id)
    editor = admin.Editor.of(principal)
    if row is None or not editor.visible(row["station"]):
        raise admin.DirectoryRefused(404, "not_found", "没有这名工作人员。")
    if not (editor.admin or (editor.role == "leader" and editor.station == row["station"])):
        raise admin.DirectoryRefused(403, "forbidden", "只有本所所长或分局管理员可以管理人员。")


# -- stations -------------------------------------------------------------------------------------


@router.get("/stations")
async def list_stations(rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Stations with everything the administrator set (admin and bureau: all; leader and
    instructor: their own; others 403)."""
    if principal.role in ("admin", "bureau"):
        only = None
    elif principal.role in ("leader", "instructor"):
        only = principal.station
    else:
        raise api_error(403, "forbidden", "只有所领导和分局管理员可以查看派出所设置。")
    async with rt.pool.acquire() as conn:
        rows = await db.directory.stations(conn, only)
    return {"stations": [_json(r) for r in rows]}


@router.post("/stations", status_code=201, dependencies=[Depends(_admin_only)])
async def create_station(body: admin.StationIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """A new station (administrator only); its code is fixed from then on."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        return _json(await admin.create_station(conn, outbox, admin.Editor.of(principal), body))


@router.get("/stations/{station}")
async def get_station(station: StationPath, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    admin.may_read(admin.Editor.of(principal), station)
    async with rt.pool.acquire() as conn:
        row = await db.directory.station(conn, station)
    if row is None:
        raise api_error(404, "not_found", "未找到该派出所。")
    return _json(row)


@router.patch("/stations/{station}", dependencies=[Depends(_may_edit_station)])
async def change_station(
    station: StationPath, body: admin.StationChange, rt: RuntimeDep, principal: StaffPrincipal
) -> dict:
    """Change the fields sent (administrator, or the station's own leader); the code never changes.
    Duty hours take effect for new acceptance clocks at once."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        return _json(await admin.change_station(conn, outbox, admin.Editor.of(principal), station, body))


@router.post("/stations/{station}/deactivate", dependencies=[Depends(_station_admin)])
async def deactivate_station(station: StationPath, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Nothing new is routed to the station (intake refuses items for it); its items stay readable."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        return _json(await admin.set_station_active(conn, outbox, admin.Editor.of(principal), station, False))


@router.post("/stations/{station}/reactivate", dependencies=[Depends(_station_admin)])
async def reactivate_station(station: StationPath, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    async with unit_of_work(rt.pool) as (conn, outbox):
        return _json(await admin.set_station_active(conn, outbox, admin.Editor.of(principal), station, True))


# -- staff ----------------------------------------------------------------------------------------


@router.get("/stations/{station}/staff")
async def list_staff(station: StationPath, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep) -> dict:
    """The station's people (contacts masked), active ones first."""
    admin.may_read(admin.Editor.of(principal), station)
    async with rt.pool.acquire() as conn:
        if await db.directory.station(conn, station) is None:
            raise api_error(404, "not_found", "未找到该派出所。")
        rows = await db.directory.staff_of_station(conn, station)
    return {"staff": [_json(admin.staff_view(r, cipher)) for r in rows]}


@router.post("/stations/{station}/staff", status_code=201, dependencies=[Depends(_may_manage_station)])
async def create_staff(
    station: StationPath, body: admin.StaffIn, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep
) -> dict:
    """A new person with a sign-in account. `one_time_password` is shown in this answer only; they
    must change it when they first sign in."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        result = await admin.create_staff(conn, outbox, admin.Editor.of(principal), station, body, cipher)
    return {"staff": _json(result.staff), "one_time_password": result.one_time_password}


@router.get("/staff/{staff_id}")
async def get_staff(staff_id: StaffPath, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep) -> dict:
    async with rt.pool.acquire() as conn:
        row = await db.directory.staff_member(conn, staff_id)
    editor = admin.Editor.of(principal)
    if row is None or not editor.visible(row["station"]):
        raise api_error(404, "not_found", "没有这名工作人员。")
    admin.may_read(editor, row["station"])
    return _json(admin.staff_view(row, cipher))


@router.patch("/staff/{staff_id}", dependencies=[Depends(_may_manage_person)])
async def change_staff(
    staff_id: StaffPath, body: admin.StaffChange, rt: RuntimeDep, principal: StaffPrincipal, cipher: CipherDep
) -> dict:
    """Change the fields sent. A new role ends the person's sessions (they sign in again)."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        result = await admin.change_staff(conn, outbox, admin.Editor.of(principal), staff_id, body, cipher)
    return {"staff": _json(result.staff), "outcome": result.outcome}


@router.post("/staff/{staff_id}/deactivate", dependencies=[Depends(_may_manage_person)])
async def deactivate_staff(staff_id: StaffPath, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """Their tokens are revoked and their sessions end at once; their open cases are flagged for the
    leader to reassign (`GET /api/v1/cases?flagged=true`)."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        result = await admin.deactivate_staff(conn, outbox, admin.Editor.of(principal), staff_id)
    return _leaving(result)


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_station: str = Field(min_length=1, max_length=16)
    team: admin.Team | None = None


@router.post("/staff/{staff_id}/transfer", dependencies=[Depends(_may_manage_person), Depends(_admin_only)])
async def transfer_staff(staff_id: StaffPath, body: TransferIn, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """To another station (administrator only): as deactivation for the old station (tokens,
    sessions, flagged cases), then active at the new one."""
    async with unit_of_work(rt.pool) as (conn, outbox):
        editor = admin.Editor.of(principal)
        result = await admin.transfer_staff(conn, outbox, editor, staff_id, body.to_station, body.team)
    return _leaving(result)


@router.post("/staff/{staff_id}/password", dependencies=[Depends(_may_manage_person)])
async def reset_password(staff_id: StaffPath, rt: RuntimeDep, principal: StaffPrincipal) -> dict:
    """A new one-time password, shown in this answer only; their sessions end."""
    async with unit_of_work(rt.pool) as (conn, _):
        result = await admin.reset_password(conn, admin.Editor.of(principal), staff_id)
    return {"staff": _json(result.staff), "one_time_password": result.one_time_password}


def _leaving(result: admin.StaffResult) -> dict:
    return {
        "staff": _json(result.staff),
        "outcome": result.outcome,
        "revoked_tokens": list(result.revoked_tokens),
        "flagged_cases": list(result.flagged_cases),
    }


# -- audit ----------------------------------------------------------------------------------------


@router.get("/directory/audit")
async def directory_audit(
    rt: RuntimeDep,
    principal: StaffPrincipal,
    station: Annotated[str | None, Query(max_length=16, pattern=r"^[0-9A-Za-z_-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict:
    """Who changed which station or person, when, newest first (leader and instructor: their own
    station's; admin and bureau: any, or every station's without `station`)."""
    editor = admin.Editor.of(principal)
    if principal.role not in ("admin", "bureau"):
        station = station or principal.station
        admin.may_read(editor, station)
    async with rt.pool.acquire() as conn:
        rows = await db.directory.audit_entries(conn, station, limit)
    return {"entries": [_json(r) for r in rows]}
