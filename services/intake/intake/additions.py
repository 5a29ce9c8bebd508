"""What the citizen adds to an open item (issue 13): the answer to a request for information (the
tracking page's form, an e-mail reply) and follow-up calls. The one path every channel takes:
stored sealed, shown on the citizen's timeline, and carried to mediation on the internal
citizen-additions topic (never the public stream), all in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from fengqiao.constants import INTAKE_SOURCE
from fengqiao.events import AdditionChannel, CitizenAdded, EventTypes, Topics, new_event
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher, Sealed
from intake import db
from intake.domain import ADDITION_NOTES


def reporter_email(cipher: PiiCipher, row: asyncpg.Record) -> str:
    """The e-mail address the reporter gave (opened from the sealed reporter), lower-cased; "" if none."""
    if row["reporter_enc"] is None:
        return ""
    reporter = cipher.open_json(Sealed(row["pii_kid"], row["reporter_enc"]), context=f"{row['tracking_no']}/reporter")
    return str(reporter.get("email") or "").strip().lower()


async def add_to_item(
    conn: asyncpg.Connection,
    outbox: Outbox,
    row: asyncpg.Record,
    *,
    cipher: PiiCipher,
    channel: AdditionChannel,
    source_key: str,
    text: str,
    answers_request: bool,
) -> bool:
    """Add `text` to the item `row`; False if this addition (channel, source key) was made before."""
    tracking_no, station = row["tracking_no"], row["station"]
    now = datetime.now(UTC)
    sealed = cipher.seal_json({"text": text}, context=f"{tracking_no}/addition/{channel}/{source_key}")
    if not await db.insert_addition(
        conn,
        tracking_no=tracking_no,
        channel=channel,
        source_key=source_key,
        pii_kid=sealed.kid,
        text_enc=sealed.blob,
        added_at=now,
        answers_request=answers_request,
    ):
        return False
    event = new_event(
        EventTypes.CITIZEN_ADDED,
        CitizenAdded(
            tracking_no=tracking_no,
            station=station,
            channel=channel,
            text=text,
            answers_request=answers_request,
            added_at=now,
        ),
        source=INTAKE_SOURCE,
        subject=tracking_no,
        stationid=station,
    )
    await db.add_timeline_note(conn, tracking_no, now, ADDITION_NOTES[channel], event.id)
    outbox.add(Topics.CITIZEN_ADDITIONS, event)
    return True
