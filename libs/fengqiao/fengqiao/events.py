"""The CloudEvents 1.0 envelope (structured JSON mode, DESIGN 4.3), topics and typed payloads.

Every event on every topic is a `CloudEvent`; its `data` is validated against the contract
registered for its `type` in `CONTRACTS`. A record that is not valid JSON, not a valid envelope,
or whose data breaks its contract is a `PoisonMessage`: it can never succeed and goes to the DLQ.

Over 400 lines on purpose: every contract of the platform and the topic each travels on, in one
place, is what other systems and docs/asyncapi.yaml (generated from it) read.
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CONTENT_TYPE = "application/cloudevents+json"

T = TypeVar("T", bound=BaseModel)


class Topics:
    """Every topic of the platform. Public ones are contracts (DESIGN 4.4)."""

    SUBMISSIONS = "fengqiao.submissions.v1"  # public ingress from other bureau systems
    CASE_EVENTS = "fengqiao.case-events.v1"  # public lifecycle stream, no personal data
    # Internal: intake -> triage, carries the text of a submission (may contain personal data).
    TRIAGE_REQUESTS = "fengqiao.internal.triage-requests.v1"
    # Internal: intake -> notify, messages to citizens (carries their contact and access code).
    CITIZEN_MESSAGES = "fengqiao.internal.citizen-messages.v1"
    # Internal: mediation -> everyone, event-carried state transfer of the directory.
    DIRECTORY = "fengqiao.internal.directory.v1"
    # Internal: intake -> mediation and notify, the citizens' return-visit survey answers.
    SURVEYS = "fengqiao.internal.surveys.v1"
    # Internal: console (mediation) -> triage, classifications corrected by staff (labelled examples).
    CORRECTIONS = "fengqiao.internal.corrections.v1"
    # Internal: mediation -> intake, what the citizen is told (result summary, request for information).
    CITIZEN_UPDATES = "fengqiao.internal.citizen-updates.v1"
    # Internal: mediation -> notify, reminders to staff before a deadline, and the notices of the steps
    # staff take on a case (with their reasons: staff free text, so never on the public stream).
    STAFF_REMINDERS = "fengqiao.internal.staff-reminders.v1"
    # Internal: triage and mediation -> intake, mediation and triage, who may not open a case (staff
    # named in a complaint, the leader's exclusions). Confidential: never on the public stream.
    CASE_ACCESS = "fengqiao.internal.case-access.v1"
    # Internal: intake -> mediation, what the citizen added to an open case (free text, may hold personal data).
    CITIZEN_ADDITIONS = "fengqiao.internal.citizen-additions.v1"

    @classmethod
    def all(cls) -> list[str]:
        base = [
            cls.SUBMISSIONS,
            cls.CASE_EVENTS,
            cls.TRIAGE_REQUESTS,
            cls.CITIZEN_MESSAGES,
            cls.DIRECTORY,
            cls.SURVEYS,
            cls.CORRECTIONS,
            cls.CITIZEN_UPDATES,
            cls.STAFF_REMINDERS,
            cls.CASE_ACCESS,
            cls.CITIZEN_ADDITIONS,
        ]
        return base + [dlq_topic(t) for t in base]


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class PoisonMessage(Exception):
    """A message that can never be processed successfully: dead-letter it and move on."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _no_nul(value: Any) -> Any:
    """PostgreSQL's text cannot hold NUL: a string with one can never be stored, so it is a poison
    message at the door, not a database error retried in the transaction (and a 500 over HTTP)."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone offset (RFC 3339)")
    return value


class CloudEvent(BaseModel):
    """CloudEvents 1.0 attributes; extension attributes are allowed and kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=256)
    source: str = Field(min_length=1, max_length=1024)
    type: str = Field(min_length=1, max_length=256)
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    subject: str | None = Field(default=None, max_length=256)
    stationid: str | None = Field(default=None, max_length=32)
    correlationid: str | None = Field(default=None, max_length=256)
    data: dict[str, Any]

    _check_time = field_validator("time")(_aware)
    _check_nul = field_validator("*")(_no_nul)

    def payload(self, model: builtins.type[T]) -> T:
        """The `data` of this event as `model`, validated against the contract registered for its
        type: `event.payload(CaseTriaged)`. Data that breaks the contract is a PoisonMessage; a
        `model` that is not the contract is a wiring mistake in the caller (TypeError)."""
        contract = self._contract()
        if model is not contract:
            raise TypeError(f"{self.type} carries {contract.__name__}, not {model.__name__}")
        return self._validate(model)

    def validated_data(self) -> BaseModel:
        """The `data` validated against its contract, whatever the type: for code that checks
        events it does not handle (the runner before its transaction, `fengqiao publish`)."""
        return self._validate(self._contract())

    def _contract(self) -> builtins.type[BaseModel]:
        contract = CONTRACTS.get(self.type)
        if contract is None:
            raise PoisonMessage("unknown_type", self.type)
        return contract

    def _validate(self, contract: builtins.type[T]) -> T:
        try:
            return contract.model_validate(self.data)
        except ValidationError as exc:
            raise PoisonMessage("schema_violation", _describe(exc)) from exc

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "(root)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | None) -> CloudEvent:
    """Decode a Kafka record value into a validated envelope (not yet its data)."""
    if raw is None:
        raise PoisonMessage("empty_value")
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PoisonMessage("bad_json", str(exc)[:200]) from exc
    if not isinstance(doc, dict):
        raise PoisonMessage("bad_envelope", "the record value must be a JSON object")
    try:
        return CloudEvent.model_validate(doc)
    except ValidationError as exc:
        raise PoisonMessage("bad_envelope", _describe(exc)) from exc


def new_event(
    type: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str,
    subject: str | None = None,
    stationid: str | None = None,
    correlationid: str | None = None,
    id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    payload = data.model_dump(mode="json", exclude_none=True) if isinstance(data, BaseModel) else data
    event_id = id or str(uuid.uuid4())
    return CloudEvent(
        specversion="1.0",
        id=event_id,
        source=source,
        type=type,
        time=time or datetime.now(UTC),
        subject=subject,
        stationid=stationid,
        correlationid=correlationid or event_id,
        data=payload,
    )


# --------------------------------------------------------------------------------------------
# Payload contracts. Small models with primitive fields; events are named in the past tense.
# --------------------------------------------------------------------------------------------

Channel = Literal["hotline", "mailbox", "web", "walk_in", "transfer_110", "transfer_12345", "bureau"]
RequestType = Literal["complaint", "suggestion", "help", "inquiry", "report", "praise", "other"]
Category = Literal[
    "public_order",
    "neighbor_dispute",
    "family_dispute",
    "labor_dispute",
    "traffic",
    "fraud",
    "theft",
    "noise",
    "safety_hazard",
    "police_conduct",
    "admin_service",
    "other",
]
Urgency = Literal["urgent", "high", "normal", "low"]
Role = Literal["officer", "mediator", "instructor", "leader", "bureau", "admin", "integration"]


class _Contract(BaseModel):
    # Tolerant reader: a field added by a newer producer is ignored, not a poison message, so
    # services (and other bureau systems) can be upgraded one at a time.
    model_config = ConfigDict(extra="ignore")

    _check_nul = field_validator("*")(_no_nul)


class Reporter(_Contract):
    name: str = Field(default="", max_length=100)
    phone: str = Field(default="", max_length=40)
    email: str = Field(default="", max_length=254)
    anonymous: bool = False
    confidential: bool = False

    @field_validator("phone")
    @classmethod
    def _phone_e164(cls, value: str) -> str:
        """Normalised to E.164 (mainland China by default); an impossible number is an error."""
        from fengqiao.pii import normalise_phone

        return normalise_phone(value) if value.strip() else ""

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        value = value.strip()
        if value and ("@" not in value or value.startswith("@") or value.endswith("@") or " " in value):
            raise ValueError("not an e-mail address")
        return value


class Location(_Contract):
    address: str = Field(default="", max_length=300)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)


class FeedbackSubmitted(_Contract):
    """`fengqiao.feedback.submitted` on the ingress topic (DESIGN 4.4)."""

    station: str = Field(min_length=1, max_length=32)
    channel: Channel = "web"
    content: str = Field(min_length=1, max_length=5000)
    title: str | None = Field(default=None, max_length=200)
    occurred_at: datetime | None = None
    reporter: Reporter = Field(default_factory=Reporter)
    location: Location = Field(default_factory=Location)
    external_ref: str | None = Field(default=None, max_length=200)

    @field_validator("content")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("content must not be blank")
        return value


class CaseReceived(_Contract):
    """Public: a submission was accepted and given a tracking number. No personal data."""

    tracking_no: str
    station: str
    channel: Channel
    submitted_at: datetime
    external_ref: str | None = None
    ingress_source: str | None = None
    ingress_id: str | None = None
    anonymous: bool = False
    has_contact: bool = False


class TriageRequested(_Contract):
    """Internal: the text triage needs to classify a submission."""

    tracking_no: str
    station: str
    channel: Channel
    title: str | None = None
    content: str
    submitted_at: datetime
    confidential: bool = False
    anonymous: bool = False
    # A keyed hash of the reporter's phone (else e-mail), to recognise the same reporter without
    # the number itself; absent for anonymous reporters without contact.
    reporter_key: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None


class CaseTriaged(_Contract):
    """Public: how triage classified an item, its reasons given as rule ids and model labels.
    E.g. `rule:urgency=urgent:self_harm#1` (a default rule), `rule:category=safety_hazard:#7`
    (deployment rule 7), `model:category=fraud:p=0.62`: never the matched words or the model's top
    features, which are the citizen's own (staff read those from triage's decision API)."""

    tracking_no: str
    station: str
    type: RequestType
    category: Category
    urgency: Urgency
    needs_mediation: bool
    confidence: float
    model_version: str
    reasons: list[str] = Field(description="rule ids and model labels, no citizen text")
    submitted_at: datetime
    sentiment: float | None = None
    confidences: dict[str, float] = Field(default_factory=dict)


class CaseAssigned(_Contract):
    tracking_no: str
    station: str
    assignee_id: str | None = None
    assignee_role: Role | None = None
    team: str | None = None
    type: RequestType
    category: Category
    urgency: Urgency
    needs_mediation: bool
    reason: str
    flagged: bool = False
    submitted_at: datetime
    # Urgent items and items nobody on duty could take: the station's leader must be told now.
    notify_leader: bool = False
    # A tip-off whose reporter asked for protection (举报人保密): only approved handlers, the station's
    # leadership and bureau supervisors may open the case. A flag, never who reported.
    confidential: bool = False


class CaseMerged(_Contract):
    """Public: a repeat of an open case (并单). It is counted on that case, not assigned again.
    `reason` is a label: `rule:duplicate:near_identical`, `rule:duplicate:similar_open_case`, or
    `manual:<staff id>`; whether the same reporter or place matched stays with triage."""

    tracking_no: str
    station: str
    merged_into: str
    similarity: float
    reason: str = Field(description="a rule label, never the reporter or the place")
    submitted_at: datetime


CaseStatus = Literal[
    "assigned",
    "accepted",
    "in_progress",
    "mediating",
    "resolved",
    "visited",
    "closed",
    "returned",
    "reopened",
    "transferred",
    "merged",
    "voided",  # 作废 (test, spam, abusive): announced as `fengqiao.case.closed` with this status
]


class CaseUpdated(_Contract):
    """Public: a step of the case lifecycle after assignment (accepted, returned, reassigned,
    escalated, overdue, mediation_scheduled, resolved, visited, closed, reopened, transferred).
    Staff ids only; free text (notes, summaries, reasons) never goes on the public stream."""

    tracking_no: str
    station: str
    status: CaseStatus
    previous_status: CaseStatus | None = None
    assignee_id: str | None = None
    previous_assignee_id: str | None = None
    actor_id: str | None = None  # a staff id, or "system:clock"
    at: datetime
    clock: Literal["accept", "resolve", "visit"] | None = None  # overdue, escalated by a clock
    due_at: datetime | None = None
    level: Literal["leader", "bureau"] | None = None  # escalated: to the leader, or bureau supervision
    from_station: str | None = None  # transferred
    result: Literal["satisfied", "basically_satisfied", "dissatisfied"] | None = None  # visited
    # visited by staff (回访 recorded by the station): how; None when the citizen answered the survey
    visit_method: Literal["phone", "in_person"] | None = None


class CitizenUpdate(_Contract):
    """Internal: what the citizen is told about their item (shown on the tracking page, and sent)."""

    tracking_no: str
    station: str
    kind: Literal["resolved", "info_requested", "rectified"]
    text: str = Field(min_length=1, max_length=2000)
    # resolved: which resolution of the case this is (1, 2 after a reopening...); the survey is per resolution
    resolution: int | None = Field(default=None, ge=1)


AdditionChannel = Literal["web", "mailbox", "hotline"]


class CitizenAdded(_Contract):
    """Internal: the citizen added to their open case: the answer to a request for information
    (tracking page, e-mail reply) or a follow-up call. The text is the citizen's own (or the
    operator's summary of the call): it may hold personal data, so it never reaches the public stream
    and is stored sealed."""

    tracking_no: str
    station: str
    channel: AdditionChannel
    text: str = Field(min_length=1, max_length=5000)
    # web and mailbox additions answer the request for information (the resolution clock resumes);
    # a follow-up call is a note for the officer, who resumes the clock if it brought what was asked
    answers_request: bool = True
    added_at: datetime


class CitizenAddedNotice(_Contract):
    """Internal: tell the holder of a case that the citizen added to it (no text: they read it in the case)."""

    tracking_no: str
    station: str
    recipient_id: str
    channel: AdditionChannel
    clock_resumed: bool = False


class StaffReminder(_Contract):
    """Internal: a deadline is near; remind the holder."""

    tracking_no: str
    station: str
    recipient_id: str
    clock: Literal["accept", "resolve", "visit", "performance_check", "confirmation_window"]
    due_at: datetime


NoticeCommand = Literal[
    "return", "review_return", "reassign", "transfer", "escalate", "reopen", "visit", "merge", "close", "void"
]


class StaffNotice(_Contract):
    """Internal: a step a member of staff took on a case, with what the staff concerned must read:
    who took it, the reason they gave (free text, hence not on the public stream), who held the
    case before and which station it came from. Notify builds the console notices of these steps
    from this event, not from the public one (one notice per step); the clock's own steps (overdue,
    supervision) stay on the public stream."""

    tracking_no: str
    station: str  # the case's station after the step
    command: NoticeCommand
    status: CaseStatus
    previous_status: CaseStatus
    actor_id: str
    assignee_id: str | None = None
    previous_assignee_id: str | None = None
    from_station: str | None = None  # transfer: the sending station
    merged_into: str | None = None  # merge: the case this one repeats
    reason: str | None = Field(default=None, max_length=1000)
    at: datetime


AlertKind = Literal["cluster", "trend", "repeat_dispute"]
AlertLevel = Literal["yellow", "orange", "red"]


class AlertRaised(_Contract):
    """Public: an early warning (群体性事件预警). Raised again, same alert_id, when its level rises.
    The explanation names no address (a cluster says 同一地点) and no reporter; the station's
    staff see the place in triage's alert API."""

    alert_id: str
    station: str
    kind: AlertKind
    level: AlertLevel
    category: Category | None = None
    members: list[str]  # tracking numbers, the latest 100
    reporters: int  # distinct reporters (cluster), items (trend), 1 (repeat_dispute)
    window_hours: int
    explanation: str = Field(description="Chinese, for people; no address, no reporter")
    raised_at: datetime


class TriageCorrected(_Contract):
    """Internal: a member of staff corrected a classification; triage keeps it as a labelled example."""

    tracking_no: str
    station: str
    type: RequestType | None = None
    category: Category | None = None
    urgency: Urgency | None = None
    corrected_by: str
    reason: str | None = Field(default=None, max_length=500)
    corrected_at: datetime


class CitizenMessageRequested(_Contract):
    """Internal: intake asks notify to send a templated message to a citizen."""

    tracking_no: str
    station: str
    template: Literal["acknowledgement", "result", "more_info", "rectified"]
    phone: str | None = None
    email: str | None = None
    params: dict[str, str] = Field(default_factory=dict)


# A station's own phone number as people dial it (digits, spaces, hyphens, a leading +): nothing
# else can reach a message to a citizen through it.
STATION_PHONE_PATTERN = r"^\+?[0-9][0-9 -]{2,30}$"


class StationUpserted(_Contract):
    code: str
    name: str
    jurisdiction: list[str] = Field(default_factory=list)
    # The station's own number, given to citizens in messages (absent: 110; emergencies always 110).
    phone: str | None = Field(default=None, max_length=32, pattern=STATION_PHONE_PATTERN)
    # Directory administration (issue 15). An inactive station's items stay readable, but intake
    # takes nothing new for it. Events from before these fields read as an active station.
    active: bool = True
    mailbox: str | None = Field(default=None, max_length=254)  # the station's own mailbox address
    duty_starts: str | None = Field(default=None, pattern=r"^[0-2][0-9]:[0-5][0-9]$")  # HH:MM
    duty_ends: str | None = Field(default=None, pattern=r"^[0-2][0-9]:[0-5][0-9]$")
    teams: list[str] = Field(default_factory=list)  # empty: the deployment's default teams
    category_teams: dict[str, str] = Field(default_factory=dict)  # category -> team of this station
    # {"kind", "category", "window_hours", "yellow", "orange", "red"}, as triage's alert_thresholds
    alert_thresholds: list[dict[str, str | int]] = Field(default_factory=list)


class StaffUpserted(_Contract):
    staff_id: str
    station: str | None = None
    name: str
    role: Role
    team: str | None = None
    badge_no: str | None = None
    active: bool = True
    # Approved by the leader to handle confidential tip-offs (举报人保密).
    confidential_handler: bool = False


class RosterPublished(_Contract):
    station: str
    day: str  # ISO date
    shifts: list[dict[str, str]]  # {"staff_id", "start": "HH:MM", "end": "HH:MM"}


class TokenIssued(_Contract):
    """A token issued, rotated or revoked. A token of a staff member acts with that person's current
    role and station, and only while they are active there."""

    token_id: str
    token_hash: str
    staff_id: str | None = None
    station: str | None = None
    role: Role
    revoked: bool = False
    revoked_at: datetime | None = None
    issued_at: datetime | None = None  # when this secret was made; rotation makes a new one
    expires_at: datetime | None = None  # None: does not expire (demo accounts only)
    label: str | None = Field(default=None, max_length=200)  # what it is for, e.g. "110 接警平台"


class SurveyAnswered(_Contract):
    """Internal: a citizen answered the return-visit survey (回访)."""

    tracking_no: str
    station: str
    result: Literal["satisfied", "basically_satisfied", "dissatisfied"]
    reason: str | None = Field(default=None, max_length=1000)
    answered_at: datetime
    # the resolution the answer is about (the survey link names it); None: before links named one
    resolution: int | None = Field(default=None, ge=1)


class CaseAccessChanged(_Contract):
    """Internal: who may not open a case, keyed by its tracking number. `origin` triage: staff named
    in a complaint or police-conduct item (sent for every item triage classifies, with an empty list
    when nobody is named: it settles the item's access at `station`, and until it arrives the
    station's staff do not open the item; sent again for the receiving station after a transfer,
    and for a member of staff joining a station); `origin` leader: the leader kept staff out of the
    case, or let them in again. Staff ids only; the leader's reason stays in mediation."""

    tracking_no: str = Field(min_length=1, max_length=64)
    station: str = Field(min_length=1, max_length=32)
    origin: Literal["triage", "leader"]
    excluded: list[str] = Field(default_factory=list, max_length=100)
    restored: list[str] = Field(default_factory=list, max_length=100)
    changed_by: str | None = Field(default=None, max_length=64)  # the leader's staff id
    at: datetime

    @field_validator("excluded", "restored")
    @classmethod
    def _staff_ids(cls, value: list[str]) -> list[str]:
        if any(not 1 <= len(v) <= 64 or "\x00" in v for v in value):
            raise ValueError("staff ids must be 1 to 64 characters")
        return value


class EventTypes:
    FEEDBACK_SUBMITTED = "fengqiao.feedback.submitted"
    CASE_RECEIVED = "fengqiao.case.received"
    CASE_TRIAGED = "fengqiao.case.triaged"
    CASE_ASSIGNED = "fengqiao.case.assigned"
    TRIAGE_REQUESTED = "fengqiao.triage.requested"
    CITIZEN_MESSAGE_REQUESTED = "fengqiao.citizen.message_requested"
    STATION_UPSERTED = "fengqiao.directory.station_upserted"
    STAFF_UPSERTED = "fengqiao.directory.staff_upserted"
    ROSTER_PUBLISHED = "fengqiao.directory.roster_published"
    TOKEN_ISSUED = "fengqiao.directory.token_issued"
    SURVEY_ANSWERED = "fengqiao.survey.answered"
    CASE_MERGED = "fengqiao.case.merged"
    CASE_ACCEPTED = "fengqiao.case.accepted"
    CASE_RETURNED = "fengqiao.case.returned"
    CASE_REASSIGNED = "fengqiao.case.reassigned"
    CASE_ESCALATED = "fengqiao.case.escalated"
    CASE_OVERDUE = "fengqiao.case.overdue"
    CASE_MEDIATION_SCHEDULED = "fengqiao.case.mediation_scheduled"
    CASE_RESOLVED = "fengqiao.case.resolved"
    CASE_VISITED = "fengqiao.case.visited"
    CASE_CLOSED = "fengqiao.case.closed"
    CASE_REOPENED = "fengqiao.case.reopened"
    CASE_TRANSFERRED = "fengqiao.case.transferred"
    CITIZEN_UPDATE = "fengqiao.citizen.update"
    STAFF_REMINDER = "fengqiao.staff.reminder"
    STAFF_NOTICE = "fengqiao.staff.notice"
    ALERT_RAISED = "fengqiao.alert.raised"
    TRIAGE_CORRECTED = "fengqiao.triage.corrected"
    CASE_ACCESS_CHANGED = "fengqiao.access.changed"
    CITIZEN_ADDED = "fengqiao.citizen.added"
    STAFF_CITIZEN_ADDED = "fengqiao.staff.citizen_added"


CONTRACTS: dict[str, type[BaseModel]] = {
    EventTypes.FEEDBACK_SUBMITTED: FeedbackSubmitted,
    EventTypes.CASE_RECEIVED: CaseReceived,
    EventTypes.CASE_TRIAGED: CaseTriaged,
    EventTypes.CASE_ASSIGNED: CaseAssigned,
    EventTypes.TRIAGE_REQUESTED: TriageRequested,
    EventTypes.CITIZEN_MESSAGE_REQUESTED: CitizenMessageRequested,
    EventTypes.STATION_UPSERTED: StationUpserted,
    EventTypes.STAFF_UPSERTED: StaffUpserted,
    EventTypes.ROSTER_PUBLISHED: RosterPublished,
    EventTypes.TOKEN_ISSUED: TokenIssued,
    EventTypes.SURVEY_ANSWERED: SurveyAnswered,
    EventTypes.CASE_MERGED: CaseMerged,
    **{
        f"fengqiao.case.{name}": CaseUpdated
        for name in (
            "accepted",
            "returned",
            "reassigned",
            "escalated",
            "overdue",
            "mediation_scheduled",
            "resolved",
            "visited",
            "closed",
            "reopened",
            "transferred",
        )
    },
    EventTypes.CITIZEN_UPDATE: CitizenUpdate,
    EventTypes.STAFF_REMINDER: StaffReminder,
    EventTypes.STAFF_NOTICE: StaffNotice,
    EventTypes.ALERT_RAISED: AlertRaised,
    EventTypes.TRIAGE_CORRECTED: TriageCorrected,
    EventTypes.CASE_ACCESS_CHANGED: CaseAccessChanged,
    EventTypes.CITIZEN_ADDED: CitizenAdded,
    EventTypes.STAFF_CITIZEN_ADDED: CitizenAddedNotice,
}


DIRECTORY_TYPES = frozenset(
    {EventTypes.STATION_UPSERTED, EventTypes.STAFF_UPSERTED, EventTypes.ROSTER_PUBLISHED, EventTypes.TOKEN_ISSUED}
)

# Which event types each topic may carry (DESIGN 4.8). A consumer handles an event only on the topic its
# type belongs to: the ingress topic is writable by other bureau systems, so a directory event (a token of
# the publisher's choosing) or a message to a citizen published there must never be acted on.
TOPIC_TYPES: dict[str, frozenset[str]] = {
    Topics.SUBMISSIONS: frozenset({EventTypes.FEEDBACK_SUBMITTED}),
    Topics.CASE_EVENTS: frozenset(t for t in CONTRACTS if t.startswith("fengqiao.case.")) | {EventTypes.ALERT_RAISED},
    Topics.TRIAGE_REQUESTS: frozenset({EventTypes.TRIAGE_REQUESTED}),
    Topics.CITIZEN_MESSAGES: frozenset({EventTypes.CITIZEN_MESSAGE_REQUESTED}),
    Topics.DIRECTORY: DIRECTORY_TYPES,
    Topics.SURVEYS: frozenset({EventTypes.SURVEY_ANSWERED}),
    Topics.CORRECTIONS: frozenset({EventTypes.TRIAGE_CORRECTED}),
    Topics.CITIZEN_UPDATES: frozenset({EventTypes.CITIZEN_UPDATE}),
    Topics.STAFF_REMINDERS: frozenset(
        {EventTypes.STAFF_REMINDER, EventTypes.STAFF_NOTICE, EventTypes.STAFF_CITIZEN_ADDED}
    ),
    Topics.CASE_ACCESS: frozenset({EventTypes.CASE_ACCESS_CHANGED}),
    Topics.CITIZEN_ADDITIONS: frozenset({EventTypes.CITIZEN_ADDED}),
}
# Topics other systems may write to: every type but the ones listed is refused there, unknown ones included.
INGRESS_TOPICS = frozenset({Topics.SUBMISSIONS})


def check_topic(topic: str, event_type: str) -> None:
    """Raise PoisonMessage if `event_type` may not arrive on `topic`.

    A type that belongs to another topic is refused everywhere; a type nobody knows is refused on
    an ingress topic and tolerated on internal ones (a newer producer during a rolling upgrade)."""
    allowed = TOPIC_TYPES.get(topic)
    if allowed is None or event_type in allowed:
        return
    if topic in INGRESS_TOPICS or event_type in CONTRACTS:
        raise PoisonMessage("type_not_allowed_on_topic", f"{event_type} is not accepted on {topic}")


def bind_handlers(topics: list[str], handlers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A service's handler table (event type -> handler) bound to the topics each type travels on:
    topic -> event type -> handler. A handler whose type travels on none of `topics` is a wiring
    mistake and fails the start rather than waiting forever for events that never come."""
    bound: dict[str, dict[str, Any]] = {topic: {} for topic in topics}
    for event_type, handler in handlers.items():
        homes = [t for t in topics if event_type in TOPIC_TYPES.get(t, ())]
        if not homes:
            raise ValueError(f"no subscribed topic carries {event_type} (topics: {', '.join(topics)})")
        for topic in homes:
            bound[topic][event_type] = handler
    return bound
