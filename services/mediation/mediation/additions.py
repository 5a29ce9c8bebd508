"""What the citizen added to a case (issue 13), from intake's internal citizen-additions topic: kept
sealed, noted in the case's history, the resolution clock resumed when it answers the officer's
request for information, and the holder told through notify (without the text)."""

from __future__ import annotations

from typing import Any

import asyncpg

from fengqiao.constants import MEDIATION_SOURCE as SOURCE
from fengqiao.events import CitizenAdded, CitizenAddedNotice, EventTypes, Topics, new_event
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher, Sealed, mask_text
from mediation import db
from mediation.cases import resume_after_wait

# The case history's line for each way the citizen added something (the text is in the additions).
HISTORY_NOTES = {
    "web": "群众已补充材料（进度查询页）",
    "mailbox": "群众已补充材料（回复邮件）",
    "hotline": "群众来电跟进，已记入本事项",
}


def _context(tracking_no: str, event_id: str) -> str:
    return f"{tracking_no}/addition/{event_id}"


async def record_addition(
    conn: asyncpg.Connection, outbox: Outbox, data: CitizenAdded, *, event_id: str, cipher: PiiCipher
) -> None:
    """Keep the addition and, if the case exists, note it, resume a clock waiting for it and tell the
    holder (the leader if nobody holds it). A redelivered event changes nothing."""
    no = data.tracking_no
    sealed = cipher.seal_json({"text": data.text}, context=_context(no, event_id))
    stored = await db.additions.insert_addition(
        conn,
        tracking_no=no,
        station=data.station,
        channel=data.channel,
        answers_request=data.answers_request,
        event_id=event_id,
        pii_kid=sealed.kid,
        text_enc=sealed.blob,
        added_at=data.added_at,
    )
    row = await db.cases.case_for_update(conn, no)
    if not stored or row is None:
        return  # a repeat, or an item not assigned yet: the addition is shown with the case once it exists
    status, assignee = row["status"], row["assignee_id"]
    await db.cases.add_history(
        conn,
        no,
        at=data.added_at,
        status=status,
        actor=f"citizen:{data.channel}",
        reason=HISTORY_NOTES[data.channel],
        assignee_id=assignee,
    )
    resumed = data.answers_request and await resume_after_wait(
        conn, no, status=status, assignee=assignee, at=data.added_at, why="群众已补充，办理时限恢复"
    )
    # Nobody holds it: the leadership, but never one kept out of the case.
    recipient = assignee or await db.cases.unexcluded_leadership(conn, no, row["station"])
    if recipient:
        notice = CitizenAddedNotice(
            tracking_no=no, station=row["station"], recipient_id=recipient, channel=data.channel, clock_resumed=resumed
        )
        outbox.add(
            Topics.STAFF_REMINDERS,
            new_event(EventTypes.STAFF_CITIZEN_ADDED, notice, source=SOURCE, subject=no, stationid=row["station"]),
        )


def opened(
    rows: list[asyncpg.Record], tracking_no: str, cipher: PiiCipher, *, reveal: bool = False
) -> list[dict[str, Any]]:
    """The additions as the case detail shows them to the station's staff (the read is audited):
    phones, ID numbers and e-mails masked like the citizen's original words; the text as written is
    a logged reveal (intake's `POST :8080/api/v1/feedback/{no}/reveal`, which returns the additions
    too, or the console's with a reason: `reveal`)."""
    shown = []
    for r in rows:
        text = cipher.open_json(Sealed(r["pii_kid"], r["text_enc"]), context=_context(tracking_no, r["event_id"]))
        shown.append(
            {
                "at": r["added_at"].isoformat(),
                "channel": r["channel"],
                "answers_request": r["answers_request"],
                "text": text["text"] if reveal else mask_text(text["text"]),
            }
        )
    return shown
