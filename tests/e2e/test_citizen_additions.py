"""The citizen adds to an open case (issue 13): the answer to a request for information on the
tracking page or by replying to the e-mail, and follow-up calls, through the running services (real
SMTP in and out). The answer reaches the officer (console notice, case history) and the citizen's
timeline, resumes the resolution clock that waited for it, and never travels on the public stream;
a forged reply, a wrong access code or another station's number attaches nothing."""

from __future__ import annotations

import secrets
import smtplib
import time
import uuid
from email.message import EmailMessage

import httpx
import pytest

from tests.e2e.helpers import console_notifications, public_events, sql, submit, token, wait_for_status

pytestmark = pytest.mark.e2e
LEADER = "KZ01-LD"


def case_url(stack, no: str) -> str:
    return f"{stack['urls']['mediation']}/api/v1/cases/{no}"


def case(stack, no: str, station: str = "KZ01") -> dict:
    return httpx.get(case_url(stack, no), headers=token(stack, f"{station}-LD")).json()


def act(stack, no: str, who: str, command: str, **body) -> httpx.Response:
    return httpx.post(f"{case_url(stack, no)}/{command}", json=body, headers=token(stack, who))


def citizen_timeline(stack, receipt: dict) -> list[str]:
    r = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        headers={"X-Access-Code": receipt["access_code"]},
    )
    assert r.status_code == 200, r.text
    return [t["note"] or "" for t in r.json()["timeline"]]


def wait_until(check, what: str, timeout: float = 15):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout}s"
        time.sleep(0.1)


def info_requested_case(stack, station: str = "KZ01", **reporter) -> tuple[dict, str]:
    """A case whose officer accepted it and asked the citizen for more information; the citizen's
    timeline shows the request."""
    receipt = submit(
        stack, station, f"小区地下车库电动车充电桩私拉电线，有火灾隐患（{uuid.uuid4().hex[:6]}）", reporter=reporter
    )
    no = receipt["tracking_no"]
    officer = wait_for_status(case_url(stack, no), token(stack, f"{station}-LD"), "assigned", timeout=15)["assignee_id"]
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "request_info", text="请说明具体是几号楼的车库").status_code == 200
    wait_until(lambda: any("需要您补充" in n for n in citizen_timeline(stack, receipt)), "the request on the timeline")
    return receipt, officer


def track(stack, receipt: dict, code: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['intake']}/track",
        data={"tracking_no": receipt["tracking_no"], "access_code": code or receipt["access_code"]},
    )


def add_on_page(stack, receipt: dict, text: str, code: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{stack['urls']['intake']}/track/add",
        data={
            "tracking_no": receipt["tracking_no"],
            "access_code": code or receipt["access_code"],
            "text": text,
            "form_token": secrets.token_hex(8),
        },
    )


def answered(stack, no: str) -> dict:
    """The case once the citizen's addition reached it."""
    return wait_until(lambda: (c := case(stack, no))["citizen_additions"] and c, "the addition in the case")


def test_the_citizen_answers_on_the_tracking_page_and_the_clock_resumes(stack, infra):
    receipt, officer = info_requested_case(stack, phone="+8613900131313")
    no = receipt["tracking_no"]
    waiting = case(stack, no)
    assert waiting["waiting_for_citizen_since"] is not None
    assert "等待群众补充材料，办理时限暂停" in [s["reason"] for s in waiting["history"]]
    (clock,) = [k for k in waiting["clocks"] if k["clock"] == "resolve"]
    assert clock["suspended_at"] is not None

    page = track(stack, receipt)
    assert (
        page.status_code == 200 and 'id="add-information"' in page.text and "no-store" in page.headers["cache-control"]
    )
    # Without the item's access code nothing is added (the code is what a cross-site post lacks).
    assert add_on_page(stack, receipt, "伪造的补充", code="00000000").status_code == 404
    too_long = add_on_page(stack, receipt, "长" * 2001)
    assert too_long.status_code == 422 and "2000" in too_long.text
    assert add_on_page(stack, receipt, "   ").status_code == 422

    secret = f"3号楼车库，联系人王先生 13900131313（{uuid.uuid4().hex[:6]}）"
    done = add_on_page(stack, receipt, secret)
    assert done.status_code == 200 and "已收到您补充的材料" in done.text
    assert 'id="add-information"' not in done.text  # answered: no form until the officer asks again

    c = answered(stack, no)
    # Staff read the addition masked like the original words; the text as written is a logged reveal.
    assert [a["text"] for a in c["citizen_additions"]] == [secret.replace("13900131313", "139****1313")]
    reveal = f"{stack['urls']['intake']}/api/v1/feedback/{no}/reveal"
    revealed = httpx.post(reveal, json={"reason": "回电核实"}, headers=token(stack, LEADER))
    assert revealed.status_code == 200 and [a["text"] for a in revealed.json()["additions"]] == [secret], revealed.text
    assert c["waiting_for_citizen_since"] is None
    reasons = [s["reason"] for s in c["history"]]
    assert "群众已补充材料（进度查询页）" in reasons
    assert any(r.startswith("群众已补充，办理时限恢复") for r in reasons)
    (clock,) = [k for k in c["clocks"] if k["clock"] == "resolve"]
    assert clock["suspended_at"] is None and clock["suspended_seconds"] > 0
    notices = console_notifications(stack, officer, "citizen_added", no)
    assert notices and "办理时限已恢复" in notices[0]["body"] and secret not in notices[0]["body"]
    assert any("您已补充材料" in n for n in citizen_timeline(stack, receipt))
    assert add_on_page(stack, receipt, "再补充一次").status_code == 409  # nothing is pending any more

    stored = sql(infra.dsn, "SELECT text_enc FROM intake.citizen_additions WHERE tracking_no = $1", no)
    assert len(stored) == 1 and secret.encode() not in stored[0]["text_enc"]  # sealed
    assert secret not in str(public_events(infra.bootstrap, no, seconds=3))  # never on the public stream


def reply(to: str, sender: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@example.cn>"
    msg.set_content(body)
    return msg


def send(stack, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", stack["smtp_port"], timeout=30) as client:
        client.send_message(message)


def test_a_reply_from_the_reporters_address_is_added_and_a_forged_one_is_a_new_item(stack, infra):
    reporter = f"reply-{uuid.uuid4().hex[:8]}@example.cn"
    receipt, officer = info_requested_case(stack, email=reporter)
    no = receipt["tracking_no"]
    ((_, asked),) = stack["mail"].wait_for(
        1, where=lambda m: no in str(m[1]["Subject"]) and "补充" in str(m[1]["Subject"]) and reporter in m[0]
    )
    original = asked.get_body(("plain",)).get_content()

    # Someone else names the tracking number: a new item like any other mail, the case is untouched.
    forged_subject = f"Re: {asked['Subject']}"
    send(stack, reply("kz01@example.cn", f"other-{uuid.uuid4().hex[:6]}@example.cn", forged_subject, "撤销此事项"))
    wait_until(
        lambda: sql(infra.dsn, "SELECT 1 FROM intake.submissions WHERE title = $1", forged_subject),
        "the forged reply as a new item",
    )

    # The reporter replies (the address in other capitals), quoting the request.
    answer = f"是5号楼的地下车库（{uuid.uuid4().hex[:6]}）"
    quoted = "\n".join(f"> {line}" for line in original.splitlines())
    send(stack, reply("kz01@example.cn", reporter.upper(), f"回复：{asked['Subject']}", f"{answer}\n\n{quoted}"))
    c = answered(stack, no)
    assert [a["text"] for a in c["citizen_additions"]] == [answer]  # without the quoted request
    assert c["waiting_for_citizen_since"] is None
    assert "群众已补充材料（回复邮件）" in [s["reason"] for s in c["history"]]
    assert console_notifications(stack, officer, "citizen_added", no)
    assert any("已收到您回复的邮件" in n for n in citizen_timeline(stack, receipt))
    titled = sql(infra.dsn, "SELECT 1 FROM intake.submissions WHERE title LIKE $1", f"%{asked['Subject']}")
    assert len(titled) == 1  # the forged one only: the reply became no item


def call(station: str, number: str, **fields) -> dict:
    return {
        "call_id": f"CTI-{uuid.uuid4().hex[:10]}",
        "station": station,
        "caller_number": number,
        "started_at": "2026-11-28T21:05:00+08:00",
        "summary": f"来电反映车库私拉电线（{uuid.uuid4().hex[:6]}）",
    } | fields


def post_call(stack, body: dict) -> httpx.Response:
    return httpx.post(f"{stack['urls']['intake']}/api/v1/hotline/calls", json=body, headers=token(stack, "integration"))


def test_follow_up_calls_are_added_to_the_open_case_not_opened_anew(stack, infra):
    number = f"+86139{secrets.randbelow(10**8):08d}"
    first = post_call(stack, call("KZ02", number))
    assert first.status_code == 202, first.text
    no = first.json()["tracking_no"]
    officer = wait_for_status(case_url(stack, no), token(stack, "KZ02-LD"), "assigned", timeout=15)["assignee_id"]

    # The same number calls again: the call is added to the open case, no new item, no new dispute.
    again = call("KZ02", number, summary="又来电：问什么时候处理")
    r = post_call(stack, again)
    assert r.status_code == 202 and r.json() == {"tracking_no": no, "status": "added", "added_to": no}, r.text
    assert post_call(stack, again).json() == {"tracking_no": no, "status": "duplicate", "added_to": no}  # retried
    c = wait_until(lambda: (c := case(stack, no, "KZ02"))["citizen_additions"] and c, "the call in the case")
    assert c["citizen_additions"][0]["text"] == "又来电：问什么时候处理"
    assert "群众来电跟进，已记入本事项" in [s["reason"] for s in c["history"]]
    assert console_notifications(stack, officer, "citizen_added", no)
    # From another number, naming the tracking number: added as well.
    other = post_call(stack, call("KZ02", "", tracking_no=no.lower()))
    assert other.json()["added_to"] == no
    items = sql(infra.dsn, "SELECT count(*) AS n FROM intake.submissions WHERE tracking_no = $1", no)
    assert items[0]["n"] == 1

    # A number of another station is not attached (nor is it said to exist): a new item.
    kz01 = submit(stack, "KZ01", f"矿区路灯不亮（{uuid.uuid4().hex[:6]}）")["tracking_no"]
    elsewhere = post_call(stack, call("KZ02", "", tracking_no=kz01))
    assert elsewhere.status_code == 202 and "added_to" not in elsewhere.json()
    assert elsewhere.json()["tracking_no"] != kz01 and elsewhere.json()["refers_to"] is None

    # Once resolved, a call about it is a new item referring to the old one.
    assert act(stack, no, officer, "accept").status_code == 200
    assert act(stack, no, officer, "resolve", summary="已拆除私拉电线。").status_code == 200
    wait_until(
        lambda: (
            httpx.get(f"{stack['urls']['intake']}/api/v1/feedback/{no}", headers=token(stack, "KZ02-LD")).json()[
                "status"
            ]
            == "resolved"
        ),
        "the result at intake",
    )
    late = post_call(stack, call("KZ02", number, tracking_no=no))
    assert late.status_code == 202 and late.json()["refers_to"] == no and late.json()["tracking_no"] != no
    links = sql(
        infra.dsn,
        "SELECT reason FROM intake.submission_links WHERE tracking_no = $1 AND related_tracking_no = $2",
        late.json()["tracking_no"],
        no,
    )
    assert [r["reason"] for r in links] == ["follow_up_of_closed"]
