"""Accepting a submission: the one path every channel takes (web, API, ingress topic, CloudEvents
HTTP). Stores it, draws the tracking number and access code, and writes the `received` event,
the triage request and the citizen's acknowledgement to the outbox, all in the caller's
transaction."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

import asyncpg

from fengqiao.constants import INTAKE_SOURCE as SOURCE
from fengqiao.events import (
    CaseReceived,
    CitizenMessageRequested,
    EventTypes,
    FeedbackSubmitted,
    Reporter,
    Topics,
    TriageRequested,
    new_event,
)
from fengqiao.outbox import Outbox
from fengqiao.pii import BlindIndex, PiiCipher, Sealed
from intake import db
from intake.domain import TIMELINE_NOTES, hash_access_code, new_access_code, new_tracking_no


class _Envelope(TypedDict):
    """The CloudEvent attributes every event of one submission shares (new_event's keywords)."""

    source: str
    subject: str
    stationid: str
    correlationid: str | None


class UnknownStation(Exception):
    """No such station, or (`inactive`) one the bureau deactivated: it takes nothing new."""

    def __init__(self, station: str, *, inactive: bool = False) -> None:
        super().__init__(f"{'inactive' if inactive else 'unknown'} station {station!r}")
        self.station = station
        self.inactive = inactive

    @property
    def code(self) -> str:
        return "station_inactive" if self.inactive else "unknown_station"

    @property
    def message(self) -> str:
        if self.inactive:
            return f"派出所 {self.station} 已停用，不再受理新的反映，请选择其他派出所或拨打 110。"
        return f"未知的派出所代码：{self.station}"


def reporter_key(index: BlindIndex | None, reporter: Reporter) -> str | None:
    """The same reporter's items share this key (a keyed hash of the phone, else the e-mail), so
    triage can merge repeats and see repeated disputes without ever holding the number."""
    if index is None:
        return None
    if reporter.phone:
        return index.of(reporter.phone, purpose="phone")
    if reporter.email:
        return index.of(reporter.email.lower(), purpose="email")
    return None


class AlreadyAccepted(Exception):
    """This (source, id) was accepted before, through another path (Kafka or HTTP)."""


@dataclass(frozen=True)
class Accepted:
    tracking_no: str
    access_code: str
    station: str
    channel: str


def seal_personal_data(cipher: PiiCipher, tracking_no: str, reporter: dict, location: dict) -> tuple[str, bytes, bytes]:
    """The reporter's identity and the location, encrypted and bound to this submission."""
    sealed_reporter = cipher.seal_json(reporter, context=f"{tracking_no}/reporter")
    sealed_location = cipher.seal_json(location, context=f"{tracking_no}/location")
    return sealed_reporter.kid, sealed_reporter.blob, sealed_location.blob


async def accept_submission(
    conn: asyncpg.Connection,
    outbox: Outbox,
    data: FeedbackSubmitted,
    *,
    cipher: PiiCipher,
    index: BlindIndex,
    ingress_source: str | None = None,
    ingress_id: str | None = None,
    correlation_id: str | None = None,
    publish_refs: bool = False,
) -> Accepted:
    """`publish_refs`: the public `received` event carries the external reference and the ingress
    source and id, so the bureau system that sent the item can match it (DESIGN 4.4). Only for
    items another system sent: a citizen's free-text external_ref, an e-mail Message-ID or an
    Open311 device id says something about the person and stays inside (review finding 7)."""
    active = await db.station_active(conn, data.station)
    if not active:
        raise UnknownStation(data.station, inactive=active is False)
    now = datetime.now(UTC)
    access_code = new_access_code()
    tracking_no = await _store_submission(
        conn,
        data,
        cipher=cipher,
        index=index,
        access_code=access_code,
        submitted_at=now,
        ingress_source=ingress_source,
        ingress_id=ingress_id,
    )
    _write_events(
        outbox,
        data,
        tracking_no=tracking_no,
        access_code=access_code,
        submitted_at=now,
        index=index,
        ingress_source=ingress_source,
        ingress_id=ingress_id,
        correlation_id=correlation_id,
        publish_refs=publish_refs,
    )
    return Accepted(tracking_no=tracking_no, access_code=access_code, station=data.station, channel=data.channel)


async def _store_submission(
    conn: asyncpg.Connection,
    data: FeedbackSubmitted,
    *,
    cipher: PiiCipher,
    index: BlindIndex,
    access_code: str,
    submitted_at: datetime,
    ingress_source: str | None,
    ingress_id: str | None,
) -> str:
    """Stores the submission under a fresh random tracking number and returns that number; raises
    AlreadyAccepted if this (ingress_source, ingress_id) is stored already."""
    identity = data.reporter.model_dump(include={"name", "phone", "email"})
    location = data.location.model_dump(exclude_none=True)
    while True:
        tracking_no = new_tracking_no()
        kid, reporter_enc, location_enc = seal_personal_data(cipher, tracking_no, identity, location)
        if await db.insert_submission(
            conn,
            tracking_no=tracking_no,
            station=data.station,
            channel=data.channel,
            title=data.title,
            content=data.content,
            pii_kid=kid,
            reporter_enc=reporter_enc,
            location_enc=location_enc,
            anonymous=data.reporter.anonymous,
            confidential=data.reporter.confidential,
            external_ref=data.external_ref,
            ingress_source=ingress_source,
            ingress_id=ingress_id,
            access_code_hash=hash_access_code(index, tracking_no, access_code),
            submitted_at=submitted_at,
            occurred_at=data.occurred_at,
            received_note=TIMELINE_NOTES["received"],
        ):
            return tracking_no
        # Without an id the lookup (`ingress_id = NULL`) could never match, so it is not made.
        if ingress_source and ingress_id is not None and await db.find_by_ingress(conn, ingress_source, ingress_id):
            raise AlreadyAccepted(ingress_source, ingress_id)
        # else: the random tracking number was taken; draw another


def _write_events(
    outbox: Outbox,
    data: FeedbackSubmitted,
    *,
    tracking_no: str,
    access_code: str,
    submitted_at: datetime,
    index: BlindIndex,
    ingress_source: str | None,
    ingress_id: str | None,
    correlation_id: str | None,
    publish_refs: bool,
) -> None:
    """The outgoing events, to the outbox: `received` (public), the triage request and, if the
    reporter left a phone or an e-mail, the acknowledgement with the access code."""
    has_contact = bool(data.reporter.phone or data.reporter.email)
    common: _Envelope = {
        "source": SOURCE,
        "subject": tracking_no,
        "stationid": data.station,
        "correlationid": correlation_id,
    }
    received = CaseReceived(
        tracking_no=tracking_no,
        station=data.station,
        channel=data.channel,
        submitted_at=submitted_at,
        external_ref=data.external_ref if publish_refs else None,
        ingress_source=ingress_source if publish_refs else None,
        ingress_id=ingress_id if publish_refs else None,
        anonymous=data.reporter.anonymous,
        has_contact=has_contact,
    )
    outbox.add(Topics.CASE_EVENTS, new_event(EventTypes.CASE_RECEIVED, received, **common))
    triage = _triage_requested(data, tracking_no, submitted_at, index=index)
    outbox.add(Topics.TRIAGE_REQUESTS, new_event(EventTypes.TRIAGE_REQUESTED, triage, **common))
    if has_contact:
        acknowledgement = _acknowledgement(data, tracking_no, access_code)
        outbox.add(Topics.CITIZEN_MESSAGES, new_event(EventTypes.CITIZEN_MESSAGE_REQUESTED, acknowledgement, **common))


def _triage_requested(
    data: FeedbackSubmitted, tracking_no: str, submitted_at: datetime, *, index: BlindIndex
) -> TriageRequested:
    """What triage needs to classify and route the item; the reporter only as a keyed hash."""
    return TriageRequested(
        tracking_no=tracking_no,
        station=data.station,
        channel=data.channel,
        title=data.title,
        content=data.content,
        submitted_at=submitted_at,
        confidential=data.reporter.confidential,
        anonymous=data.reporter.anonymous,
        reporter_key=reporter_key(index, data.reporter),
        address=data.location.address or None,
        lat=data.location.lat,
        lon=data.location.lon,
    )


def _acknowledgement(data: FeedbackSubmitted, tracking_no: str, access_code: str) -> CitizenMessageRequested:
    """The citizen's acknowledgement with the access code, by SMS or e-mail."""
    return CitizenMessageRequested(
        tracking_no=tracking_no,
        station=data.station,
        template="acknowledgement",
        phone=data.reporter.phone or None,
        email=data.reporter.email or None,
        params={"access_code": access_code},
    )


def seal_receipt(cipher: PiiCipher, scope: str, key: str, receipt: dict) -> dict:
    """A receipt kept for Idempotency-Key replays holds the access code: stored sealed, never in clear."""
    sealed = cipher.seal_json(receipt, context=f"idempotency/{scope}/{key}")
    return {"sealed": sealed.kid, "blob": base64.b64encode(sealed.blob).decode()}


def open_receipt(cipher: PiiCipher, scope: str, key: str, stored: dict) -> dict:
    if "sealed" not in stored:  # kept before receipts were sealed
        return stored
    return cipher.open_json(
        Sealed(stored["sealed"], base64.b64decode(stored["blob"])), context=f"idempotency/{scope}/{key}"
    )
