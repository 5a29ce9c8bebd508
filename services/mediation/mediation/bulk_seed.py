"""`fengqiao seed --cases N --stations M` (DESIGN 4.8): a large synthetic history for benchmarks.

Stations and their staff are made through the directory functions (mediation.directory_admin, as
the demo seed does: the same checks, directory events and audit); the cases go in with COPY, in
batches of BATCH, straight into mediation's tables: the case, its history, its clocks (running for
open cases, done for closed ones), its case-access row (without it row-level security hides the
case from the station's staff) and the citizen's words sealed with the deployment's personal-data
keys, so the case detail opens them as for a real case. Intake, triage and notify are not seeded.

Deterministic: the same `--seed` gives the same cases (except the AES-GCM nonces). The tracking
numbers depend only on the case's index, so a second run (with any seed) adds only the cases that
are missing: it never duplicates, and a run that was stopped can be finished."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

import asyncpg

from fengqiao.directory import DirectoryWriter
from fengqiao.events import Role, StaffUpserted
from fengqiao.outbox import Outbox
from fengqiao.pii import PiiCipher
from mediation import db
from mediation import directory_admin as admin
from mediation.access import words_context
from mediation.calendar import WorkCalendar, accept_deadline, resolve_deadline, visit_deadline

SEEDER = admin.Editor("seed", "admin", None)  # audited as `seed`, like the demo
BATCH = 10_000  # cases per transaction; also the unit of the deterministic random streams
MAX_CASES = 20_000_000
MAX_STATIONS = 999
STATION_PREFIX = "SY"  # 合成 (synthetic): SY001 ... SY200, kept apart from real and demo codes
HISTORY_DAYS = 730  # two years

# Per station: leadership, five officers in two teams, a mediator.
STAFF: list[tuple[str, Role, str | None]] = [
    ("LD", "leader", None),
    ("IN", "instructor", None),
    ("P1", "officer", "community"),
    ("P2", "officer", "community"),
    ("P3", "officer", "community"),
    ("P4", "officer", "patrol"),
    ("P5", "officer", "patrol"),
    ("MD", "mediator", "mediation"),
]
OFFICERS = [s for s, role, _ in STAFF if role == "officer"]
TEAM_OF = {s: team for s, _, team in STAFF}

# (value, weight): a plausible mix, not a measured one.
CHANNELS = [
    ("transfer_12345", 30),
    ("hotline", 25),
    ("web", 20),
    ("walk_in", 12),
    ("transfer_110", 8),
    ("mailbox", 4),
    ("bureau", 1),
]
TYPES = [("complaint", 30), ("help", 25), ("inquiry", 20), ("report", 10), ("suggestion", 8), ("praise", 4)]
TYPES += [("other", 3)]
CATEGORIES = [
    ("neighbor_dispute", 14),
    ("noise", 12),
    ("public_order", 11),
    ("admin_service", 11),
    ("traffic", 10),
    ("fraud", 9),
    ("theft", 8),
    ("safety_hazard", 7),
    ("family_dispute", 5),
    ("labor_dispute", 5),
    ("police_conduct", 3),
    ("other", 5),
]
DISPUTES = frozenset({"neighbor_dispute", "family_dispute", "labor_dispute"})
URGENCIES = [("normal", 80), ("high", 10), ("low", 8), ("urgent", 2)]
OPEN_STATUSES = [("assigned", 20), ("accepted", 25), ("in_progress", 40), ("reopened", 3)]
VISIT_RESULTS = [("satisfied", 85), ("basically_satisfied", 12), ("dissatisfied", 3)]
VOID_GROUNDS = ["test", "spam", "abusive", "other"]

# What citizens write (title, content template, place); {n} keeps every case's text distinct.
TEXTS = [
    ("路灯不亮", "{p}晚上路灯不亮，行人很不安全，希望尽快修好（{n}）", "{p}"),
    ("装修噪音", "楼上邻居每天深夜装修，噪音扰民，多次协商无果（{n}）", "{p}3号楼"),
    ("电信诈骗", "接到冒充客服的电话，被骗转账五千元，请帮忙处理（{n}）", "{p}"),
    ("拖欠工资", "老板拖欠我们十几个工人三个月工资，一直不给（{n}）", "{p}工地"),
    ("居住证", "请问办理居住证需要带什么材料，多久能办好（{n}）", ""),
    ("乱停车", "小区门口经常有人乱停车，堵住消防通道（{n}）", "{p}小区"),
    ("感谢民警", "感谢民警帮我找回走失的老人（{n}）", "{p}"),
    ("电动车被盗", "我的电动车昨晚在楼下被偷了，联系电话13800138000（{n}）", "{p}5栋"),
]
PLACES = ["矿山路", "新华街", "幸福小区", "人民路", "建设街", "文化路", "解放路", "和平里"]


def station_codes(stations: int) -> list[str]:
    return [f"{STATION_PREFIX}{n:03d}" for n in range(1, stations + 1)]


# The tracking numbers: "FQ" + 8 letters of intake's alphabet. Multiplying the index by a number
# prime to 29 is a bijection modulo 29^8, so the numbers are distinct, look random and are the same
# in every run.
_ALPHABET = "23456789ABCDEFGHJKMNPQRSTWXYZ"  # intake.domain.TRACKING_ALPHABET
_SPACE = len(_ALPHABET) ** 8
_STRIDE = 2_654_435_761
_OFFSET = 104_729_731


def tracking_no(index: int) -> str:
    value = (index * _STRIDE + _OFFSET) % _SPACE
    letters = []
    for _ in range(8):
        value, digit = divmod(value, len(_ALPHABET))
        letters.append(_ALPHABET[digit])
    return "FQ" + "".join(reversed(letters))


@dataclass
class SeedReport:
    stations_created: int = 0
    staff_created: int = 0
    cases_created: int = 0
    cases_existing: int = 0
    rows: dict[str, int] = field(default_factory=dict)


# -- stations and staff, through the directory functions --------------------------------------------


async def seed_directory(conn: asyncpg.Connection, stations: int, report: SeedReport) -> list[str]:
    """Create the synthetic stations and their staff that do not exist yet (one transaction, the
    directory events in its outbox). Stations through `directory_admin.create_station`; staff
    through the directory writer (the row and its directory event) with an audit entry, but
    without a sign-in account: `create_staff` hashes a one-time password with argon2 for each
    (about a second apiece on a busy 2-core machine); set a password for whoever must sign in."""
    codes = station_codes(stations)
    async with conn.transaction():
        outbox = Outbox(conn)
        writer = DirectoryWriter(conn, outbox)
        for n, code in enumerate(codes, start=1):
            if await db.directory.station(conn, code) is None:
                body = {"code": code, "name": f"合成第{n:03d}派出所", "jurisdiction": [f"合成{n:03d}街道"]}
                await admin.create_station(conn, outbox, SEEDER, admin.parse(admin.StationIn, body))
                report.stations_created += 1
            for k, (suffix, role, team) in enumerate(STAFF, start=1):
                staff_id = f"{code}-{suffix}"
                if await db.directory.staff_member(conn, staff_id) is not None:
                    continue
                person = StaffUpserted(
                    staff_id=staff_id,
                    station=code,
                    name=f"{code}{suffix}",
                    role=role,
                    team=team,
                    badge_no=f"{code}{k:02d}",
                    active=True,
                    confidential_handler=False,
                )
                await writer.staff(person)
                await db.directory.insert_audit(
                    conn,
                    actor=SEEDER.who,
                    role=SEEDER.role,
                    station=code,
                    action="staff_created",
                    target=staff_id,
                    detail={"role": role, "team": team, "badge_no": person.badge_no},
                )
                report.staff_created += 1
        await outbox.flush()
    return codes


# -- the cases --------------------------------------------------------------------------------------


_CUMULATIVE: dict[int, tuple[list[str], list[int]]] = {}


def _pick(rng: random.Random, table: list[tuple[str, int]]) -> str:
    values, cumulative = _CUMULATIVE.get(id(table)) or _CUMULATIVE.setdefault(
        id(table), ([v for v, _ in table], list(accumulate(w for _, w in table)))
    )
    return rng.choices(values, cum_weights=cumulative)[0]


class MemoCalendar(WorkCalendar):
    """The statutory calendar with each day's answer kept: chinese_calendar checks every date
    against its table's range, which made the deadlines most of a case's cost."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._memo: dict[date, bool] = {}

    def is_workday(self, day: date) -> bool:
        known = self._memo.get(day)
        if known is None:
            known = self._memo[day] = super().is_workday(day)
        return known


@dataclass
class Rows:
    cases: list[tuple[Any, ...]] = field(default_factory=list)
    clocks: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    access: list[tuple[Any, ...]] = field(default_factory=list)
    files: list[tuple[Any, ...]] = field(default_factory=list)


CASE_COLUMNS = (
    "tracking_no",
    "station",
    "status",
    "type",
    "category",
    "urgency",
    "needs_mediation",
    "assignee_id",
    "team",
    "flagged",
    "assignment_reason",
    "submitted_at",
    "assigned_at",
    "accept_due_at",
    "created_at",
    "updated_at",
    "handled_by",
    "visit_result",
    "confidential",
    "channel",
    "void_ground",
)
CLOCK_COLUMNS = (
    "tracking_no",
    "clock",
    "started_at",
    "due_at",
    "original_due_at",
    "remind_at",
    "note",
    "reminded_at",
    "breached_at",
    "supervise_at",
    "supervised_at",
    "done_at",
)
HISTORY_COLUMNS = ("tracking_no", "at", "status", "actor", "reason", "event", "assignee_id")
ACCESS_COLUMNS = ("tracking_no", "station", "settled_at")
FILE_COLUMNS = ("tracking_no", "station", "channel", "pii_kid", "words_enc", "received_at")


class CaseMaker:
    """Makes one case's rows. Open cases are mostly recent (an old open case is an overdue
    straggler); closed ones went assigned -> accepted -> resolved -> visited -> closed."""

    def __init__(self, cipher: PiiCipher, now: datetime) -> None:
        self.cipher = cipher
        self.now = now
        self.cal = MemoCalendar()

    def clock(self, rows: Rows, no: str, name: str, deadline: Any, started: datetime, done: datetime | None) -> None:
        due, remind, now = deadline.due_at, deadline.remind_at, self.now
        end = done or now
        # Steps the timers would have taken are stamped, so a fresh service does not fire for the
        # whole history at once; deadlines still ahead fire as usual.
        breached = due if end > due else None
        supervise = due + timedelta(days=7) if breached else None
        supervised = supervise if supervise and end > supervise else None
        reminded = remind if end > remind else None
        rows.clocks.append(
            (no, name, started, due, due, remind, deadline.note, reminded, breached, supervise, supervised, done)
        )

    def make(self, rows: Rows, rng: random.Random, index: int, station: str) -> None:
        no, now = tracking_no(index), self.now
        age = timedelta(seconds=rng.uniform(0, HISTORY_DAYS * 86400))
        submitted = now - age
        assigned = submitted + timedelta(seconds=rng.uniform(5, 120))
        type_, category = _pick(rng, TYPES), _pick(rng, CATEGORIES)
        urgency, channel = _pick(rng, URGENCIES), _pick(rng, CHANNELS)
        needs_mediation = category in DISPUTES
        holder = f"{station}-{rng.choice(OFFICERS)}"
        if category == "police_conduct":
            holder = f"{station}-LD"
        team = TEAM_OF.get(holder.rsplit("-", 1)[1])
        days = age.total_seconds() / 86400
        open_share = 0.6 if days < 7 else 0.15 if days < 60 else 0.01
        is_open = rng.random() < open_share
        status = _pick(rng, OPEN_STATUSES) if is_open else "closed"
        if is_open and needs_mediation and status == "in_progress":
            status = "mediating"
        if not is_open and days < 30 and rng.random() < 0.1:
            status = "resolved"  # waiting for the return visit
        if not is_open and rng.random() < 0.01:
            status = "voided"

        history: list[tuple[Any, ...]] = []
        reason = f"team:{team or 'leadership'};roster:on_duty;load:{rng.randint(0, 12)}"
        history.append((no, assigned, "assigned", "triage", reason, None, holder))
        accept = accept_deadline(assigned, urgent=urgency == "urgent")
        resolve = resolve_deadline(self.cal, assigned, type_, urgency, needs_mediation)
        span = min(resolve.due_at - assigned, timedelta(days=30))

        def step_after(at: datetime, most: timedelta) -> datetime:
            return min(now, at + timedelta(seconds=rng.uniform(60, max(120.0, most.total_seconds()))))

        accepted = resolved = visited = closed = None
        if status != "assigned" and status != "voided":
            # most accept within the hour; a few late
            accepted = step_after(assigned, timedelta(minutes=50 if rng.random() < 0.95 else 300))
            history.append((no, accepted, "accepted", holder, "已签收", "accepted", holder))
            if status == "mediating":
                at = step_after(accepted, timedelta(days=2))
                history.append((no, at, "mediating", holder, "转入调解", "mediation_scheduled", holder))
        if status in ("resolved", "closed") or status == "reopened":
            assert accepted is not None
            resolved = step_after(accepted, span * (0.9 if rng.random() < 0.95 else 1.3))
            history.append((no, resolved, "resolved", holder, "已办结，已告知群众处理结果。", "resolved", holder))
        visit_result = None
        if status in ("closed", "reopened") and resolved is not None:
            visited = step_after(resolved, timedelta(hours=20))
            visit_result = "dissatisfied" if status == "reopened" else _pick(rng, VISIT_RESULTS)
            history.append((no, visited, "visited", holder, f"电话回访；群众评价：{visit_result}", "visited", holder))
        if status == "closed" and visited is not None:
            closed = step_after(visited, timedelta(hours=6))
            history.append((no, closed, "closed", holder, "结案", "closed", holder))
        if status == "reopened" and visited is not None:
            history.append((no, visited, "reopened", holder, "群众不满意，重新办理", "reopened", holder))
        void_ground = None
        if status == "voided":
            closed = step_after(assigned, timedelta(hours=4))
            void_ground = rng.choice(VOID_GROUNDS)
            leader = f"{station}-LD"
            history.append((no, closed, "voided", leader, f"作废：{void_ground}", "closed", holder))

        # clocks: accept and resolve from the assignment; visit once resolved
        self.clock(rows, no, "accept", accept, assigned, accepted or closed)
        if status == "reopened" and visited is not None:
            again = resolve_deadline(self.cal, visited, type_, urgency, needs_mediation)
            self.clock(rows, no, "resolve", again, visited, None)
        else:
            self.clock(rows, no, "resolve", resolve, assigned, resolved or closed)
        if resolved is not None:
            self.clock(rows, no, "visit", visit_deadline(self.cal, resolved), resolved, visited or closed)

        rows.history.extend(history)
        updated = max(r[1] for r in history)
        rows.cases.append(
            (
                no,
                station,
                status,
                type_,
                category,
                urgency,
                needs_mediation,
                holder,
                team,
                False,
                reason,
                submitted,
                assigned,
                accept.due_at,
                assigned,
                updated,
                holder if resolved else None,
                visit_result,
                False,
                channel,
                void_ground,
            )
        )
        rows.access.append((no, station, assigned))
        title, content, place = TEXTS[index % len(TEXTS)]
        where = PLACES[rng.randrange(len(PLACES))]
        words = {"title": title, "content": content.format(p=where, n=index), "address": place.format(p=where) or None}
        sealed = self.cipher.seal(
            json.dumps(words, ensure_ascii=False, separators=(",", ":")).encode(), context=words_context(no)
        )
        rows.files.append((no, station, channel, sealed.kid, sealed.blob, submitted))


def batches(cases: int) -> Iterator[tuple[int, range]]:
    for number, start in enumerate(range(0, cases, BATCH)):
        yield number, range(start, min(cases, start + BATCH))


async def seed_cases(
    conn: asyncpg.Connection,
    codes: list[str],
    cases: int,
    *,
    seed: int,
    cipher: PiiCipher,
    report: SeedReport,
    now: datetime | None = None,
    progress: Callable[[int], object] | None = None,
) -> None:
    """COPY the cases that do not exist yet, a batch per transaction. Case `i` belongs to station
    `codes[i % len(codes)]`; its rows come from the batch's own random stream."""
    maker = CaseMaker(cipher, now or datetime.now(UTC))
    schema = await conn.fetchval("SELECT current_schema()")
    for number, indexes in batches(cases):
        numbers = [tracking_no(i) for i in indexes]
        existing = set(
            await conn.fetchval(
                "SELECT coalesce(array_agg(tracking_no), '{}') FROM cases WHERE tracking_no = ANY($1::text[])", numbers
            )
        )
        report.cases_existing += len(existing)
        if len(existing) < len(numbers):
            rng = random.Random(f"{seed}:{number}")
            rows = Rows()
            for i, no in zip(indexes, numbers, strict=True):
                if no in existing:
                    maker.make(Rows(), rng, i, codes[i % len(codes)])  # keeps the stream the same
                else:
                    maker.make(rows, rng, i, codes[i % len(codes)])
            async with conn.transaction():
                for table, columns, records in (
                    ("cases", CASE_COLUMNS, rows.cases),
                    ("case_access", ACCESS_COLUMNS, rows.access),
                    ("case_files", FILE_COLUMNS, rows.files),
                    ("case_clocks", CLOCK_COLUMNS, rows.clocks),
                    ("case_history", HISTORY_COLUMNS, rows.history),
                ):
                    await conn.copy_records_to_table(table, records=records, columns=columns, schema_name=schema)
                    report.rows[table] = report.rows.get(table, 0) + len(records)
            report.cases_created += len(rows.cases)
        if progress is not None:
            progress(len(numbers))


async def run_seed(
    dsn: str,
    *,
    cases: int,
    stations: int,
    seed: int,
    cipher: PiiCipher,
    schema: str = "mediation",
    now: datetime | None = None,
    progress: Callable[[int], object] | None = None,
) -> SeedReport:
    """The whole seed against `dsn` (mediation's tables in `schema`); ANALYZE afterwards so the
    planner knows the new sizes."""
    report = SeedReport()
    conn = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:
        codes = await seed_directory(conn, stations, report)
        await seed_cases(conn, codes, cases, seed=seed, cipher=cipher, report=report, now=now, progress=progress)
        if report.cases_created:
            await conn.execute("ANALYZE cases, case_clocks, case_history, case_access, case_files")
    finally:
        await conn.close()
    return report
