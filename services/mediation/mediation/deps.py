"""Mediation's route dependencies as typed aliases (as the FastAPI template's deps.py): a route
says what it needs, `actor: CurrentActor, cipher: CipherDep`, and never reads `request.app.state`.
The platform's `RuntimeDep` and `StaffPrincipal` (fengqiao.http) stand beside these."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from prometheus_client import Counter

from fengqiao.auth import Principal
from fengqiao.http import StaffPrincipal, api_error
from fengqiao.pii import BlindIndex, PiiCipher
from fengqiao.runtime import RuntimeDep
from mediation.lifecycle import Actor
from mediation.metrics import MediationMetrics

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


def _cipher(request: Request) -> PiiCipher:
    cipher: PiiCipher = request.app.state.pii  # set by the composition root (app.create_app)
    return cipher


def _blind_index(request: Request) -> BlindIndex:
    index: BlindIndex = request.app.state.pii_index
    return index


def _outcomes(rt: RuntimeDep) -> Counter:
    return MediationMetrics.of(rt.metrics).outcomes


CurrentActor = Annotated[Actor, Depends(_current_actor)]
CipherDep = Annotated[PiiCipher, Depends(_cipher)]
BlindIndexDep = Annotated[BlindIndex, Depends(_blind_index)]
OutcomesDep = Annotated[Counter, Depends(_outcomes)]
