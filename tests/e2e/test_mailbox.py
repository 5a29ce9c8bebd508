"""The mailbox channel: e-mail to a station's address through a real SMTP client, and slips and
letters typed in by staff."""

from __future__ import annotations

import asyncio
import base64
import smtplib
import uuid
from email.message import EmailMessage

import asyncpg
import httpx
import pytest

from tests.e2e.helpers import token, wait_for_status

pytestmark = pytest.mark.e2e


def mail(to: str, subject: str, body: str, sender: str = "citizen@example.cn", message_id: str | None = None,
         html: bool = False) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"市民 <{sender}>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id or f"<{uuid.uuid4()}@example.cn>"
    if html:
        msg.set_content(f"<html><body><p>{body}</p></body></html>", subtype="html")
    else:
        msg.set_content(body)
    return msg


async def submissions_with_title(dsn: str, title: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT tracking_no, station, channel, content FROM intake.submissions WHERE title = $1",
                                title)
    finally:
        await conn.close()


def test_an_email_to_a_station_mailbox_becomes_one_submission(stack, infra):
    subject = f"关于幸福小区停车难的建议 {uuid.uuid4().hex[:6]}"
    message = mail("kz02@jingwu.example.cn", subject, "建议在幸福小区东门增设临时停车位，晚上车太多了。")
    with smtplib.SMTP("127.0.0.1", stack["smtp_port"], timeout=10) as client:
        client.send_message(message)
        client.send_message(message)  # the sender's server delivers twice: same Message-ID
    rows = asyncio.run(submissions_with_title(infra.dsn, subject))
    assert len(rows) == 1
    assert rows[0]["station"] == "KZ02" and rows[0]["channel"] == "mailbox" and "临时停车位" in rows[0]["content"]
    leader = token(stack, "KZ02-LD")
    body = wait_for_status(f"{stack['urls']['intake']}/api/v1/feedback/{rows[0]['tracking_no']}", leader,
                           "assigned", timeout=10)
    assert body["station"] == "KZ02"


def test_html_only_mail_and_chinese_subjects_are_read(stack, infra):
    subject = f"投诉：夜间施工噪音 {uuid.uuid4().hex[:6]}"
    with smtplib.SMTP("127.0.0.1", stack["smtp_port"], timeout=10) as client:
        client.send_message(mail("KZ01@example.cn", subject, "矿山路工地每晚<b>十二点</b>还在施工", html=True))
    rows = asyncio.run(submissions_with_title(infra.dsn, subject))
    assert len(rows) == 1 and "十二点" in rows[0]["content"] and "<b>" not in rows[0]["content"]


def test_mail_to_an_unknown_mailbox_is_refused(stack):
    with smtplib.SMTP("127.0.0.1", stack["smtp_port"], timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.send_message(mail("nobody@example.cn", "x", "y"))


def test_staff_type_in_a_suggestion_box_slip(stack, infra):
    item = {"station": "KZ01", "kind": "suggestion_box", "content": "希望派出所周末也能办理居住证",
            "opened_at": "2026-11-28T09:00:00+08:00", "opened_by": "KZ01-IN", "scan_url": "file://scans/slip-001.png"}
    url = f"{stack['urls']['intake']}/api/v1/mailbox/items"
    r = httpx.post(url, json=item, headers=token(stack, "KZ01-P2"))
    assert r.status_code == 202, r.text
    assert httpx.post(url, json=item | {"kind": "fax"}, headers=token(stack, "KZ01-P2")).json()["detail"]["field"] == "kind"
    assert httpx.post(url, json=item, headers=token(stack, "KZ02-P2")).status_code == 403
    assert httpx.post(url, json=item).status_code == 401
    assert httpx.post(url, json=item, headers=token(stack, "integration")).status_code == 401  # staff only


def test_a_scanned_slip_is_stored_encrypted_and_shown_to_station_staff_only(stack, infra):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + "手写的纸条".encode()
    item = {"station": "KZ01", "kind": "letter", "content": "来信反映矿区道路扬尘", "opened_at": "2026-11-28T09:30:00+08:00",
            "opened_by": "KZ01-IN", "scan_image_base64": base64.b64encode(png).decode()}
    url = f"{stack['urls']['intake']}/api/v1/mailbox/items"
    r = httpx.post(url, json=item, headers=token(stack, "KZ01-P2"))
    assert r.status_code == 202, r.text
    number = r.json()["tracking_no"]
    scan = httpx.get(f"{url}/{number}/scan", headers=token(stack, "KZ01-P1"))
    assert scan.status_code == 200 and scan.content == png and scan.headers["content-type"] == "image/png"
    assert httpx.get(f"{url}/{number}/scan", headers=token(stack, "KZ02-LD")).status_code == 404

    async def stored() -> bytes:
        conn = await asyncpg.connect(infra.dsn)
        try:
            return await conn.fetchval("SELECT image_enc FROM intake.mailbox_scans WHERE tracking_no = $1", number)
        finally:
            await conn.close()

    assert "手写的纸条".encode() not in asyncio.run(stored())
    bad = httpx.post(url, json=item | {"scan_image_base64": base64.b64encode(b"MZ\x90 an exe").decode()},
                     headers=token(stack, "KZ01-P2"))
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "scan_image_base64"
