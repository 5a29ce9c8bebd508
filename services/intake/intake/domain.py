"""Pure rules of intake: tracking numbers, access codes, status names shown to citizens."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

from fengqiao.pii import BlindIndex
from fengqiao.taxonomy import CITIZEN_STATUS_LABELS

# No 0/O, 1/I/L, U/V: readable over the phone without ambiguity.
TRACKING_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"
TRACKING_PREFIX = "FQ"
TRACKING_RANDOM_LEN = 8  # 29^8 ~ 5e11 numbers: random, so they reveal nothing about volume


def new_tracking_no() -> str:
    return TRACKING_PREFIX + "".join(secrets.choice(TRACKING_ALPHABET) for _ in range(TRACKING_RANDOM_LEN))


def normalise_tracking_no(value: str) -> str:
    return value.strip().upper().replace("-", "").replace(" ", "")


def new_access_code() -> str:
    return f"{secrets.randbelow(10**8):08d}"


KEYED_PREFIX = "k1:"


def hash_access_code(index: BlindIndex, tracking_no: str, code: str) -> str:
    """A keyed hash: an 8-digit code under a plain hash is found by trying all 10^8 in seconds by
    anyone who reads the table or a backup; under the deployment's index key it is not."""
    return KEYED_PREFIX + index.of(f"{tracking_no}:{code.strip()}", purpose="access_code")


def _legacy_hash(tracking_no: str, code: str) -> str:
    """Rows stored before the keyed hash (they keep working until they age out)."""
    return hashlib.sha256(f"{tracking_no}:{code.strip()}".encode()).hexdigest()


def access_code_matches(index: BlindIndex, tracking_no: str, code: str | None, stored_hash: str) -> bool:
    if not code:
        return False
    keyed = stored_hash.startswith(KEYED_PREFIX)
    expected = hash_access_code(index, tracking_no, code) if keyed else _legacy_hash(tracking_no, code)
    return hmac.compare_digest(expected.encode(), stored_hash.encode())


STATUS_LABELS = CITIZEN_STATUS_LABELS  # what the citizen's tracking page and API say

TIMELINE_NOTES = {
    "received": "您的反映已受理，我们会尽快处理。",
    "triaged": "您的反映已完成分类。",
    "assigned": "已分派给民警办理。",
    "merged": "您反映的问题与已受理的同一事项合并办理（并单），办理结果将一并告知。",
    "accepted": "民警已签收，正在办理。",
    "mediating": "已转入调解程序。",
    "visited": "已回访，感谢您的评价。",  # the citizen answered the survey
    "closed": "已结案。",
    # 作废 (test, spam, abusive): neutral, the same for all three; the station's reason stays inside.
    "voided": "经核查，该反映不予受理，办理终止。如有疑问，请联系派出所。",
    "reopened": "您的反映将重新办理。",
    "transferred": "已移交其他派出所办理。",
    "reassigned": "已改由其他民警办理。",
}
# A return visit the station recorded (not the citizen's survey answer): who visited and how.
STAFF_VISIT_NOTES = {
    "phone": "派出所已电话回访。",
    "in_person": "派出所已上门回访。",
}

# Public lifecycle events that change what the citizen sees (status, note). The result summary
# and requests for information come on the internal citizen-updates topic.
CITIZEN_VISIBLE = {
    "accepted": "accepted",
    "mediation_scheduled": "mediating",
    "visited": "visited",
    "closed": "closed",
    "reopened": "reopened",
    "transferred": "transferred",
    "reassigned": "assigned",
}

CHANNELS_NEEDING_TOKEN = frozenset({"hotline", "mailbox", "walk_in", "transfer_110", "transfer_12345", "bureau"})

# 举报 sources are protected: only the station's leadership sees who reported.
LEADERSHIP_ROLES = frozenset({"leader", "instructor"})


def may_see_reporter(role: str, confidential: bool) -> bool:
    return role in LEADERSHIP_ROLES if confidential else role in LEADERSHIP_ROLES | {"officer", "mediator", "bureau"}


# Who opens a confidential tip-off at all (security review finding 12): the station's leadership, bureau
# supervisors and the staff the leader approved as confidential handlers. Everyone else gets "not found".
SEES_CONFIDENTIAL = LEADERSHIP_ROLES | {"bureau"}


def may_open_confidential(role: str, approved_handler: bool) -> bool:
    return role in SEES_CONFIDENTIAL or approved_handler


# Before triage has said who an item names (staff named in a complaint may not open it), the
# station's staff do not open it; bureau supervisors and admins, who are no station's staff, do.
SEES_UNSETTLED = frozenset({"bureau", "admin"})


def may_open_unsettled(role: str) -> bool:
    return role in SEES_UNSETTLED


# Who reads the station's disclosure log (who revealed personal data, who was refused an item).
READS_DISCLOSURES = LEADERSHIP_ROLES | {"bureau"}
# -- what the citizen adds to an open item (issue 13) ---------------------------------------------

# An item the citizen can still add to: not yet resolved. After the result (办结) a follow-up is a new
# item referring to the old one, so a finished case is never silently reopened by an addition.
CLOSED_FOR_ADDITIONS = frozenset({"resolved", "visited", "closed", "merged"})
MAX_ADDITION_CHARS = 2000  # the tracking page's form (an e-mail keeps its 5,000 characters)
MAX_NUMBERS_IN_MAIL = 3  # tracking numbers of one e-mail looked up: each costs a query and a decryption

# Where the citizen sees their addition (the text itself is not repeated on the timeline).
ADDITION_NOTES = {
    "web": "您已补充材料，已转交承办民警。",
    "mailbox": "已收到您回复的邮件，已转交承办民警。",
    "hotline": "您的来电已记入本事项，已转交承办民警。",
}

_TRACKING_NO_IN_TEXT = re.compile(
    rf"(?<![0-9A-Za-z]){TRACKING_PREFIX}[{TRACKING_ALPHABET}]{{{TRACKING_RANDOM_LEN}}}(?![0-9A-Za-z])", re.IGNORECASE
)
# Where a reply's quoted original starts: "> ...", Outlook's and Chinese mail programs' separators,
# "On <date>, <someone> wrote:" and "在 <日期>，<某人> 写道：".
_QUOTE_START = re.compile(
    r"^\s*(>|-{2,}\s*(original message|原始邮件|原始郵件)|(on\s.{0,200}wrote:|在.{0,200}写道[:：]?)\s*$)",
    re.IGNORECASE,
)


def open_for_additions(status: str) -> bool:
    return status not in CLOSED_FOR_ADDITIONS


def info_pending(status: str, requested_at: datetime | None, answered_at: datetime | None) -> bool:
    """An officer asked the citizen for more information and the citizen has not answered yet."""
    return (
        open_for_additions(status) and requested_at is not None and (answered_at is None or answered_at < requested_at)
    )


def tracking_numbers_in(*texts: str) -> list[str]:
    """The tracking numbers a text names (the subject first, then the body), each once, at most
    MAX_NUMBERS_IN_MAIL."""
    found: list[str] = []
    for text in texts:
        for match in _TRACKING_NO_IN_TEXT.finditer(text):
            number = match.group(0).upper()
            if number not in found:
                found.append(number)
            if len(found) == MAX_NUMBERS_IN_MAIL:
                return found
    return found


def reply_text(text: str) -> str:
    """The new part of an e-mail reply: the lines before the quoted original. A reply that is all
    quote (or quotes inline) is kept whole: nothing the citizen wrote is dropped."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _QUOTE_START.match(line):
            head = "\n".join(lines[:i]).strip()
            return head or text.strip()
    return text.strip()
