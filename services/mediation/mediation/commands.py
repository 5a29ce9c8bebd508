"""The case commands as data: one small model per command, named in the imperative, with the fields
it takes. `lifecycle.decide` dispatches on the type; the HTTP routes are generated from `STAFF_COMMANDS`.

A required text field is required here (the API docs say so); whether it is blank is the state
machine's rule (`missing_summary`, `missing_reason`, ...), so the refusal keeps its code."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

VisitResult = Literal["satisfied", "basically_satisfied", "dissatisfied"]
Text = Annotated[str, Field(max_length=2000)]
Reason = Annotated[str, Field(max_length=1000)]
StaffId = Annotated[str, Field(max_length=64)]
StationCode = Annotated[str, Field(max_length=32)]


class CaseCommand(BaseModel):
    """A command on one case (the tracking number is in the URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Accept(CaseCommand):
    """签收: the assignee takes the case."""

    command: Literal["accept"] = "accept"


class Note(CaseCommand):
    """A note of what was done (办理记录)."""

    command: Literal["note"] = "note"
    text: Text


class RequestInfo(CaseCommand):
    """Ask the citizen to add something (the text is sent to them)."""

    command: Literal["request_info"] = "request_info"
    text: Text = Field(description="what the citizen should add")


class ResumeClock(CaseCommand):
    """Resume the resolution clock suspended while waiting for the citizen (e.g. they answered by phone)."""

    command: Literal["resume_clock"] = "resume_clock"
    reason: Reason | None = None


class StartMediation(CaseCommand):
    """Move the case into mediation (调解)."""

    command: Literal["start_mediation"] = "start_mediation"
    text: Text | None = None


class Resolve(CaseCommand):
    """办结: the result, told to the citizen."""

    command: Literal["resolve"] = "resolve"
    summary: Text = Field(description="the result told to the citizen")


class Return(CaseCommand):
    """退单: the assignee hands the case back, with a reason, for the leader's review."""

    command: Literal["return"] = "return"
    reason: Reason


class ReviewReturn(CaseCommand):
    """The leader's review of a return: approve (and name a new assignee) or send it back."""

    command: Literal["review_return"] = "review_return"
    approve: bool
    assignee_id: StaffId | None = Field(default=None, description="required when approving")
    reason: Reason | None = None


class Reassign(CaseCommand):
    """改派 to another officer of the station."""

    command: Literal["reassign"] = "reassign"
    assignee_id: StaffId
    reason: Reason | None = None


class Transfer(CaseCommand):
    """移交 to another station (its leader's queue)."""

    command: Literal["transfer"] = "transfer"
    to_station: StationCode
    reason: Reason | None = None


class Escalate(CaseCommand):
    """上报所领导."""

    command: Literal["escalate"] = "escalate"
    reason: Reason | None = None


VisitMethod = Literal["phone", "in_person"]
VISIT_METHOD_LABELS: dict[str, str] = {"phone": "电话回访", "in_person": "上门回访"}


class Visit(CaseCommand):
    """回访 by someone other than the handler and the holder; dissatisfied reopens the case."""

    command: Literal["visit"] = "visit"
    result: VisitResult
    method: VisitMethod = Field(default="phone", description="how the station reached the citizen")
    reason: Reason | None = None


class Close(CaseCommand):
    """结案 after the return visit."""

    command: Literal["close"] = "close"
    reason: Reason | None = None


class Reopen(CaseCommand):
    """重新办理 a resolved, visited or closed case."""

    command: Literal["reopen"] = "reopen"
    reason: Reason | None = None


class Merge(CaseCommand):
    """并单 by hand: this case repeats an open case of the station."""

    command: Literal["merge"] = "merge"
    into: str = Field(max_length=32, description="the open case this one repeats")
    reason: Reason | None = None


VoidGround = Literal["test", "spam", "abusive", "other"]
VOID_GROUND_LABELS: dict[str, str] = {"test": "测试", "spam": "无效信息", "abusive": "恶意骚扰", "other": "其他"}


class Void(CaseCommand):
    """作废 a test, spam or abusive item (leadership, with a reason): every clock stops, the item
    leaves the rates, and the citizen gets no result message and no survey."""

    command: Literal["void"] = "void"
    ground: VoidGround = Field(description="test, spam, abusive or other")
    reason: Reason = Field(description="why (kept in the case history, never on the public stream)")


class Survey(CaseCommand):
    """The citizen's own answer to the return-visit survey (from intake's signed link; no HTTP route)."""

    command: Literal["survey"] = "survey"
    result: VisitResult
    reason: str = ""


# The one list of the staff's commands: the routes and the body of `POST .../commands` come from it.
StaffCommand = Annotated[
    Accept
    | Note
    | RequestInfo
    | ResumeClock
    | StartMediation
    | Resolve
    | Return
    | ReviewReturn
    | Reassign
    | Transfer
    | Escalate
    | Visit
    | Close
    | Reopen
    | Merge
    | Void,
    Field(discriminator="command"),
]
STAFF_COMMANDS: tuple[type[CaseCommand], ...] = get_args(get_args(StaffCommand)[0])


def name_of(command: type[CaseCommand] | CaseCommand) -> str:
    """The command's name in URLs, the audit log and the history: `Resolve` -> "resolve"."""
    cls = command if isinstance(command, type) else type(command)
    name = cls.model_fields["command"].default
    assert isinstance(name, str)
    return name
