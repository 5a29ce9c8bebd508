"""Who may see who reported: staff of the station (masked, until they reveal it with a reason), and
for a confidential tip-off (举报) only the station's leadership. Every disclosure is logged."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from tests.e2e import helpers
from tests.e2e.helpers import token, wait_for_status

pytestmark = pytest.mark.e2e


def submit(stack, confidential: bool) -> dict:
    return helpers.submit(
        stack,
        "KZ01",
        "举报矿区某麻将馆聚众赌博" if confidential else "小区门口路灯坏了",
        reporter={"name": "赵六", "phone": "13700001111", "confidential": confidential},
    )


def reporter_as(stack, tracking_no: str, who: str):
    """The reporter as revealed (with a reason) to `who`, once triage has settled who may open the
    item (until then the station's staff do not: issue 13)."""
    url = f"{stack['urls']['intake']}/api/v1/feedback/{tracking_no}"
    wait_for_status(url, token(stack, "BUREAU-01"), "assigned", 15)
    r = httpx.post(f"{url}/reveal", json={"reason": "核实举报内容"}, headers=token(stack, who))
    assert r.status_code == 200, r.text
    return r.json()["reporter"]


def test_ordinary_reporters_are_visible_to_station_staff_only(stack):
    receipt = submit(stack, confidential=False)
    assert reporter_as(stack, receipt["tracking_no"], "KZ01-P1")["phone"] == "+8613700001111"
    masked = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}", headers=token(stack, "KZ01-P1")
    ).json()
    assert masked["reporter"]["phone"] == "137****1111"
    citizen = httpx.get(
        f"{stack['urls']['intake']}/api/v1/feedback/{receipt['tracking_no']}",
        headers={"X-Access-Code": receipt["access_code"]},
    ).json()
    assert citizen["reporter"] is None


def test_confidential_reporters_are_visible_to_leadership_only_and_logged(stack, infra):
    receipt = submit(stack, confidential=True)
    number = receipt["tracking_no"]
    assert reporter_as(stack, number, "KZ01-P1") is None  # an approved handler sees the item, not who reported
    assert reporter_as(stack, number, "BUREAU-01") is None
    seen = reporter_as(stack, number, "KZ01-LD")
    assert seen["name"] == "赵六" and seen["confidential"] is True
    assert reporter_as(stack, number, "KZ01-IN")["name"] == "赵六"

    async def log():
        conn = await asyncpg.connect(infra.dsn)
        try:
            return await conn.fetch(
                "SELECT staff_id, role FROM intake.personal_data_access WHERE tracking_no = $1 AND action = 'reveal' "
                "ORDER BY id",
                number,
            )
        finally:
            await conn.close()

    # Every reveal is logged: the unmasked words are personal data too, not only the reporter block.
    assert [(r["staff_id"], r["role"]) for r in asyncio.run(log())] == [
        ("KZ01-P1", "officer"),
        ("BUREAU-01", "bureau"),
        ("KZ01-LD", "leader"),
        ("KZ01-IN", "instructor"),
    ]


def test_a_confidential_tip_off_is_opened_only_by_approved_handlers_and_the_leadership(stack):
    """Review finding 12: any staff member of the station read the case, its history and its triage
    decision. Now a member of staff who is not an approved handler gets 404 from all three services."""
    r = httpx.post(
        f"{stack['urls']['intake']}/api/v1/feedback",
        json={
            "station": "KZ01",
            "content": "举报矿工新村西门小卖部后屋有人开设赌场，每晚都有",  # not a repeat of the one above
            "reporter": {"name": "钱七", "phone": "13700002222", "confidential": True},
        },
    )
    receipt = r.json()
    number = receipt["tracking_no"]
    wait_for_status(f"{stack['urls']['intake']}/api/v1/feedback/{number}", token(stack, "KZ01-LD"), "assigned", 15)
    case_url = f"{stack['urls']['mediation']}/api/v1/cases/{number}"
    decision_url = f"{stack['urls']['triage']}/api/v1/triage/decisions/{number}"
    for who in ("KZ01-MD", "KZ01-P2", "KZ01-P3"):  # not approved (the demo approves LD, IN and P1)
        assert (
            httpx.get(f"{stack['urls']['intake']}/api/v1/feedback/{number}", headers=token(stack, who)).status_code
            == 404
        )
        assert httpx.get(case_url, headers=token(stack, who)).status_code == 404
        assert httpx.get(decision_url, headers=token(stack, who)).status_code == 404
        listed = httpx.get(
            f"{stack['urls']['mediation']}/api/v1/cases?sort=-submitted_at", headers=token(stack, who)
        ).json()["cases"]
        assert number not in {c["tracking_no"] for c in listed}
        assert httpx.post(f"{case_url}/note", json={"text": "看看"}, headers=token(stack, who)).status_code == 404
    for who in ("KZ01-P1", "KZ01-LD", "KZ01-IN", "BUREAU-01"):
        assert httpx.get(case_url, headers=token(stack, who)).status_code == 200, who
        assert httpx.get(decision_url, headers=token(stack, who)).status_code == 200, who
    # Nor can the leader hand it to someone who could not open it.
    r = httpx.post(
        f"{case_url}/reassign", json={"assignee_id": "KZ01-P2", "reason": "换人"}, headers=token(stack, "KZ01-LD")
    )
    assert r.status_code == 422 and r.json()["detail"]["error"] == "invalid_assignee", r.text
    # The citizen keeps following it with the access code.
    assert (
        httpx.get(
            f"{stack['urls']['intake']}/api/v1/feedback/{number}", headers={"X-Access-Code": receipt["access_code"]}
        ).status_code
        == 200
    )
