"""Assignment: who handles an item, and why. Pure.

Rules, in order:
1. Conflict of interest: staff named in the text (name or badge number, matched against the
   station's directory) never get a complaint or a police-conduct item.
2. `police_conduct` goes to the instructor, else the leader (whoever is not named); if all of the
   station's leadership is named, it is flagged for the bureau.
3. Confidential tip-offs (举报人保密) go only to leader-approved handlers (and leadership).
4. Urgent: whoever is on duty now (any team, least open work), and the leader is told.
4a. Low confidence in the type or category (triage/review.py): the duty leader's review queue,
   flagged `review:low_confidence` (请核对分类), never silently to a team.
5. Otherwise the category's team under the station's rules (category -> team), on today's duty
   roster, least open work; then any officer on duty.
6. Nobody on duty: the leader's queue, flagged and the leader told; never dropped.
Every assignment says which rule chose it, the load and the roster."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import time

from triage.review import REVIEW_REASON

LEADERSHIP = ("instructor", "leader")
HANDLERS = ("officer", "mediator")


@dataclass(frozen=True)
class Candidate:
    staff_id: str
    role: str
    team: str | None
    open_items: int
    on_duty: bool
    name: str = ""
    badge_no: str | None = None
    confidential_handler: bool = False


@dataclass(frozen=True)
class Item:
    type: str
    category: str
    urgency: str
    text: str = ""
    confidential: bool = False
    low_confidence: tuple[str, ...] = ()  # heads below their review threshold (triage/review.py)


@dataclass(frozen=True)
class Assignment:
    assignee_id: str | None
    assignee_role: str | None
    team: str | None
    reason: str
    flagged: bool = False
    notify_leader: bool = False
    # Staff named in a complaint or police-conduct item: kept out of the case everywhere, not only
    # out of the assignment (they travel on the internal case-access topic, never the public one).
    excluded: frozenset[str] = frozenset()


def on_shift(now: time, starts: time, ends: time) -> bool:
    if starts <= ends:
        return starts <= now < ends
    return now >= starts or now < ends  # overnight shift


def named_in(text: str, candidates: list[Candidate]) -> set[str]:
    """Staff whose full name (two characters or more) or badge number appears in the text."""
    found = set()
    for c in candidates:
        if (len(c.name) >= 2 and c.name in text) or (c.badge_no and len(c.badge_no) >= 4 and c.badge_no in text):
            found.add(c.staff_id)
    return found


def excluded_staff(item: Item, candidates: list[Candidate]) -> frozenset[str]:
    """Who may not handle, nor open, the item: staff named in a complaint or a police-conduct item."""
    if not item.text or not (item.category == "police_conduct" or item.type == "complaint"):
        return frozenset()
    return frozenset(named_in(item.text, candidates))


def _least_loaded(pool: list[Candidate]) -> Candidate:
    return min(pool, key=lambda x: (x.open_items, x.staff_id))


def _why(rule: str, pick: Candidate, extra: str = "") -> str:
    roster = "on_duty" if pick.on_duty else "off_duty"
    return f"rule:{rule};roster:{roster};load:{pick.open_items}" + (f";{extra}" if extra else "")


def choose_assignee(item: Item, candidates: list[Candidate], team_for_category: dict[str, str]) -> Assignment:
    chosen = _choose(item, candidates, team_for_category)
    excluded = excluded_staff(item, candidates)
    return replace(chosen, excluded=excluded) if excluded else chosen


def _choose(item: Item, candidates: list[Candidate], team_for_category: dict[str, str]) -> Assignment:
    named = named_in(item.text, candidates) if item.text else set()
    conflict = item.category == "police_conduct" or item.type == "complaint"
    pool = [x for x in candidates if not (conflict and x.staff_id in named)]
    excluded = f"excluded_named:{len(named & {x.staff_id for x in candidates})}" if conflict and named else ""
    leaders = sorted(
        (x for x in pool if x.role in LEADERSHIP), key=lambda x: (x.role != "instructor", x.open_items, x.staff_id)
    )
    station_leader = next((x for x in candidates if x.role == "leader"), None)

    if item.category == "police_conduct":
        return _police_conduct(leaders, named, excluded)

    if item.confidential:
        pool = [x for x in pool if x.confidential_handler or x.role in LEADERSHIP]

    on_duty = [x for x in pool if x.on_duty and x.role in HANDLERS]
    if item.urgency == "urgent" and on_duty:
        pick = _least_loaded([x for x in on_duty if x.role == "officer"] or on_duty)
        return Assignment(
            pick.staff_id, pick.role, pick.team, _why("urgent_on_duty_now", pick, excluded), notify_leader=True
        )

    if item.low_confidence and (review := _review_queue(item, leaders)) is not None:
        return review

    team = team_for_category.get(item.category)
    if team:
        members = [x for x in on_duty if x.team == team]
        if members:
            pick = _least_loaded(members)
            return Assignment(pick.staff_id, pick.role, pick.team, _why(f"team:{team}", pick, excluded))
    officers = [x for x in on_duty if x.role == "officer"] or on_duty
    if officers:
        pick = _least_loaded(officers)
        rule = f"team:{team}_nobody_on_duty;any_officer" if team else "default_any_officer"
        return Assignment(pick.staff_id, pick.role, pick.team, _why(rule, pick, excluded))
    return _leader_queue(item, leaders, station_leader, named)


def _police_conduct(leaders: list[Candidate], named: set[str], excluded: str) -> Assignment:
    """Rule 2: the instructor, else the leader; with all leadership named, the bureau reviews it."""
    if leaders:
        pick = leaders[0]
        return Assignment(pick.staff_id, pick.role, None, _why("police_conduct_to_leadership", pick, excluded))
    return Assignment(
        None,
        None,
        None,
        "rule:police_conduct_all_leadership_named;bureau_review" if named else "rule:police_conduct_no_leadership",
        flagged=True,
        notify_leader=not named,
    )


def _review_queue(item: Item, leaders: list[Candidate]) -> Assignment | None:
    """Rule 4a: the leadership on duty (the leader before the instructor), else any of them, checks
    the labels (请核对分类) and hands the item on; None without leadership (the usual rules apply)."""
    on_duty = [x for x in leaders if x.on_duty]
    pick = min(on_duty or leaders, key=lambda x: (x.role != "leader", x.open_items, x.staff_id), default=None)
    if pick is None:
        return None
    roster = "on_duty" if pick.on_duty else "off_duty"
    reason = f"{REVIEW_REASON};roster:{roster};load:{pick.open_items};low:{','.join(item.low_confidence)}"
    return Assignment(pick.staff_id, pick.role, None, reason, flagged=True)


def _leader_queue(
    item: Item, leaders: list[Candidate], station_leader: Candidate | None, named: set[str]
) -> Assignment:
    """Rule 6: nobody on duty, so the leader's queue, flagged and the leader told; never dropped."""
    queue = next((x for x in leaders if x.role == "leader"), None) or (leaders[0] if leaders else None)
    if queue is None and station_leader is not None and station_leader.staff_id not in named:
        queue = station_leader
    if queue is not None:
        return Assignment(
            queue.staff_id,
            queue.role,
            None,
            "rule:no_one_on_duty;leader_queue" + (";confidential" if item.confidential else ""),
            flagged=True,
            notify_leader=True,
        )
    return Assignment(None, None, None, "rule:no_staff", flagged=True, notify_leader=True)
