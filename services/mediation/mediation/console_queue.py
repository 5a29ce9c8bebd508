"""The queue pages (issue 16): `/console/` is the signed-in person's own cases, soonest deadline
first, with the clock in plain words; `/console/station` the station's for its leadership."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, STATUS_LABELS, URGENCY_LABELS
from mediation import db
from mediation.console_common import SessionDep, clock_words, principal_of, render
from mediation.lifecycle import review_label
from mediation.unit import staff_unit

router = APIRouter(include_in_schema=False)

OPEN_STATUSES = ("assigned", "accepted", "in_progress", "mediating", "returned", "reopened")


@router.get("/console/", response_class=HTMLResponse)
async def queue(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    principal = principal_of(session)
    query = db.cases.CaseQuery(assignee_id=session.staff_id, statuses=OPEN_STATUSES, limit=100)
    async with staff_unit(rt.pool, principal) as (conn, _):
        rows = await db.cases.list_cases(conn, session.station, query)
        total = await db.cases.count_cases(conn, session.station, query)
    now = datetime.now(UTC)
    cases = []
    for r in rows:
        text, css = clock_words(r["due_at"], now)
        cases.append(
            {
                "tracking_no": r["tracking_no"],
                "status_label": STATUS_LABELS.get(r["status"], r["status"]),
                "category_label": CATEGORY_LABELS.get(r["category"] or "", "—"),
                "urgency_label": URGENCY_LABELS.get(r["urgency"] or "", "—"),
                "clock_text": text,
                "clock_class": css,
                "review_label": review_label(r["assignment_reason"], r["flagged"]),
            }
        )
    return render(request, "console/queue.html", me=session, cases=cases, total=total, active="queue")
