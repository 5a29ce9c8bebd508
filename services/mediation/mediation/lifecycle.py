"""The case state machine (DESIGN 5). Pure: a command and the case as it is give the new state
and the events to emit, or a `Rejected` with a clear reason. Nothing is ever silently applied.

States: assigned → accepted (签收) → in_progress (→ mediating) → resolved (办结) → visited (回访)
→ closed; returned (退单, awaiting the leader's review); reopened (a dissatisfied citizen:
awaiting the leader's review); transferred (now another station's); merged (a repeat)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fengqiao.events import CaseStatus
from fengqiao.taxonomy import STATUS_LABELS
from mediation.commands import (
    VISIT_METHOD_LABELS,
    VOID_GROUND_LABELS,
    Accept,
    CaseCommand,
    Close,
    Escalate,
    Merge,
    Note,
    Reassign,
    Reopen,
    RequestInfo,
    Resolve,
    ResumeClock,
    Return,
    ReviewReturn,
    StartMediation,
    Survey,
    Transfer,
    Visit,
    Void,
    name_of,
)

OPEN = frozenset({"assigned", "accepted", "in_progress", "mediating", "returned", "reopened"})
WORKING = frozenset({"accepted", "in_progress", "mediating"})
LEADERSHIP = frozenset({"leader", "instructor"})


class Rejected(Exception):
    """An illegal command: the case is left as it was. `code` for clients, message in Chinese."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Case:
    tracking_no: str
    station: str
    status: CaseStatus
    assignee_id: str | None
    needs_mediation: bool = False
    returned_by: str | None = None
    handled_by: str | None = None  # who resolved it: the return visit must be someone else
    excluded: frozenset[str] = frozenset()  # named in the complaint, or kept out by the leader
    waiting: bool = False  # the resolution clock is suspended, waiting for the citizen's information


@dataclass(frozen=True)
class Actor:
    staff_id: str
    role: str
    station: str | None

    @property
    def leads(self) -> bool:
        return self.role in LEADERSHIP


@dataclass(frozen=True)
class Transition:
    status: CaseStatus
    event: str | None  # the public event type suffix (fengqiao.case.<event>), None for none
    assignee_id: str | None
    note: str
    changes: dict[str, Any] = field(default_factory=dict)
    # the resolution clock waits for the citizen (suspend) or runs again (resume)
    clock: Literal["suspend", "resume"] | None = None


def _need(condition: bool, code: str, message: str) -> None:
    if not condition:
        raise Rejected(code, message)


def _holder_or_leader(case: Case, actor: Actor) -> None:
    _need(actor.staff_id == case.assignee_id or actor.leads, "not_your_case", "只有承办人或所领导可以办理此事项。")


def _illegal(status: str, doing: str) -> str:
    return f"当前状态为“{STATUS_LABELS[status]}”，不能{doing}。"


def _accept(case: Case, actor: Actor, cmd: Accept) -> Transition:
    _need(case.status == "assigned", "illegal_transition", _illegal(case.status, "签收"))
    _need(actor.staff_id == case.assignee_id, "not_your_case", "只有被分派的承办人可以签收。")
    return Transition("accepted", "accepted", case.assignee_id, "已签收")


def _note(case: Case, actor: Actor, cmd: Note) -> Transition:
    _need(case.status in WORKING, "illegal_transition", _illegal(case.status, "添加办理记录"))
    _holder_or_leader(case, actor)
    _need(bool(cmd.text.strip()), "missing_text", "请填写办理情况。")
    status = "in_progress" if case.status == "accepted" else case.status
    return Transition(status, None, case.assignee_id, cmd.text)


def _request_info(case: Case, actor: Actor, cmd: RequestInfo) -> Transition:
    _need(case.status in WORKING, "illegal_transition", _illegal(case.status, "请群众补充材料"))
    _holder_or_leader(case, actor)
    text = cmd.text.strip()
    _need(bool(text), "missing_text", "请写明需要群众补充的内容。")
    # 12345 rules: the resolution clock waits for the citizen; a second request while waiting does not suspend twice
    return Transition("in_progress", None, case.assignee_id, text, clock=None if case.waiting else "suspend")


def _resume_clock(case: Case, actor: Actor, cmd: ResumeClock) -> Transition:
    """The officer resumes the clock without the citizen's written answer (e.g. given by phone)."""
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "恢复办理时限"))
    _holder_or_leader(case, actor)
    _need(case.waiting, "not_waiting", "办理时限未暂停，无需恢复。")
    note = f"恢复办理时限：{cmd.reason}" if cmd.reason else "承办人恢复办理时限"
    return Transition(case.status, None, case.assignee_id, note, clock="resume")


def _start_mediation(case: Case, actor: Actor, cmd: StartMediation) -> Transition:
    _need(case.status in ("accepted", "in_progress"), "illegal_transition", _illegal(case.status, "转入调解"))
    _holder_or_leader(case, actor)
    return Transition("mediating", "mediation_scheduled", case.assignee_id, cmd.text or "转入调解")


def _resolve(case: Case, actor: Actor, cmd: Resolve) -> Transition:
    _need(case.status in WORKING, "illegal_transition", _illegal(case.status, "办结"))
    _holder_or_leader(case, actor)
    summary = cmd.summary.strip()
    _need(bool(summary), "missing_summary", "办结须填写给群众的办理结果。")
    return Transition("resolved", "resolved", case.assignee_id, summary, {"handled_by": actor.staff_id})


def _return(case: Case, actor: Actor, cmd: Return) -> Transition:
    _need(case.status in ("assigned", "accepted"), "illegal_transition", _illegal(case.status, "退单"))
    _need(actor.staff_id == case.assignee_id, "not_your_case", "只有承办人可以退单。")
    reason = cmd.reason.strip()
    _need(bool(reason), "missing_reason", "退单须说明理由。")
    return Transition("returned", "returned", case.assignee_id, reason, {"returned_by": actor.staff_id})


def _review_return(case: Case, actor: Actor, cmd: ReviewReturn) -> Transition:
    _need(case.status == "returned", "illegal_transition", "该事项没有待审核的退单。")
    _need(actor.leads, "forbidden", "只有所领导可以审核退单。")
    if cmd.approve:
        to = cmd.assignee_id
        _need(bool(to) and to != case.returned_by, "missing_assignee", "同意退单须指定新的承办人。")
        return Transition("assigned", "reassigned", to, cmd.reason or "同意退单，改派")
    return Transition("assigned", "reassigned", case.returned_by, cmd.reason or "不同意退单，原承办人继续办理")


def _reassign(case: Case, actor: Actor, cmd: Reassign) -> Transition:
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "改派"))
    _need(actor.leads, "forbidden", "只有所领导可以改派。")
    to = cmd.assignee_id
    _need(bool(to), "missing_assignee", "请指定承办人。")
    if to == case.assignee_id:
        # A reopened case may go back to its own officer: acceptance starts again.
        _need(case.status == "reopened", "same_assignee", "该事项已由此人承办，请指定新的承办人。")
        return Transition("assigned", "reassigned", to, cmd.reason or "退回原承办人重新办理")
    return Transition("assigned", "reassigned", to, cmd.reason or "改派")


def _transfer(case: Case, actor: Actor, cmd: Transfer) -> Transition:
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "移交"))
    _need(actor.leads or actor.role in ("bureau", "admin"), "forbidden", "只有所领导可以移交。")
    to = cmd.to_station
    _need(bool(to) and to != case.station, "missing_station", "请指定接收的派出所。")
    return Transition("assigned", "transferred", None, cmd.reason or "移交", {"station": to})


def _escalate(case: Case, actor: Actor, cmd: Escalate) -> Transition:
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "上报"))
    _holder_or_leader(case, actor)
    return Transition(case.status, "escalated", case.assignee_id, cmd.reason or "上报所领导")


def _visit(case: Case, actor: Actor, cmd: Visit) -> Transition:
    """回访 by the station: never by whoever resolved or holds the case (they would rate their own work),
    nor by anyone kept out of it (the officer a complaint names would rate the complaint against him)."""
    _need(case.status == "resolved", "illegal_transition", "只有已办结的事项可以回访。")
    handlers = {case.handled_by, case.assignee_id} - {None}
    _need(actor.staff_id not in handlers, "same_handler", "回访须由承办人以外的人员进行。")
    _need(actor.staff_id not in case.excluded, "excluded", "您须回避此事项，不能回访。")
    changes: dict[str, Any] = {"visit_result": cmd.result, "visit_method": cmd.method}
    how = VISIT_METHOD_LABELS[cmd.method]
    if cmd.result == "dissatisfied":
        return Transition(
            "reopened", "reopened", case.assignee_id, cmd.reason or f"{how}：群众不满意，重新办理", changes
        )
    return Transition("visited", "visited", case.assignee_id, f"{how}：{cmd.reason}" if cmd.reason else how, changes)


def _survey(case: Case, actor: Actor, cmd: Survey) -> Transition:
    """The citizen's own answer to the return-visit survey."""
    changes = {"visit_result": cmd.result}
    if cmd.result == "dissatisfied" and case.status in ("resolved", "visited", "closed"):
        note = f"群众评价不满意：{cmd.reason}".rstrip("：")
        return Transition("reopened", "reopened", case.assignee_id, note, changes)
    _need(case.status == "resolved", "illegal_transition", "该事项已回访。")
    return Transition("visited", "visited", case.assignee_id, f"群众评价：{cmd.result}", changes)


def _merge(case: Case, actor: Actor, cmd: Merge) -> Transition:
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "并单"))
    _need(actor.leads, "forbidden", "只有所领导可以并单。")
    into = cmd.into
    _need(bool(into) and into != case.tracking_no, "missing_case", "请指定并入的事项编号。")
    return Transition("merged", "merged", case.assignee_id, cmd.reason or f"并入 {into}", {"into": into})


def _close(case: Case, actor: Actor, cmd: Close) -> Transition:
    _need(case.status == "visited", "illegal_transition", "回访后才能结案。")
    _need(actor.leads, "forbidden", "只有所领导可以结案。")
    return Transition("closed", "closed", case.assignee_id, cmd.reason or "结案")


def _reopen(case: Case, actor: Actor, cmd: Reopen) -> Transition:
    _need(case.status in ("resolved", "visited", "closed"), "illegal_transition", "只有已办结的事项可以重新办理。")
    _need(actor.leads, "forbidden", "只有所领导可以重新办理。")
    return Transition("reopened", "reopened", case.assignee_id, cmd.reason or "重新办理")


def _void(case: Case, actor: Actor, cmd: Void) -> Transition:
    """作废: ends the case as `voided` (the public event is `closed` with that status: DESIGN 4.4's
    list of event types is fixed). Only open items: a resolved one has had its result and survey."""
    _need(case.status in OPEN, "illegal_transition", _illegal(case.status, "作废"))
    _need(actor.leads, "forbidden", "只有所领导可以作废事项。")
    reason = cmd.reason.strip()
    _need(bool(reason), "missing_reason", "作废须说明理由。")
    note = f"作废（{VOID_GROUND_LABELS[cmd.ground]}）：{reason}"
    return Transition("voided", "closed", case.assignee_id, note, {"void_ground": cmd.ground})


# Command type -> its rule (as cosmicpython's COMMAND_HANDLERS). Each takes exactly its own command.
DECIDERS: dict[type[CaseCommand], Callable[[Case, Actor, Any], Transition]] = {
    Accept: _accept,
    Note: _note,
    RequestInfo: _request_info,
    ResumeClock: _resume_clock,
    StartMediation: _start_mediation,
    Resolve: _resolve,
    Return: _return,
    ReviewReturn: _review_return,
    Reassign: _reassign,
    Transfer: _transfer,
    Escalate: _escalate,
    Visit: _visit,
    Survey: _survey,
    Merge: _merge,
    Close: _close,
    Reopen: _reopen,
    Void: _void,
}


def _assignee(message: str) -> Callable[[Case, Actor], None]:
    def check(case: Case, actor: Actor) -> None:
        _need(actor.staff_id == case.assignee_id, "not_your_case", message)

    return check


def _leadership(message: str, *, bureau: bool = False) -> Callable[[Case, Actor], None]:
    def check(case: Case, actor: Actor) -> None:
        _need(actor.leads or (bureau and actor.role in ("bureau", "admin")), "forbidden", message)

    return check


# Who may give each command at all, whatever the case's state and the command's fields: checked
# before the body is read (commands_api), so a stranger learns 404 or 403, never a field error.
# The rules above check it again (their own order), on the row locked for the change.
WHO: dict[type[CaseCommand], Callable[[Case, Actor], None]] = {
    Accept: _assignee("只有被分派的承办人可以签收。"),
    Note: _holder_or_leader,
    RequestInfo: _holder_or_leader,
    StartMediation: _holder_or_leader,
    Resolve: _holder_or_leader,
    Return: _assignee("只有承办人可以退单。"),
    ReviewReturn: _leadership("只有所领导可以审核退单。"),
    Reassign: _leadership("只有所领导可以改派。"),
    Transfer: _leadership("只有所领导可以移交。", bureau=True),
    Escalate: _holder_or_leader,
    Merge: _leadership("只有所领导可以并单。"),
    Close: _leadership("只有所领导可以结案。"),
    Reopen: _leadership("只有所领导可以重新办理。"),
    Void: _leadership("只有所领导可以作废事项。"),
    # Visit: anyone of the station but the handler and the holder (a 409 that depends on the state).
}


def authorise(case: Case, actor: Actor, command: type[CaseCommand]) -> None:
    """Whether this actor may give this kind of command on this case: Rejected `not_found` for
    another station's case, `forbidden` / `not_your_case` for the wrong person."""
    if actor.role not in ("bureau", "admin"):
        _need(actor.station == case.station, "not_found", "未找到该事项。")
    who = WHO.get(command)
    if who is not None:
        who(case, actor)


def decide(case: Case, actor: Actor, command: CaseCommand) -> Transition:
    """The transition a command makes, or Rejected."""
    authorise(case, actor, type(command))
    rule = DECIDERS.get(type(command))
    if rule is None:
        raise Rejected("unknown_command", f"未知操作：{name_of(command)}")
    return rule(case, actor, command)


# A filled-in example of each staff command, for `available`: its fields pass every rule that looks
# at fields alone (a reason given, a new assignee or station that differs from the current one), so
# what is left is whether this person may do it to this case now. NUL never names a real id.
_PROBES: dict[type[CaseCommand], CaseCommand] = {
    Accept: Accept(),
    Note: Note(text="-"),
    RequestInfo: RequestInfo(text="-"),
    ResumeClock: ResumeClock(),
    StartMediation: StartMediation(),
    Resolve: Resolve(summary="-"),
    Return: Return(reason="-"),
    ReviewReturn: ReviewReturn(approve=False),
    Reassign: Reassign(assignee_id="\x00"),
    Transfer: Transfer(to_station="\x00"),
    Escalate: Escalate(),
    Visit: Visit(result="satisfied"),
    Close: Close(),
    Reopen: Reopen(),
    Merge: Merge(into="\x00"),
    Void: Void(ground="other", reason="-"),
}


def available(case: Case, actor: Actor) -> list[str]:
    """The commands this person may give on this case now (the console shows only these): each
    command's own rule (`decide`) run on a filled-in example, so there is one copy of the rules."""
    allowed = []
    for command, probe in _PROBES.items():
        try:
            decide(case, actor, probe)
        except Rejected:
            continue
        allowed.append(name_of(command))
    return allowed


def review_label(assignment_reason: str | None, flagged: bool | None) -> str | None:
    """请核对分类 while a case triage was unsure of waits, flagged, for the leadership."""
    return "请核对分类" if flagged and (assignment_reason or "").startswith("review:low_confidence") else None
