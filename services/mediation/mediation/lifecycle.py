"""The case state machine (DESIGN 5). Pure: a command and the case as it is give the new state
and the events to emit, or a `Rejected` with a clear reason. Nothing is ever silently applied.

States: assigned → accepted (签收) → in_progress (→ mediating) → resolved (办结) → visited (回访)
→ closed; returned (退单, awaiting the leader's review); reopened (a dissatisfied citizen:
awaiting the leader's review); transferred (now another station's); merged (a repeat)."""

from __future__ import annotations

from dataclasses import dataclass, field

OPEN = frozenset({"assigned", "accepted", "in_progress", "mediating", "returned", "reopened"})
WORKING = frozenset({"accepted", "in_progress", "mediating"})
LEADERSHIP = frozenset({"leader", "instructor"})
STATUS_LABELS = {
    "assigned": "已分派", "accepted": "已签收", "in_progress": "办理中", "mediating": "调解中",
    "resolved": "已办结", "visited": "已回访", "closed": "已结案", "returned": "退单待审",
    "reopened": "重新办理", "transferred": "已移交", "merged": "已并单",
}


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
    status: str
    assignee_id: str | None
    needs_mediation: bool = False
    returned_by: str | None = None
    handled_by: str | None = None  # who resolved it: the return visit must be someone else


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
    status: str
    event: str | None  # the public event type suffix (fengqiao.case.<event>), None for none
    assignee_id: str | None
    note: str
    changes: dict = field(default_factory=dict)


def _need(condition: bool, code: str, message: str) -> None:
    if not condition:
        raise Rejected(code, message)


def _holder_or_leader(case: Case, actor: Actor) -> None:
    _need(actor.staff_id == case.assignee_id or actor.leads, "not_your_case", "只有承办人或所领导可以办理此事项。")


def decide(case: Case, actor: Actor, command: str, **args) -> Transition:
    """The transition a command makes, or Rejected."""
    if actor.role not in ("bureau", "admin"):
        _need(actor.station == case.station, "not_found", "未找到该事项。")
    status = case.status
    if command == "accept":
        _need(status == "assigned", "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能签收。")
        _need(actor.staff_id == case.assignee_id, "not_your_case", "只有被分派的承办人可以签收。")
        return Transition("accepted", "accepted", case.assignee_id, "已签收")
    if command == "note":
        _need(status in WORKING, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能添加办理记录。")
        _holder_or_leader(case, actor)
        _need(bool(args.get("text", "").strip()), "missing_text", "请填写办理情况。")
        return Transition("in_progress" if status == "accepted" else status, None, case.assignee_id, args["text"])
    if command == "request_info":
        _need(status in WORKING, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能请群众补充材料。")
        _holder_or_leader(case, actor)
        text = (args.get("text") or "").strip()
        _need(bool(text), "missing_text", "请写明需要群众补充的内容。")
        return Transition("in_progress", None, case.assignee_id, text)
    if command == "start_mediation":
        _need(status in ("accepted", "in_progress"), "illegal_transition",
              f"当前状态为“{STATUS_LABELS[status]}”，不能转入调解。")
        _holder_or_leader(case, actor)
        return Transition("mediating", "mediation_scheduled", case.assignee_id, args.get("text") or "转入调解")
    if command == "resolve":
        _need(status in WORKING, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能办结。")
        _holder_or_leader(case, actor)
        summary = (args.get("summary") or "").strip()
        _need(bool(summary), "missing_summary", "办结须填写给群众的办理结果。")
        return Transition("resolved", "resolved", case.assignee_id, summary, {"handled_by": actor.staff_id})
    if command == "return":
        _need(status in ("assigned", "accepted"), "illegal_transition",
              f"当前状态为“{STATUS_LABELS[status]}”，不能退单。")
        _need(actor.staff_id == case.assignee_id, "not_your_case", "只有承办人可以退单。")
        reason = (args.get("reason") or "").strip()
        _need(bool(reason), "missing_reason", "退单须说明理由。")
        return Transition("returned", "returned", case.assignee_id, reason, {"returned_by": actor.staff_id})
    if command == "review_return":
        _need(status == "returned", "illegal_transition", "该事项没有待审核的退单。")
        _need(actor.leads, "forbidden", "只有所领导可以审核退单。")
        if args.get("approve"):
            to = args.get("assignee_id")
            _need(bool(to) and to != case.returned_by, "missing_assignee", "同意退单须指定新的承办人。")
            return Transition("assigned", "reassigned", to, args.get("reason") or "同意退单，改派")
        return Transition("assigned", "reassigned", case.returned_by, args.get("reason") or "不同意退单，原承办人继续办理")
    if command == "reassign":
        _need(status in OPEN, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能改派。")
        _need(actor.leads, "forbidden", "只有所领导可以改派。")
        to = args.get("assignee_id")
        _need(bool(to) and to != case.assignee_id, "missing_assignee", "请指定新的承办人。")
        return Transition("assigned", "reassigned", to, args.get("reason") or "改派")
    if command == "transfer":
        _need(status in OPEN, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能移交。")
        _need(actor.leads or actor.role in ("bureau", "admin"), "forbidden", "只有所领导可以移交。")
        to = args.get("to_station")
        _need(bool(to) and to != case.station, "missing_station", "请指定接收的派出所。")
        return Transition("assigned", "transferred", None, args.get("reason") or "移交", {"station": to})
    if command == "escalate":
        _need(status in OPEN, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能上报。")
        _holder_or_leader(case, actor)
        return Transition(status, "escalated", case.assignee_id, args.get("reason") or "上报所领导")
    if command == "visit":
        _need(status == "resolved", "illegal_transition", "只有已办结的事项可以回访。")
        _need(actor.staff_id != case.handled_by, "same_handler", "回访须由承办人以外的人员进行。")
        result = args.get("result")
        _need(result in ("satisfied", "basically_satisfied", "dissatisfied"), "invalid_result", "请选择回访结果。")
        if result == "dissatisfied":
            return Transition("reopened", "reopened", case.assignee_id, args.get("reason") or "群众不满意，重新办理",
                              {"visit_result": result})
        return Transition("visited", "visited", case.assignee_id, args.get("reason") or "已回访",
                          {"visit_result": result})
    if command == "survey":  # the citizen's own answer to the return-visit survey
        result = args.get("result")
        _need(result in ("satisfied", "basically_satisfied", "dissatisfied"), "invalid_result", "无效的评价。")
        reason = args.get("reason") or ""
        if result == "dissatisfied" and status in ("resolved", "visited", "closed"):
            return Transition("reopened", "reopened", case.assignee_id, f"群众评价不满意：{reason}".rstrip("："),
                              {"visit_result": result})
        _need(status == "resolved", "illegal_transition", "该事项已回访。")
        return Transition("visited", "visited", case.assignee_id, f"群众评价：{result}", {"visit_result": result})
    if command == "merge":  # 并单 by hand: a repeat triage did not catch
        _need(status in OPEN, "illegal_transition", f"当前状态为“{STATUS_LABELS[status]}”，不能并单。")
        _need(actor.leads, "forbidden", "只有所领导可以并单。")
        into = args.get("into")
        _need(bool(into) and into != case.tracking_no, "missing_case", "请指定并入的事项编号。")
        return Transition("merged", "merged", case.assignee_id, args.get("reason") or f"并入 {into}", {"into": into})
    if command == "close":
        _need(status == "visited", "illegal_transition", "回访后才能结案。")
        _need(actor.leads, "forbidden", "只有所领导可以结案。")
        return Transition("closed", "closed", case.assignee_id, args.get("reason") or "结案")
    if command == "reopen":
        _need(status in ("resolved", "visited", "closed"), "illegal_transition", "只有已办结的事项可以重新办理。")
        _need(actor.leads, "forbidden", "只有所领导可以重新办理。")
        return Transition("reopened", "reopened", case.assignee_id, args.get("reason") or "重新办理")
    raise Rejected("unknown_command", f"未知操作：{command}")
