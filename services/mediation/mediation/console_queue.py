"""The queue pages (issue 16): `/console/` is the signed-in person's own cases, `/console/station`
the station's (the leadership assigns from it; bureau and admin see every station's). Soonest
deadline first, the clock in plain words and colour, filters, search by tracking number, phone
(the blind index) or words (keyed character pairs), paging. The results are a fragment htmx
refreshes every 30 seconds, so a new assignment appears without a reload; without JavaScript the
filter form is a plain GET."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from fengqiao.auth import Principal
from fengqiao.pii import BlindIndex, PiiCipher
from fengqiao.runtime import RuntimeDep
from fengqiao.taxonomy import CATEGORY_LABELS, STATUS_LABELS, TYPE_LABELS, URGENCY_LABELS
from mediation import db, search
from mediation.access import citizen_words
from mediation.commands import CaseCommand, Merge, Reassign, Transfer
from mediation.commands_api import carry_out
from mediation.console_common import (
    CHANNEL_LABELS,
    LEADERSHIP,
    SessionDep,
    actor_of_session,
    clock_words,
    principal_of,
    read_form,
    render,
)
from mediation.lifecycle import Rejected, review_label
from mediation.search import tracking_no as typed_tracking_no
from mediation.signin import Session
from mediation.unit import audit, staff_unit

router = APIRouter(include_in_schema=False)

OPEN_STATUSES = ("assigned", "accepted", "in_progress", "mediating", "returned", "reopened")
PAGE_SIZE = 25
MAX_PAGE = 400  # 10,000 cases deep; further back, narrow the filters
SEARCH_CANDIDATES = 200  # cases opened to confirm a words search; more hits: narrow the words
STATUS_CHOICES = {"open": "未办结（全部）", **{s: STATUS_LABELS[s] for s in (*OPEN_STATUSES, "resolved", "visited")}}
STATUS_CHOICES |= {"closed": STATUS_LABELS.get("closed", "已办结"), "all": "全部状态"}
SORTS = {"due": "时限最近", "-submitted_at": "最新提交", "submitted_at": "最早提交"}


@dataclass(frozen=True)
class Filters:
    """The queue's filters as typed in the form; `problems` names the fields that were refused."""

    status: str = "open"
    type: str = ""
    category: str = ""
    urgency: str = ""
    channel: str = ""
    overdue: bool = False
    flagged: bool = False
    since: date | None = None
    until: date | None = None
    q: str = ""
    assignee: str = ""
    sort: str = "due"
    page: int = 1

    @classmethod
    def parse(cls, params: Any) -> tuple[Filters, dict[str, str]]:
        problems: dict[str, str] = {}

        def pick(name: str, allowed: dict[str, str] | frozenset[str], default: str = "") -> str:
            value = str(params.get(name, default) or default)
            if value and value not in allowed:
                problems[name] = "请从列表中选择。"
                return default
            return value

        def day(name: str) -> date | None:
            value = str(params.get(name, "") or "")
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                problems[name] = "日期格式应为 年-月-日。"
                return None

        try:
            page = max(1, min(int(str(params.get("page", "1") or "1")), MAX_PAGE))
        except ValueError:
            page = 1
        since, until = day("since"), day("until")
        if since and until and until < since:
            problems["until"] = "截止日期不能早于开始日期。"
            until = None
        assignee = str(params.get("assignee", "") or "")[:64]
        filters = cls(
            status=pick("status", STATUS_CHOICES, "open"),
            type=pick("type", TYPE_LABELS),
            category=pick("category", CATEGORY_LABELS),
            urgency=pick("urgency", URGENCY_LABELS),
            channel=pick("channel", CHANNEL_LABELS),
            overdue=params.get("overdue") == "1",
            flagged=params.get("flagged") == "1",
            since=since,
            until=until,
            q=str(params.get("q", "") or "").strip()[:100],
            assignee=assignee if assignee.replace("-", "").replace("_", "").isalnum() else "",
            sort=pick("sort", SORTS, "due"),
            page=page,
        )
        return filters, problems

    def query(self) -> db.cases.CaseQuery:
        statuses: tuple[str, ...] | None
        if self.status == "open":
            statuses = OPEN_STATUSES
        elif self.status == "all":
            statuses = None
        else:
            statuses = (self.status,)
        return db.cases.CaseQuery(
            statuses=statuses,
            type=self.type or None,
            category=self.category or None,
            urgency=self.urgency or None,
            channel=self.channel or None,
            overdue=True if self.overdue else None,
            flagged=True if self.flagged else None,
            since=self.since,
            until=self.until,
            sort=self.sort,
            limit=PAGE_SIZE,
            offset=(self.page - 1) * PAGE_SIZE,
        )

    @property
    def narrowed(self) -> bool:
        """Whether any filter besides the search is set (the filter panel opens by itself)."""
        defaults = Filters()
        return (
            any(
                getattr(self, name) != getattr(defaults, name)
                for name in ("status", "type", "category", "urgency", "channel", "overdue", "flagged", "since", "until")
            )
            or bool(self.assignee)
            or self.sort != defaults.sort
        )

    def link(self, **changes: Any) -> str:
        """The query string of these filters with `changes` (for the pager's links)."""
        values = {**self.__dict__, **changes}
        kept = {k: v for k, v in values.items() if v not in ("", None, False) and not (k == "page" and v == 1)}
        return urlencode({k: ("1" if v is True else str(v)) for k, v in kept.items()})


async def find(
    conn: Any, typed: str, *, index: BlindIndex, cipher: PiiCipher
) -> tuple[tuple[str, ...] | None, str | None]:
    """The cases a search names (visible to the reader: row-level security), and a message when
    the search cannot be done. `None` hits: no search was typed."""
    if not typed:
        return None, None
    if search.looks_like_phone(typed):
        key = search.phone_key(index, typed)
        if key is None:
            return (), "这不是有效的电话号码。"
        return tuple(await db.search.by_reporter(conn, key, SEARCH_CANDIDATES)), None
    if (number := search.tracking_no(typed)) is not None:
        return (number,), None
    if len(search.normalise(typed)) < 2:
        return (), "请至少输入两个字。"
    keys = search.word_keys(index, typed)
    hits = []
    for tracking_no in await db.search.candidates(conn, keys, SEARCH_CANDIDATES):
        # confirmed against the words as staff see them (masked): a search must not test guesses
        # of a hidden phone or ID number digit by digit
        words = citizen_words(cipher, tracking_no, await db.access.case_file(conn, tracking_no))
        if search.contains(words, typed):
            hits.append(tracking_no)
    return tuple(hits), None


def _row(r: Any, now: datetime, names: dict[str, str]) -> dict[str, Any]:
    text, css = clock_words(r["due_at"], now)
    return {
        "tracking_no": r["tracking_no"],
        "status": r["status"],
        "status_label": STATUS_LABELS.get(r["status"], r["status"]),
        "type_label": TYPE_LABELS.get(r["type"] or "", "—"),
        "category_label": CATEGORY_LABELS.get(r["category"] or "", "—"),
        "urgency": r["urgency"],
        "urgency_label": URGENCY_LABELS.get(r["urgency"] or "", "—"),
        "channel_label": CHANNEL_LABELS.get(r["channel"] or "", "—"),
        "assignee": names.get(r["assignee_id"] or "", r["assignee_id"] or "未分派"),
        "submitted_at": r["submitted_at"],
        "clock_text": text,
        "clock_class": css,
        "review_label": review_label(r["assignment_reason"], r["flagged"]),
        "duplicates": len(r["duplicates"] or ()),
    }


async def _listing(
    request: Request, rt: RuntimeDep, session: Session, *, own: bool
) -> tuple[Filters, dict[str, str], dict[str, Any]]:
    filters, problems = Filters.parse(request.query_params)
    principal: Principal = principal_of(session)
    station = None if principal.sees_all_stations else session.station
    query = filters.query()
    async with staff_unit(rt.pool, principal) as (conn, _):
        hits, search_problem = await find(
            conn, filters.q, index=request.app.state.pii_index, cipher=request.app.state.pii
        )
        if search_problem:
            problems["q"] = search_problem
        if hits is not None:  # who searched, how, and how much was found (never what was typed)
            how = (
                "phone"
                if search.looks_like_phone(filters.q)
                else "number"
                if search.tracking_no(filters.q)
                else "words"
            )
            await audit(conn, principal, "search_cases", None, station, f"{how}: {len(hits)} found")
        if hits is not None:
            # a search looks through every status unless one was chosen
            query = replace(query, tracking_nos=hits, statuses=None if filters.status == "open" else query.statuses)
        if own:
            query = replace(query, assignee_id=session.staff_id)
        elif filters.assignee:
            query = replace(query, assignee_id=filters.assignee)
        rows = await db.cases.list_cases(conn, station, query)
        total = await db.cases.count_cases(conn, station, query)
        staff = await db.rosters.station_staff(conn, station) if station else []
    names = {s["staff_id"]: s["name"] for s in staff}
    now = datetime.now(UTC)
    pages = max(1, -(-total // PAGE_SIZE))
    return (
        filters,
        problems,
        {
            "cases": [_row(r, now, names) for r in rows],
            "total": total,
            "pages": pages,
            "staff": [s for s in staff if s["active"]],
            "searched": hits is not None,
        },
    )


async def _page(request: Request, rt: RuntimeDep, session: Session, *, own: bool) -> HTMLResponse:
    filters, problems, listing = await _listing(request, rt, session, own=own)
    template = "console/queue_results.html" if request.headers.get("HX-Request") else "console/queue.html"
    status = 422 if problems else 200
    return render(
        request,
        template,
        status,
        me=session,
        active="queue" if own else "station",
        own=own,
        filters=filters,
        problems=problems,
        path="/console/" if own else "/console/station",
        choices={
            "status": STATUS_CHOICES,
            "type": TYPE_LABELS,
            "category": CATEGORY_LABELS,
            "urgency": URGENCY_LABELS,
            "channel": CHANNEL_LABELS,
            "sort": SORTS,
        },
        may_bulk=not own and session.role in LEADERSHIP,
        **listing,
    )


@router.get("/console/", response_class=HTMLResponse)
async def queue(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """The signed-in person's own cases."""
    return await _page(request, rt, session, own=True)


@router.get("/console/station", response_class=HTMLResponse)
async def station_queue(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """The station's cases: the leadership and the duty officer assign from here."""
    return await _page(request, rt, session, own=False)


BULK_MAX = 100
BULK_COMMANDS: dict[str, type[CaseCommand]] = {"reassign": Reassign, "transfer": Transfer, "merge": Merge}
BULK_FIELD_LABELS = {"assignee_id": "承办人", "to_station": "派出所代码", "into": "并入编号", "reason": "理由"}


@router.post("/console/station/bulk", response_class=HTMLResponse)
async def bulk(request: Request, rt: RuntimeDep, session: SessionDep) -> HTMLResponse:
    """The leadership's actions on a selection of the station's cases: assign, transfer, mark as a
    duplicate. Each case is its own command (its own transaction, audited, its own refusal): one
    refused case does not stop the others, and the page says which were done."""
    form = await read_form(request, session, max_fields=BULK_MAX + 12)
    back = "/console/station?" + str(form.get("back", ""))[:500]
    if session.role not in LEADERSHIP:
        return render(request, "console/bulk_result.html", 403, me=session, back=back, error="只有所领导可以批量处理。")
    selected = list(dict.fromkeys(str(v) for v in form.getlist("case")))[:BULK_MAX]
    action = str(form.get("action", ""))
    command_type = BULK_COMMANDS.get(action)
    if command_type is None or not selected:
        error = "请选择操作。" if command_type is None else "请先勾选要处理的事项。"
        return render(request, "console/bulk_result.html", 422, me=session, back=back, error=error)
    fields = {"command": action, "reason": str(form.get("reason", "")).strip() or None}
    if action == "reassign":
        fields["assignee_id"] = str(form.get("assignee_id", ""))
    elif action == "transfer":
        fields["to_station"] = str(form.get("to_station", "")).strip().upper()
    else:
        fields["into"] = typed_tracking_no(str(form.get("into", ""))) or str(form.get("into", "")).strip()
    try:
        command: CaseCommand = command_type.model_validate(fields)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() and exc.errors()[0]["loc"] else "action"
        error = f"{BULK_FIELD_LABELS.get(field, field)}：请填写正确。"
        return render(request, "console/bulk_result.html", 422, me=session, back=back, error=error)
    principal, actor = principal_of(session), actor_of_session(session)
    results = []
    for number in selected:
        try:
            out = await carry_out(rt, principal, actor, number, command)
            results.append({"tracking_no": number, "ok": True, "message": out.status_label})
        except Rejected as exc:
            results.append({"tracking_no": number, "ok": False, "message": exc.message})
    done = sum(1 for r in results if r["ok"])
    return render(
        request, "console/bulk_result.html", me=session, back=back, results=results, done=done, active="station"
    )
