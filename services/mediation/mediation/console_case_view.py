"""What the case detail page shows (issue 16), read in the person's own transaction (row-level
security: another station's case, or one they are kept out of, is None), and the posted action
forms read into typed commands. The routes are in console_case.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.datastructures import FormData
from pydantic import ValidationError

from fengqiao.constants import STATION_TZ
from fengqiao.pii import PiiCipher
from fengqiao.runtime import Runtime
from fengqiao.taxonomy import STATUS_LABELS
from mediation import additions, db
from mediation.access import citizen_words
from mediation.cases import case_of
from mediation.commands import VISIT_METHOD_LABELS, VOID_GROUND_LABELS, CaseCommand
from mediation.console_common import clock_words, principal_of
from mediation.lifecycle import Actor, available
from mediation.signin import Session
from mediation.unit import audit, staff_unit

# Audit actions that only look at a case; any other is a change ("X 刚刚修改了此事项").
LOOKING = ["view_case", "reveal_words", "print_case", "print_visit_record"]
RECENT = timedelta(minutes=10)

# The history's public event -> what happened, in words (None: a note or the citizen's addition).
EVENT_WORDS = {
    "accepted": "签收",
    "returned": "退单",
    "reassigned": "改派",
    "escalated": "上报所领导",
    "overdue": "超时",
    "mediation_scheduled": "转入调解",
    "resolved": "办结",
    "visited": "回访",
    "closed": "结案",
    "reopened": "重新办理",
    "transferred": "移交",
    "merged": "并单",
    "assigned": "分派",
}
# The flash after an action (303 back to the page, `?done=<command>`).
DONE_WORDS = {
    "accept": "已签收。",
    "note": "办理记录已保存。",
    "request_info": "已请群众补充材料，办理时限暂停。",
    "resume_clock": "办理时限已恢复。",
    "start_mediation": "已转入调解。",
    "resolve": "已办结，办理结果将告知群众。",
    "return": "已退单，待所领导审核。",
    "review_return": "退单已审核。",
    "reassign": "已改派。",
    "transfer": "已移交。",
    "escalate": "已上报所领导。",
    "visit": "回访已记录。",
    "close": "已结案。",
    "reopen": "已重新办理。",
    "merge": "已并单。",
    "void": "已作废。",
    "classification": "分类已更正。",
    "rectification": "已关联整改措施。",
}
COMMAND_LABELS = {
    "accept": "签收",
    "note": "添加办理记录",
    "request_info": "请群众补充材料",
    "resume_clock": "恢复办理时限",
    "start_mediation": "转入调解",
    "resolve": "办结",
    "return": "退单",
    "review_return": "审核退单",
    "reassign": "改派",
    "transfer": "移交他所",
    "escalate": "上报所领导",
    "visit": "记录回访",
    "close": "结案",
    "reopen": "重新办理",
    "merge": "并单",
    "void": "作废",
}
# A form field's name in the messages that refuse it.
FIELD_LABELS = {
    "text": "内容",
    "summary": "办理结果",
    "reason": "理由",
    "assignee_id": "承办人",
    "to_station": "接收派出所",
    "result": "回访结果",
    "method": "回访方式",
    "into": "并入事项编号",
    "ground": "作废类别",
    "approve": "审核意见",
}
CLOCK_LABELS = {"accept": "签收时限", "resolve": "办结时限", "visit": "回访时限"}
ALERT_KIND_LABELS = {"cluster": "同一地点多人反映", "trend": "同类事项增多", "repeat_dispute": "纠纷反复"}
ALERT_LEVEL_LABELS = {"yellow": "黄色预警", "orange": "橙色预警", "red": "红色预警"}
VISIT_RESULT_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}
DUPLICATE_REASON_LABELS = {
    "rule:duplicate:near_identical": "内容几乎相同",
    "rule:duplicate:similar_open_case": "与在办事项相似",
}
CITIZEN_ACTORS = {
    "citizen:web": "群众（进度查询页）",
    "citizen:mailbox": "群众（邮件）",
    "citizen:hotline": "群众（来电）",
}


def when(at: datetime | None) -> str:
    """A time as the station reads it (Beijing time)."""
    return at.astimezone(STATION_TZ).strftime("%Y-%m-%d %H:%M") if at else "—"


def _who(actor: str, names: dict[str, str]) -> str:
    if actor in names:
        return names[actor]
    if actor in CITIZEN_ACTORS:
        return CITIZEN_ACTORS[actor]
    if actor.startswith("citizen:"):
        return "群众"
    if actor.startswith(("system:", "triage")) or not actor:
        return "系统"
    return actor


def _what(step: Any) -> str:
    if step["event"]:
        return EVENT_WORDS.get(step["event"], step["event"])
    if step["actor"].startswith("citizen:"):
        return "补充"
    if _who(step["actor"], {}) == "系统":
        return "分派" if step["status"] == "assigned" else "系统记录"
    return "办理记录"


def steps_in_words(steps: list[Any], names: dict[str, str]) -> list[dict[str, Any]]:
    """History steps as the page lists them: when, who, what, why."""
    return [
        {
            "at": s["at"],
            "when": when(s["at"]),
            "who": _who(s["actor"], names),
            "what": _what(s),
            "status": STATUS_LABELS.get(s["status"], s["status"]),
            "reason": s["reason"],
            "assignee": names.get(s["assignee_id"] or "", s["assignee_id"] or ""),
        }
        for s in steps
    ]


def reason_words(reason: str) -> str:
    """A triage reason id in words: `rule:urgency=urgent:self_harm#1` -> 规则 urgency=urgent …"""
    kind, _, rest = reason.partition(":")
    return f"{ {'rule': '规则', 'model': '模型'}.get(kind, kind) } {rest}".strip()


async def load_case(
    rt: Runtime,
    session: Session,
    cipher: PiiCipher,
    tracking_no: str,
    *,
    reveal: bool = False,
    action: str = "view_case",
    detail: str | None = None,
) -> dict[str, Any] | None:
    """Everything the page shows, with the view (or reveal, print) audited; None if the person may
    not see the case (another station's, kept out of it, or none)."""
    principal = principal_of(session)
    actor = Actor(session.staff_id, session.role, session.station)
    now = datetime.now(UTC)
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.cases.get_case(conn, tracking_no)
        if row is None or not principal.can_see_station(row["station"]):
            return None
        steps = await db.detail.history_with_ids(conn, tracking_no)
        clock_rows = await db.clocks.clocks(conn, tracking_no)
        words = citizen_words(cipher, tracking_no, await db.access.case_file(conn, tracking_no), reveal=reveal)
        added = additions.opened(await db.additions.additions(conn, tracking_no), tracking_no, cipher, reveal=reveal)
        excluded = await db.access.excluded_staff(conn, tracking_no)
        triage = await db.detail.triage(conn, tracking_no)
        duplicates = await db.detail.duplicates(conn, tracking_no)
        alerts = await db.detail.alerts_of(conn, tracking_no)
        earlier = await db.detail.earlier_of_reporter(conn, tracking_no)
        activity = await db.detail.recent_activity(conn, tracking_no, session.staff_id, now - RECENT, LOOKING)
        measures = await db.detail.measures_of(conn, tracking_no)
        leads = actor.leads
        staff = await db.detail.active_staff(conn, row["station"]) if leads else []
        stations = await db.detail.other_stations(conn, row["station"]) if leads else []
        open_measures = await db.detail.open_measures(conn) if leads else []
        ids = {row["assignee_id"], row["handled_by"], *(s["actor"] for s in steps), *(s["assignee_id"] for s in steps)}
        names = await db.detail.staff_names(conn, sorted(i for i in ids if i))
        await audit(conn, principal, action, tracking_no, row["station"], detail)
    waiting_since = next(
        (c["suspended_at"] for c in clock_rows if c["clock"] == "resolve" and not c["done_at"] and c["suspended_at"]),
        None,
    )
    case = case_of(row, excluded, waiting=waiting_since is not None)
    clocks = []
    for c in clock_rows:
        if c["done_at"] is not None:
            continue
        text, css = ("已暂停（等待群众补充）", "") if c["suspended_at"] else clock_words(c["due_at"], now)
        clocks.append(
            {"label": CLOCK_LABELS.get(c["clock"], c["clock"]), "due": when(c["due_at"]), "text": text, "css": css}
        )
    for a in added:
        a["at"] = datetime.fromisoformat(a["at"])
        a["when"] = when(a["at"])
    # the citizen's additions are shown with their text; their one-line history steps would repeat them
    shown = [s for s in steps if not (s["actor"].startswith("citizen:") and s["event"] is None and added)]
    timeline = [{"kind": "step", **s} for s in steps_in_words(shown, names)]
    timeline += [{"kind": "addition", **a} for a in added]
    timeline.sort(key=lambda e: e["at"])
    return {
        "row": row,
        "case": case,
        "no": tracking_no,
        "version": steps[-1]["id"] if steps else 0,
        "assignee_name": names.get(row["assignee_id"] or "", row["assignee_id"] or "未分派"),
        "handled_by_name": names.get(row["handled_by"] or "", row["handled_by"] or ""),
        "submitted": when(row["submitted_at"]),
        "clocks": clocks,
        "waiting_since": when(waiting_since) if waiting_since else None,
        "words": words,
        "additions": added,
        "revealed": reveal,
        "triage": triage,
        "triage_reasons": [reason_words(r) for r in (triage["reasons"] if triage else [])],
        "duplicates": duplicates,
        "alerts": alerts,
        "earlier": earlier,
        "activity": activity_in_words(activity),
        "timeline": timeline,
        "allowed": available(case, actor),
        "may_correct": session.staff_id == row["assignee_id"] or leads,
        "staff": staff,
        "stations": stations,
        "open_measures": open_measures,
        "measures": measures,
        "when": when,
    }


async def changes_since(rt: Runtime, session: Session, tracking_no: str, version: int) -> dict[str, Any] | None:
    """For the poll: the steps since the page's version and who else is on the case (not audited:
    the page view was). None if the person may no longer see the case."""
    principal = principal_of(session)
    async with staff_unit(rt.pool, principal) as (conn, _):
        row = await db.cases.get_case(conn, tracking_no)
        if row is None or not principal.can_see_station(row["station"]):
            return None
        steps = await db.detail.history_with_ids(conn, tracking_no, version)
        activity = await db.detail.recent_activity(
            conn, tracking_no, session.staff_id, datetime.now(UTC) - RECENT, LOOKING
        )
        names = await db.detail.staff_names(conn, sorted({s["actor"] for s in steps}))
    return {"changed": steps_in_words(steps, names), "activity": activity_in_words(activity)}


def activity_in_words(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"name": r["name"] or r["staff_id"], "changed": r["changed"], "when": when(r["at"])} for r in rows]


def read_command(command: type[CaseCommand], form: FormData) -> tuple[CaseCommand | None, dict[str, str], str | None]:
    """The posted form as `command`: (the command, the typed values, None), or (None, the typed
    values, the message naming the field) when a field is refused."""
    typed = {k: str(v) for k, v in form.items() if k in command.model_fields and k != "command"}
    data: dict[str, Any] = {k: v.strip() if k not in ("text", "summary", "reason") else v for k, v in typed.items()}
    data = {k: v for k, v in data.items() if v != ""}
    if "approve" in data:
        data["approve"] = data["approve"] == "true"
    try:
        return command.model_validate(data), typed, None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        label = FIELD_LABELS.get(field, field)
        if error["type"] == "missing":
            return None, typed, f"请填写“{label}”。"
        if error["type"] == "string_too_long":
            return None, typed, f"“{label}”过长，请精简后再提交。"
        return None, typed, f"“{label}”填写有误，请重新选择或填写。"


FORM_CHOICES: dict[str, Any] = {
    "visit_results": VISIT_RESULT_LABELS,
    "visit_methods": VISIT_METHOD_LABELS,
    "void_grounds": VOID_GROUND_LABELS,
    "alert_kinds": ALERT_KIND_LABELS,
    "alert_levels": ALERT_LEVEL_LABELS,
    "duplicate_reasons": DUPLICATE_REASON_LABELS,
    "command_labels": COMMAND_LABELS,
}
