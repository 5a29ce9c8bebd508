"""Mediation's route dependencies as typed aliases (as the FastAPI template's deps.py): a route
says what it needs, `actor: CurrentActor, cipher: CipherDep`, and never reads `request.app.state`.
The platform's `RuntimeDep` and `StaffPrincipal` (fengqiao.http) stand beside these.

Authorisation before validation: FastAPI runs a route's dependencies before it validates the body,
so `VisibleCase` (the case, 404 for another station's) and the role checks built on it answer a
stranger before any field error does (and `AuthoriseFirstRoute` does the same for a body that is
not JSON at all)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from prometheus_client import Counter

from fengqiao.auth import Principal
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.pii import BlindIndex, PiiCipher
from fengqiao.runtime import RuntimeDep
from mediation import db
from mediation.cases import case_of
from mediation.lifecycle import Actor, Case
from mediation.metrics import MediationMetrics
from mediation.unit import audit_refusal, staff_unit

# What a path may carry: a tracking number's characters (never NUL, which PostgreSQL refuses with a
# 500), and row ids within bigint (a larger one made asyncpg fail with a 500). Refused with a 422.
TRACKING_NO_PATTERN = r"^[0-9A-Za-z_-]+$"
TrackingNo = Annotated[str, Path(min_length=1, max_length=64, pattern=TRACKING_NO_PATTERN)]
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def actor_of(principal: Principal) -> Actor:
    """The staff member acting; a token that is not a person's (integration) may not act on cases."""
    if not principal.staff_id:
        raise api_error(403, "forbidden", "需要工作人员本人的令牌。")
    return Actor(principal.staff_id, principal.role, principal.station)


def _current_actor(principal: StaffPrincipal) -> Actor:
    return actor_of(principal)


async def _visible_case(
    tracking_no: TrackingNo, rt: RuntimeDep, principal: StaffPrincipal, actor: CurrentActor
) -> Case:
    """The case a route acts on, read before the body is: none, or another station's, is a 404.
    The route reads it again, locked, for the change itself."""
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.cases.get_case(conn, tracking_no)
    if row is None or not principal.can_see_station(row["station"]):
        await audit_refusal(rt.pool, principal, tracking_no)  # kept out of it: the leader reads that
        raise api_error(404, "not_found", "未找到该事项。")
    return case_of(row)


def _cipher(request: Request) -> PiiCipher:
    cipher: PiiCipher = request.app.state.pii  # set by the composition root (app.create_app)
    return cipher


def _blind_index(request: Request) -> BlindIndex:
    index: BlindIndex = request.app.state.pii_index
    return index


def _outcomes(rt: RuntimeDep) -> Counter:
    return MediationMetrics.of(rt.metrics).outcomes


CurrentActor = Annotated[Actor, Depends(_current_actor)]
VisibleCase = Annotated[Case, Depends(_visible_case)]
CipherDep = Annotated[PiiCipher, Depends(_cipher)]
BlindIndexDep = Annotated[BlindIndex, Depends(_blind_index)]
OutcomesDep = Annotated[Counter, Depends(_outcomes)]
