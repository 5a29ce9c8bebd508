"""Notify's delivery queue against real parts: PostgreSQL, a real local HTTP server as the SMS
gateway and as a bureau system's webhook receiver, a real SMTP server (aiosmtpd). Time is the
worker's clock argument, so backoff, quiet hours and rate limits are tested without waiting."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import secrets
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from standardwebhooks import Webhook

from fengqiao import links
from fengqiao.events import (
    CaseAssigned,
    CaseTriaged,
    CitizenMessageRequested,
    CloudEvent,
    EventTypes,
    SurveyAnswered,
    new_event,
)
from fengqiao.metrics import Metrics
from fengqiao.outbox import unit_of_work
from fengqiao.pii import BlindIndex, PiiCipher, new_index_key_setting, new_key_setting
from notify import db
from notify.addresses import WebhookPolicy
from notify.app import MIGRATIONS, channel_worker, rules_from, senders_from
from notify.channels import new_webhook_secret
from notify.config import NotifySettings
from notify.deliveries import DeliveryQueue
from notify.handlers import Deps, make_handlers
from notify.metrics import NotifyMetrics
from notify.policy import STATION_TZ, Backoff
from notify.templates import Templates
from tests.integration.helpers import service_schema
from tests.servers import HttpRecorder, SmtpRecorder

LINK_KEY = b"k" * 32
PHONE = "+8613800138000"


def local(*args) -> datetime:
    return datetime(*args, tzinfo=STATION_TZ)


# A day after today's real date, so rows stamped by the database's now() are already due.
DAY = (datetime.now(STATION_TZ) + timedelta(days=1)).date()
NOON = local(DAY.year, DAY.month, DAY.day, 12, 0)


@pytest.fixture
async def pool(infra):
    async with service_schema(infra.dsn, "ntf", MIGRATIONS) as pool:
        await pool.execute(
            "INSERT INTO staff (staff_id, station, name, role) VALUES "
            "('KZ01-LD', 'KZ01', '李明', 'leader'), "
            "('KZ01-ZD', 'KZ01', '王刚', 'instructor'), ('KZ01-P1', 'KZ01', '张伟', 'officer')"
        )
        yield pool


@pytest.fixture
def gateway():
    g = HttpRecorder()
    yield g
    g.close()


@pytest.fixture
def smtp():
    s = SmtpRecorder()
    yield s
    s.close()


class Notify:
    """Notify's handlers and queue wired as the app wires them, with settings chosen per test."""

    def __init__(self, pool, **env) -> None:
        env = {"QUIET_HOURS": "off", "RECIPIENT_RATE_LIMIT": "", "DELIVERY_RETRY_BASE_S": "60", **env}
        ns = NotifySettings(**env)
        self.pool = pool
        self.metrics = Metrics("notify")
        self.queue = DeliveryQueue(
            cipher=PiiCipher.from_setting(new_key_setting("t")),
            index=BlindIndex.from_setting(new_index_key_setting()),
            rules=rules_from(ns),
            templates=Templates(),
            senders=senders_from(ns),
        )
        self.queue.rules = replace(self.queue.rules, lease=timedelta(seconds=20))
        self.handlers = make_handlers(
            Deps(
                templates=Templates(),
                queue=self.queue,
                link_key=LINK_KEY,
                public_base_url="https://fq.example",
                survey_link_valid_s=86400,
            )
        )(self.metrics)

    async def handle(self, event) -> None:
        async with unit_of_work(self.pool) as (conn, outbox):
            await self.handlers[event.type](event, conn, outbox)

    async def run(self, channel: str, now: datetime) -> int:
        return await self.queue.process_due(self.pool, channel, now)

    def count(self, channel: str, outcome: str) -> float:
        return (
            self.metrics.registry.get_sample_value(
                "fengqiao_notifications_total", {"channel": channel, "outcome": outcome}
            )
            or 0.0
        )

    async def rows(self):
        return await self.pool.fetch("SELECT * FROM deliveries ORDER BY id")


def message(template="acknowledgement", phone=PHONE, email=None, no=None, **params):
    no = no or "FQ" + secrets.token_hex(4).upper()
    return new_event(
        EventTypes.CITIZEN_MESSAGE_REQUESTED,
        CitizenMessageRequested(
            tracking_no=no,
            station="KZ01",
            template=template,
            phone=phone,
            email=email,
            params=params or {"access_code": "482913"},
        ),
        source="/fengqiao/intake",
        subject=no,
        stationid="KZ01",
    )


async def test_a_citizen_sms_goes_once_through_the_gateway_however_often_the_event_is_redelivered(pool, gateway):
    n = Notify(
        pool,
        SMS_GATEWAY_URL=gateway.url + "/send",
        SMS_GATEWAY_AUTH="Bearer gw-secret",
        SMS_GATEWAY_OK_FIELD="code",
        SMS_GATEWAY_OK_VALUE="0",
    )
    event = message()
    for _ in range(3):  # redelivered before and after it was sent
        await n.handle(event)
        await n.run("sms", NOON)
    assert len(gateway.received) == 1
    request = gateway.received[0]
    body = request.json()
    (row,) = await n.rows()
    assert request.path == "/send" and request.headers["authorization"] == "Bearer gw-secret"
    assert body["to"] == PHONE and body["ref"] == f"fq-{row['id']}"
    assert (
        body["text"].startswith("【矿区派出所】")
        and event.data["tracking_no"] in body["text"]
        and "482913" in body["text"]
    )
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] == NOON
    # Nothing personal in the clear at rest: no phone, no access code in any column.
    flat = json.dumps({k: str(v) for k, v in dict(row).items() if k != "payload_enc"}, ensure_ascii=False)
    assert "13800138000" not in flat and "482913" not in flat and b"13800138000" not in row["payload_enc"]
    assert n.count("sms", "queued") == 1 and n.count("sms", "sent") == 1
    assert n.metrics.registry.get_sample_value("fengqiao_notification_delivery_seconds_count", {"channel": "sms"}) == 1


async def test_an_email_arrives_with_a_readable_chinese_subject_and_body_and_a_working_survey_link(pool, smtp):
    n = Notify(
        pool,
        NOTIFY_SMTP_HOST="127.0.0.1",
        NOTIFY_SMTP_PORT=str(smtp.port),
        NOTIFY_SMTP_SECURITY="none",
        NOTIFY_MAIL_FROM="noreply@fq.example",
    )
    event = message("result", phone=None, email="Citizen@Example.com", text="已调解 <b>双方和解</b> & 握手")
    await n.handle(event)
    await n.run("email", NOON)
    ((rcpts, mail),) = smtp.wait_for(1)
    no = event.data["tracking_no"]
    assert rcpts == ["Citizen@Example.com"]
    assert mail["subject"] == f"您反映的问题已办结（编号 {no}），请您评价"
    assert b"Subject: =?utf-8?" in mail.as_bytes(policy=mail.policy.clone(utf8=False))  # RFC 2047 on the wire
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "已调解 <b>双方和解</b> & 握手" in text and "&lt;b&gt;双方和解&lt;/b&gt; &amp; 握手" in html
    assert mail.get_body(("plain",)).get_content_charset() == "utf-8"
    url = next(w for w in text.split() if "/survey?t=" in w)
    assert url.startswith("https://fq.example/survey?t=")
    assert links.verify(LINK_KEY, "survey", url.split("t=", 1)[1]) == no  # intake's page accepts it
    assert mail["message-id"].startswith("<fq-")


async def test_failures_are_retried_with_growing_delays_on_the_clock(pool, gateway):
    gateway.script = [503, 503]
    n = Notify(pool, SMS_GATEWAY_URL=gateway.url, DELIVERY_RETRY_BASE_S="60")
    n.queue.rules = replace(n.queue.rules, backoff=Backoff(60, 3600, 8, jitter=0))
    await n.handle(message())
    await n.run("sms", NOON)
    (row,) = await n.rows()
    assert (
        row["status"] == "pending" and row["attempts"] == 1 and row["next_attempt_at"] == NOON + timedelta(seconds=60)
    )
    assert "503" in row["last_error"]
    assert await n.run("sms", NOON + timedelta(seconds=59)) == 0 and len(gateway.received) == 1
    await n.run("sms", NOON + timedelta(seconds=60))
    (row,) = await n.rows()
    assert row["attempts"] == 2 and row["next_attempt_at"] == NOON + timedelta(seconds=60 + 120)
    await n.run("sms", NOON + timedelta(seconds=180))
    (row,) = await n.rows()
    assert row["status"] == "sent" and len(gateway.received) == 3
    assert len({r.json()["ref"] for r in gateway.received}) == 1  # the same message each time
    assert n.count("sms", "retried") == 2 and n.count("sms", "sent") == 1


async def test_after_the_last_attempt_a_delivery_fails_is_counted_told_to_the_leaders_and_resent_by_hand(pool, gateway):
    gateway.default = 503
    n = Notify(
        pool,
        SMS_GATEWAY_URL=gateway.url,
        DELIVERY_MAX_ATTEMPTS="3",
        DELIVERY_RETRY_BASE_S="10",
        DELIVERY_RETRY_CAP_S="15",
    )
    event = message()
    await n.handle(event)
    t = NOON
    for _ in range(3):
        await n.run("sms", t)
        t += timedelta(minutes=1)
    (row,) = await n.rows()
    assert row["status"] == "failed" and row["attempts"] == 3 and len(gateway.received) == 3
    assert n.count("sms", "failed") == 1 and n.count("sms", "retried") == 2
    told = await pool.fetch(
        "SELECT recipient_id, title, body FROM console_notifications WHERE kind = 'delivery_failed'"
    )
    assert {r["recipient_id"] for r in told} == {"KZ01-LD", "KZ01-ZD"}  # the leadership, not the officer
    assert event.data["tracking_no"] in told[0]["title"] and "3次" in told[0]["body"]
    assert "13800138000" not in told[0]["body"]
    async with pool.acquire() as conn:
        await n.queue.refresh_gauges(conn)
    assert n.metrics.registry.get_sample_value("fengqiao_notifications_failed_unresent", {"channel": "sms"}) == 1
    assert await n.run("sms", t + timedelta(days=1)) == 0  # failed stays failed

    gateway.default = 200
    async with pool.acquire() as conn:
        assert await db.resend(conn, row["id"], "KZ01-LD")
        assert not await db.resend(conn, row["id"], "KZ01-LD")  # only failed ones
    await n.run("sms", t + timedelta(days=1))
    (row,) = await n.rows()
    assert row["status"] == "sent" and row["resends"] == 1 and row["resent_by"] == "KZ01-LD"


async def test_a_refusal_fails_at_once_and_an_unconfigured_channel_fails_visibly(pool, gateway):
    gateway.script = [400]
    n = Notify(pool, SMS_GATEWAY_URL=gateway.url)
    await n.handle(message())
    for k in range(3):  # no SMTP configured
        await n.handle(message(phone=None, email=f"a{k}@example.com"))
    await n.run("sms", NOON)
    await n.run("email", NOON)
    rows = await n.rows()
    assert [(r["channel"], r["status"], r["attempts"]) for r in rows] == [("sms", "failed", 1)] + [
        ("email", "failed", 1)
    ] * 3
    assert "HTTP 400" in rows[0]["last_error"] and rows[1]["last_error"] == "email channel not configured"
    kinds = await pool.fetch("SELECT kind, count(*) AS n FROM console_notifications GROUP BY kind ORDER BY kind")
    # each leader: one notice for the refused SMS, and one for the unconfigured channel, not three
    assert [(r["kind"], r["n"]) for r in kinds] == [("channel_not_configured", 2), ("delivery_failed", 2)]


def found_urgent(item) -> CloudEvent:
    """Triage's verdict on a citizen message's item: urgent."""
    no = item.data["tracking_no"]
    return new_event(
        EventTypes.CASE_TRIAGED,
        CaseTriaged(
            tracking_no=no,
            station="KZ01",
            type="help",
            category="public_order",
            urgency="urgent",
            needs_mediation=False,
            confidence=0.9,
            model_version="rules",
            reasons=[],
            submitted_at=NOON,
        ),
        source="/fengqiao/triage",
        subject=no,
        stationid="KZ01",
    )


async def test_quiet_hours_hold_citizen_sms_until_morning_unless_the_matter_is_urgent(pool, gateway, smtp):
    n = Notify(
        pool,
        SMS_GATEWAY_URL=gateway.url,
        QUIET_HOURS="21:00-08:00",
        NOTIFY_SMTP_HOST="127.0.0.1",
        NOTIFY_SMTP_PORT=str(smtp.port),
        NOTIFY_SMTP_SECURITY="none",
    )
    night = NOON.replace(hour=22, minute=30)
    morning = (night + timedelta(days=1)).replace(hour=8, minute=0)
    normal, urgent, later_urgent = message(), message(), message()
    mail = message(phone=None, email="b@example.com")
    for e in (normal, urgent, later_urgent, mail):
        await n.handle(e)
    await n.handle(found_urgent(urgent))
    await n.run("sms", night)
    await n.run("email", night)
    sent_to = lambda: [
        no
        for no in (normal, urgent, later_urgent)
        if any(no.data["tracking_no"] in r.json()["text"] for r in gateway.received)
    ]
    assert sent_to() == [urgent] and len(smtp.messages) == 1  # e-mail is not held
    held = {r["tracking_no"]: r for r in await n.rows()}
    assert held[normal.data["tracking_no"]]["status"] == "deferred"
    assert held[normal.data["tracking_no"]]["held_reason"] == "quiet_hours"
    assert held[normal.data["tracking_no"]]["next_attempt_at"] == morning
    # Triage finds the third one urgent after it was held: it goes at once.
    await n.handle(found_urgent(later_urgent))
    await n.run("sms", night + timedelta(minutes=1))
    assert sent_to() == [urgent, later_urgent]
    assert await n.run("sms", morning - timedelta(minutes=1)) == 0
    await n.run("sms", morning)
    assert sent_to() == [normal, urgent, later_urgent]
    assert n.count("sms", "deferred") == 2


async def test_a_burst_to_one_citizen_is_spread_out_by_the_per_recipient_rate_limit(pool, gateway):
    n = Notify(pool, SMS_GATEWAY_URL=gateway.url, RECIPIENT_RATE_LIMIT="2 per 10 minutes")
    burst = [message() for _ in range(4)]
    other = message(phone="+8613900139000")
    for e in [*burst, other]:
        await n.handle(e)
    await n.run("sms", NOON)
    assert sorted(r.json()["to"] for r in gateway.received) == [PHONE, PHONE, "+8613900139000"]
    held = [r for r in await n.rows() if r["status"] == "deferred"]
    assert len(held) == 2 and all(r["held_reason"] == "rate_limited" for r in held)
    assert {r["next_attempt_at"] for r in held} == {NOON + timedelta(minutes=10)}
    await n.run("sms", NOON + timedelta(minutes=10))
    assert len(gateway.received) == 5


async def test_a_dead_gateway_never_holds_up_another_channel(pool, gateway, smtp):
    gateway.hang = True  # accepts the connection, never answers
    n = Notify(
        pool,
        SMS_GATEWAY_URL=gateway.url,
        SMS_GATEWAY_TIMEOUT_S="30",
        NOTIFY_SMTP_HOST="127.0.0.1",
        NOTIFY_SMTP_PORT=str(smtp.port),
        NOTIFY_SMTP_SECURITY="none",
    )
    await n.handle(message())
    rt = SimpleNamespace(pool=pool)
    workers = [asyncio.create_task(channel_worker(n.queue, c)(rt)) for c in ("sms", "email")]
    try:
        await asyncio.sleep(0.5)  # the SMS worker is now stuck on the gateway
        await n.handle(message(phone=None, email="c@example.com"))
        await asyncio.to_thread(smtp.wait_for, 1, 5.0)
        # The relay has the mail; the worker records "sent" a moment later (longer on a loaded machine).
        for _ in range(100):
            rows = {r["channel"]: r["status"] for r in await n.rows()}
            if rows["email"] == "sent":
                break
            await asyncio.sleep(0.1)
        assert rows == {"sms": "sending", "email": "sent"}
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def test_webhooks_carry_signed_cloudevents_per_type_and_station_and_retry(pool, gateway):
    n = Notify(pool, WEBHOOK_ALLOWED_HOSTS="127.0.0.1")  # the receivers are local test servers
    kz01 = gateway
    other = HttpRecorder()
    try:
        subs = {}
        for name, url, types, stations in (
            ("kz01", kz01.url + "/hook", ["fengqiao.case.assigned"], ["KZ01"]),
            ("kz02", other.url, ["fengqiao.case.*"], ["KZ02"]),
        ):
            secret = new_webhook_secret()
            sid = f"wh_{name}"
            sealed = n.queue.cipher.seal(secret.encode(), context=f"webhook/{sid}/secret")
            await pool.execute(
                "INSERT INTO webhook_subscriptions (id, name, url, event_types, stations, secret_kid, "
                "secret_enc, owner_id) VALUES ($1, $2, $3, $4, $5, $6, $7, 'tok')",
                sid,
                name,
                url,
                types,
                stations,
                sealed.kid,
                sealed.blob,
            )
            subs[name] = secret
        kz01.script = [500]
        assigned = new_event(
            EventTypes.CASE_ASSIGNED,
            CaseAssigned(
                tracking_no="FQWEBHOOK1",
                station="KZ01",
                assignee_id="KZ01-P1",
                assignee_role="officer",
                type="help",
                category="noise",
                urgency="normal",
                needs_mediation=False,
                reason="on duty",
                submitted_at=NOON,
            ),
            source="/fengqiao/triage",
            subject="FQWEBHOOK1",
            stationid="KZ01",
        )
        await n.handle(assigned)
        await n.handle(assigned)  # redelivered
        await n.run("webhook", NOON)
        await n.run("webhook", NOON + timedelta(minutes=5))
        assert len(kz01.received) == 2 and other.received == []
        first, second = kz01.received
        assert first.headers["webhook-id"] == second.headers["webhook-id"] == assigned.id
        assert second.headers["content-type"].startswith("application/cloudevents+json")
        verified = Webhook(subs["kz01"]).verify(second.body, second.headers)  # signature and timestamp (replay)
        assert verified["id"] == assigned.id and verified["type"] == "fengqiao.case.assigned"
        assert verified["data"]["tracking_no"] == "FQWEBHOOK1"
        with pytest.raises(Exception):
            Webhook(subs["kz02"]).verify(second.body, second.headers)  # another subscriber's secret
        tampered = dict(second.headers, **{"webhook-timestamp": str(int(second.headers["webhook-timestamp"]) - 3600)})
        with pytest.raises(Exception):
            Webhook(subs["kz01"]).verify(second.body, tampered)  # an old timestamp: replay refused
        # The officer was told in the console as well (the same event, two kinds of recipient).
        assert await pool.fetchval("SELECT count(*) FROM console_notifications WHERE kind = 'assigned'") == 1
        # A removed subscription gets nothing more.
        await pool.execute("UPDATE webhook_subscriptions SET active = false WHERE id = 'wh_kz01'")
        other_event = new_event(
            EventTypes.CASE_ASSIGNED,
            CaseAssigned(**{**assigned.data, "tracking_no": "FQWEBHOOK2"}),
            source="/fengqiao/triage",
            subject="FQWEBHOOK2",
            stationid="KZ01",
        )
        await n.handle(other_event)
        assert await n.run("webhook", NOON + timedelta(minutes=10)) == 0 and len(kz01.received) == 2
    finally:
        other.close()


async def test_survey_answers_are_counted_and_a_dissatisfied_one_reaches_the_leadership(pool):
    n = Notify(pool)
    for no, result, reason in (
        ("FQS1", "satisfied", None),
        ("FQS2", "basically_satisfied", None),
        ("FQS3", "dissatisfied", "噪声依旧"),
    ):
        await n.handle(
            new_event(
                EventTypes.SURVEY_ANSWERED,
                SurveyAnswered(tracking_no=no, station="KZ01", result=result, reason=reason, answered_at=NOON),
                source="/fengqiao/intake",
                subject=no,
                stationid="KZ01",
            )
        )
    sample = lambda r: n.metrics.registry.get_sample_value(
        "fengqiao_survey_responses_total", {"station": "KZ01", "result": r}
    )
    assert (sample("satisfied"), sample("basically_satisfied"), sample("dissatisfied")) == (1, 1, 1)
    rows = await pool.fetch(
        "SELECT recipient_id, tracking_no, body FROM console_notifications WHERE kind = 'dissatisfied'"
    )
    assert {r["recipient_id"] for r in rows} == {"KZ01-LD", "KZ01-ZD"} and {r["tracking_no"] for r in rows} == {"FQS3"}
    assert "噪声依旧" in rows[0]["body"]
    NotifyMetrics.of(n.metrics)  # the same registry carries notify's own series


async def test_rows_from_before_the_queue_are_sealed_at_start_and_then_sent(pool, gateway):
    n = Notify(pool, SMS_GATEWAY_URL=gateway.url)
    await pool.execute(
        "INSERT INTO deliveries (event_source, event_id, recipient, channel, template, tracking_no, "
        "station, body) VALUES ('/fengqiao/intake', 'old-1', $1, 'sms', 'acknowledgement', 'FQOLD1', "
        "'KZ01', '【矿区派出所】您的反映已受理，编号 FQOLD1')",
        PHONE,
    )
    assert await n.run("sms", NOON) == 0  # not sent in the clear state
    assert await n.queue.seal_legacy(pool) == 1
    (row,) = await n.rows()
    assert row["recipient"] is None and row["body"] is None and row["recipient_key"]
    await n.run("sms", NOON)
    (sms,) = gateway.received
    assert sms.json()["to"] == PHONE and "FQOLD1" in sms.json()["text"]


def staff_notice(no: str, command: str, *, to: str | None, before: str | None = "KZ01-P1", at=None, **fields):
    from fengqiao.events import StaffNotice

    return new_event(
        EventTypes.STAFF_NOTICE,
        StaffNotice(
            tracking_no=no,
            station="KZ01",
            command=command,
            status="assigned",
            previous_status="returned" if command == "review_return" else "accepted",
            actor_id="KZ01-LD",
            assignee_id=to,
            previous_assignee_id=before,
            at=at or NOON,
            **fields,
        ),
        source="/fengqiao/mediation",
        subject=no,
        stationid="KZ01",
        time=at,
    )


async def test_the_officer_learns_whether_a_return_was_approved(pool):
    n = Notify(pool)
    await pool.execute(
        "INSERT INTO staff (staff_id, station, name, role) VALUES ('KZ01-P2', 'KZ01', '刘洋', 'officer')"
    )
    await n.handle(staff_notice("FQRET1", "review_return", to="KZ01-P1", reason="先处置"))  # not approved
    await n.handle(staff_notice("FQRET2", "review_return", to="KZ01-P2"))  # approved: a new holder
    rows = await pool.fetch(
        "SELECT recipient_id, kind, tracking_no, title, body, withdrawn_reason FROM console_notifications ORDER BY id"
    )
    assert [(r["recipient_id"], r["kind"], r["tracking_no"]) for r in rows] == [
        ("KZ01-P1", "return_rejected", "FQRET1"),
        ("KZ01-P2", "reassigned", "FQRET2"),
        ("KZ01-P1", "withdrawn", "FQRET2"),
    ]
    assert (
        rows[0]["title"] == "退单未通过：FQRET1"
        and rows[0]["body"] == "矿区派出所：李明不同意退单，说明：先处置。请继续办理。"
    )
    assert rows[1]["body"] == "矿区派出所：李明将该事项改派给您（原承办人：张伟）。请尽快签收。"
    assert rows[2]["body"] == "矿区派出所：该事项退单已同意，已改派给刘洋，无需再办理。"


async def test_a_notice_arriving_after_its_case_was_taken_away_is_withdrawn_and_redelivery_changes_nothing(pool):
    """Topics are not ordered with each other: a reminder (or assignment) of an earlier step that
    arrives after the reassignment is shown withdrawn; redelivered notices add no rows."""
    from fengqiao.events import StaffReminder

    n = Notify(pool)
    reassigned = staff_notice("FQLATE", "reassign", to="KZ01-ZD", at=NOON)
    for _ in range(2):
        await n.handle(reassigned)
    reminder = new_event(
        EventTypes.STAFF_REMINDER,
        StaffReminder(tracking_no="FQLATE", station="KZ01", recipient_id="KZ01-P1", clock="accept", due_at=NOON),
        source="/fengqiao/mediation/clock",
        subject="FQLATE",
        stationid="KZ01",
        time=NOON - timedelta(minutes=5),
    )
    await n.handle(reminder)
    rows = await pool.fetch(
        "SELECT recipient_id, kind, withdrawn_reason FROM console_notifications "
        "WHERE tracking_no = 'FQLATE' ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("KZ01-ZD", "reassigned", None),
        ("KZ01-P1", "withdrawn", None),
        ("KZ01-P1", "reminder", "已改派给王刚"),
    ]
    # Given back later, the officer's new notices are theirs again.
    await n.handle(staff_notice("FQLATE", "reassign", to="KZ01-P1", before="KZ01-ZD", at=NOON + timedelta(hours=1)))
    (back,) = await pool.fetch(
        "SELECT withdrawn_at FROM console_notifications WHERE tracking_no = 'FQLATE' AND kind = 'reassigned' "
        "AND recipient_id = 'KZ01-P1'"
    )
    assert back["withdrawn_at"] is None


async def test_a_merged_or_closed_case_is_withdrawn_from_its_holder_but_not_from_one_who_keeps_it(pool):
    n = Notify(pool)
    await n.handle(staff_notice("FQMRG1", "merge", to="KZ01-P1", merged_into="FQMAIN"))
    await n.handle(staff_notice("FQCLS1", "close", to="KZ01-P1"))
    await n.handle(staff_notice("FQESC1", "escalate", to="KZ01-P1", reason="需协调"))  # still theirs
    rows = await pool.fetch(
        "SELECT recipient_id, kind, tracking_no, body FROM console_notifications ORDER BY tracking_no, recipient_id"
    )
    assert [(r["recipient_id"], r["kind"], r["tracking_no"]) for r in rows] == [
        ("KZ01-P1", "withdrawn", "FQCLS1"),
        ("KZ01-ZD", "manual_escalation", "FQESC1"),  # the leader who escalated it is not told of it
        ("KZ01-P1", "withdrawn", "FQMRG1"),
    ]
    assert rows[0]["body"] == "矿区派出所：该事项已结案，无需再办理。"
    assert rows[1]["body"] == "矿区派出所：李明将该事项上报所领导，理由：需协调。请阅处。"
    assert rows[2]["body"] == "矿区派出所：该事项已并入FQMAIN，无需再办理。"


async def test_urgent_matters_also_page_the_staff_who_left_a_phone_even_at_night(pool, gateway):
    from fengqiao.events import AlertRaised

    n = Notify(pool, SMS_GATEWAY_URL=gateway.url, QUIET_HOURS="21:00-08:00", RECIPIENT_RATE_LIMIT="1 per 10 minutes")
    for staff_id, phone in (("KZ01-LD", "+8613511112222"), ("KZ01-P1", "+8613533334444")):
        sealed = n.queue.cipher.seal(phone.encode(), context=f"staff/{staff_id}/phone")
        await pool.execute(
            "INSERT INTO staff_contacts (staff_id, phone_kid, phone_enc, updated_by) VALUES ($1, $2, $3, 'test')",
            staff_id,
            sealed.kid,
            sealed.blob,
        )

    def assigned(no, urgency):
        return new_event(
            EventTypes.CASE_ASSIGNED,
            CaseAssigned(
                tracking_no=no,
                station="KZ01",
                assignee_id="KZ01-P1",
                assignee_role="officer",
                type="help",
                category="public_order",
                urgency=urgency,
                needs_mediation=False,
                reason="on duty",
                submitted_at=NOON,
                notify_leader=urgency == "urgent",
            ),
            source="/fengqiao/triage",
            subject=no,
            stationid="KZ01",
        )

    await n.handle(assigned("FQURG1", "urgent"))
    await n.handle(assigned("FQURG2", "urgent"))  # a second one within the rate-limit window still pages
    await n.handle(assigned("FQNORM1", "normal"))  # not urgent: console only
    await n.handle(
        new_event(
            EventTypes.ALERT_RAISED,
            AlertRaised(
                alert_id="a1",
                station="KZ01",
                kind="cluster",
                level="red",
                explanation="同一小区1小时内8件相似反映",
                members=["FQURG1"],
                reporters=8,
                window_hours=1,
                raised_at=NOON,
            ),
            source="/fengqiao/triage",
            subject="a1",
            stationid="KZ01",
        )
    )
    night = NOON.replace(hour=23)
    await n.run("sms", night)
    pages = [(r.json()["to"], r.json()["text"]) for r in gateway.received]
    assert sorted(to for to, _ in pages) == sorted(["+8613511112222", "+8613533334444"] * 2 + ["+8613511112222"])
    urgent_to_leader = [t for to, t in pages if to == "+8613511112222" and "FQURG1" in t]
    assert urgent_to_leader == ["【矿区派出所】紧急警情 FQURG1：治安，已分派给张伟，请立即关注。"]
    assert any("红色预警" in t and "同一小区" in t for _, t in pages)
    assert not any("FQNORM1" in t for _, t in pages)


async def subscribe(n: Notify, sub_id: str, url: str) -> None:
    """A subscription row as the API stores it (the API's own check is tested in test_notify_api)."""
    sealed = n.queue.cipher.seal(new_webhook_secret().encode(), context=f"webhook/{sub_id}/secret")
    await n.pool.execute(
        "INSERT INTO webhook_subscriptions (id, name, url, event_types, stations, secret_kid, "
        "secret_enc, owner_id) VALUES ($1, 'x', $2, '{fengqiao.case.*}', '{}', $3, $4, 'tok')",
        sub_id,
        url,
        sealed.kid,
        sealed.blob,
    )


def assigned_event(no: str):
    return new_event(
        EventTypes.CASE_ASSIGNED,
        CaseAssigned(
            tracking_no=no,
            station="KZ01",
            assignee_id="KZ01-P1",
            assignee_role="officer",
            type="help",
            category="noise",
            urgency="normal",
            needs_mediation=False,
            reason="on duty",
            submitted_at=NOON,
        ),
        source="/fengqiao/triage",
        subject=no,
        stationid="KZ01",
    )


async def test_a_webhook_whose_name_now_leads_inside_is_refused_at_send_time_unless_allowed(pool, gateway):
    """Accepted once (the name was public then), the name now resolves to loopback: nothing is sent,
    and the error says a reason code, not what answered on which port."""
    n = Notify(pool)
    port = gateway.url.rsplit(":", 1)[1]
    await subscribe(n, "wh_rebound", f"http://localhost:{port}/hook")
    await n.handle(assigned_event("FQREBIND1"))
    await n.run("webhook", NOON)
    (row,) = [r for r in await n.rows() if r["channel"] == "webhook"]
    assert gateway.received == [] and row["status"] == "failed" and row["attempts"] == 1
    assert row["last_error"] == "webhook_address_not_allowed"

    # The deployment names the host: the same delivery, resent by hand, goes.
    n.queue.senders["webhook"].policy = WebhookPolicy.from_setting("localhost")
    async with pool.acquire() as conn:
        assert await db.resend(conn, row["id"], "KZ01-LD")
    await n.run("webhook", NOON + timedelta(minutes=1))
    (request,) = gateway.received
    assert request.path == "/hook" and request.headers["host"] == f"localhost:{port}"


async def test_a_webhook_goes_to_the_address_that_was_checked_not_to_a_second_lookup(pool, gateway):
    """The sender connects to the address it resolved and checked; a name that only the check's
    lookup knows (nothing else could resolve it) proves that nothing looked it up again."""
    n = Notify(pool)
    port = int(gateway.url.rsplit(":", 1)[1])
    lookups = []

    async def resolver(host, p):
        lookups.append(host)
        return ["127.0.0.1"] if host == "hooks.fengqiao-test.invalid" else []

    n.queue.senders["webhook"].policy = WebhookPolicy(
        frozenset(), (ipaddress.ip_network("127.0.0.1/32"),), resolver=resolver
    )
    await subscribe(n, "wh_pinned", f"http://hooks.fengqiao-test.invalid:{port}/pinned")
    await n.handle(assigned_event("FQPINNED1"))
    await n.run("webhook", NOON)
    (request,) = gateway.received
    assert request.path == "/pinned" and request.headers["host"] == f"hooks.fengqiao-test.invalid:{port}"
    assert lookups == ["hooks.fengqiao-test.invalid"]


async def test_webhook_errors_do_not_tell_which_ports_are_open(pool, gateway):
    closed = HttpRecorder()
    closed_url = closed.url
    closed.close()  # nothing listens there any more
    n = Notify(pool, WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    gateway.default = 404
    await subscribe(n, "wh_open", gateway.url + "/x")
    await subscribe(n, "wh_closed", closed_url + "/x")
    await n.handle(assigned_event("FQPORTS1"))
    await n.run("webhook", NOON)
    errors = {r["recipient_key"]: r["last_error"] for r in await n.rows() if r["channel"] == "webhook"}
    assert errors == {"wh_open": "webhook_rejected", "wh_closed": "webhook_unreachable"}
