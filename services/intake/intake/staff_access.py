"""Who of the staff opens an item, and what they read of it (issue 13).

An item is opened by staff of its station (bureau and admin: any), except:
- staff named in a complaint (triage finds them) or kept out by the station's leader: "not found",
  as for another station's item, and the refusal goes to the disclosure log the leader reads;
- before triage has said who the item names (`access_settled`, normally within a second of
  receipt): the station's staff do not open it yet (bureau and admin do), so a named officer cannot
  read the complaint in the window before the exclusion arrives;
- a confidential tip-off: only the leadership, approved handlers and the bureau (finding 12);
- a station token without a staff id (`fengqiao token create --role officer --station X`): it
  files items, but opens none (exclusions are by person; security review, finding 6).

What the citizen wrote (title, content, place) and who they are are shown masked (138****5678);
the unmasked text is given on a reveal with a reason, and every reveal is logged."""

from __future__ import annotations

from typing import Any

import asyncpg

from fengqiao.auth import Principal
from fengqiao.pii import PiiCipher, Sealed, mask_reporter, mask_text
from intake import db
from intake.domain import may_open_confidential, may_open_unsettled, may_see_reporter


async def staff_opens(conn: asyncpg.Connection, principal: Principal | None, row: asyncpg.Record) -> bool:
    """Whether the caller opens the item as staff (no access code needed). A refusal because the
    caller is kept out of the item is logged (on the caller's connection, outside any transaction
    that a 404 would roll back)."""
    if principal is None or not principal.is_staff or not principal.can_see_station(row["station"]):
        return False
    if principal.staff_id is None and not principal.sees_all_stations:
        return False  # a station token that is nobody's: exclusions are by person, so it opens no item
    if principal.staff_id is not None and await db.is_excluded(conn, row["tracking_no"], principal.staff_id):
        await db.log_personal_data_access(
            conn,
            row["tracking_no"],
            principal.token_id,
            principal.staff_id,
            principal.role,
            station=row["station"],
            action="refused_excluded",
        )
        return False
    if not row["access_settled"] and not may_open_unsettled(principal.role):
        return False
    if row["confidential"]:
        approved = await db.is_confidential_handler(conn, principal.staff_id, row["station"])
        return may_open_confidential(principal.role, approved)
    return True


def case_file(cipher: PiiCipher, principal: Principal, row: asyncpg.Record, *, reveal: bool) -> dict[str, Any]:
    """What the citizen wrote and who they are, for staff who opened the item: masked, or as
    written when `reveal` (the caller logs it). The reporter only for those who may see them."""
    no = row["tracking_no"]
    reporter: dict[str, Any] | None = None
    names: tuple[str, ...] = ()
    if row["reporter_enc"] is not None:
        identity = cipher.open_json(Sealed(row["pii_kid"], row["reporter_enc"]), context=f"{no}/reporter")
        names = (identity.get("name") or "",)
        if may_see_reporter(principal.role, row["confidential"]):
            reporter = identity | {"anonymous": row["anonymous"], "confidential": row["confidential"]}
    address = None
    if row["location_enc"] is not None:
        address = cipher.open_json(Sealed(row["pii_kid"], row["location_enc"]), context=f"{no}/location").get("address")
    if reveal:
        return {"title": row["title"], "content": row["content"], "address": address or None, "reporter": reporter}
    return {
        "title": mask_text(row["title"], names) if row["title"] else None,
        "content": mask_text(row["content"], names),
        "address": mask_text(address, names) if address else None,
        "reporter": mask_reporter(reporter) if reporter is not None else None,
    }


def citizen_additions(cipher: PiiCipher, tracking_no: str, rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """What the citizen added to the item, as written (for a logged reveal only)."""
    return [
        {
            "at": r["added_at"].isoformat(),
            "channel": r["channel"],
            "text": cipher.open_json(
                Sealed(r["pii_kid"], r["text_enc"]), context=f"{tracking_no}/addition/{r['channel']}/{r['source_key']}"
            )["text"],
        }
        for r in rows
    ]
