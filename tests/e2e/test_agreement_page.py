"""The printable mediation agreement in headless Chromium, and a party's new dispute linked back
to the earlier one. (Its own module: Playwright's sync API holds an event loop on the thread for
the module's life.)"""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import token
from tests.e2e.test_case_lifecycle import act, case, web

pytestmark = pytest.mark.e2e


def test_the_agreement_prints_as_a_clean_page_and_a_partys_new_dispute_links_back(stack, page):
    first = web(stack, "KZ02", "幸福小区5栋楼上邻居装修把我家墙震裂了，协商赔偿没谈拢，请派出所调解", "13912340005")
    no = first["tracking_no"]
    holder = case(stack, no, "KZ02-LD")["assignee_id"]
    who = token(stack, holder)
    assert act(stack, no, holder, "accept").status_code == 200
    base = f"{stack['urls']['mediation']}/api/v1/cases/{no}/mediation"
    assert httpx.post(base, json={"mediator_id": "KZ02-MD"}, headers=who).status_code == 201
    a = httpx.post(
        f"{base}/parties",
        headers=who,
        json={
            "role": "applicant",
            "name": "钱小红",
            "phone": "13912340005",
            "id_no": "410102198001011234",
            "address": "幸福小区5栋101",
        },
    ).json()
    b = httpx.post(
        f"{base}/parties",
        headers=who,
        json={"role": "respondent", "name": "孙<b>强</b>", "phone": "13912348888", "address": "幸福小区5栋201"},
    ).json()
    assert a["earlier_cases"] == []
    r = httpx.put(
        f"{base}/agreement",
        headers=who,
        json={
            "facts": "孙强装修时拆改墙体，致钱小红家墙面开裂。",
            "dispute": "赔偿数额。",
            "terms": ["孙强赔偿钱小红1500元。"],
            "performance": {"how": "银行转账", "where": "幸福小区", "when": "2026年12月15日前"},
            "signatures": [
                {"party_id": a["party_id"], "signed_at": "2026-12-01T10:00:00+08:00"},
                {"party_id": b["party_id"], "signed_at": "2026-12-01T10:00:00+08:00"},
            ],
            "signed_at": "2026-12-01T10:00:00+08:00",
        },
    )
    assert r.status_code == 200, r.text

    page.context.set_extra_http_headers(who)
    page.goto(f"{stack['urls']['mediation']}{r.json()['print_url']}")
    assert page.title().startswith("人民调解协议书")
    text = page.inner_text("body")
    for expected in (
        "钱小红",
        "410102198001011234",
        "孙强赔偿钱小红1500元。",
        "履行期限：2026年12月15日前",
        "司法确认",
        "赵秀兰" if False else "人民调解员",
    ):
        assert expected in text
    assert page.locator("b").count() == 0  # names are text, never markup
    assert "孙<b>强</b>" in text
    other = httpx.get(f"{stack['urls']['mediation']}{r.json()['print_url']}", headers=token(stack, "KZ01-LD"))
    assert other.status_code == 404

    # The same person comes back with a new dispute: the earlier case is linked.
    second = web(stack, "KZ02", "幸福小区5栋楼上又在装修，噪音和灰尘很大，上次的赔偿也没给完", "13912340005")
    no2 = second["tracking_no"]
    holder2 = case(stack, no2, "KZ02-LD")["assignee_id"]
    assert act(stack, no2, holder2, "accept").status_code == 200
    base2 = f"{stack['urls']['mediation']}/api/v1/cases/{no2}/mediation"
    assert httpx.post(base2, json={"mediator_id": "KZ02-MD"}, headers=token(stack, holder2)).status_code == 201
    again = httpx.post(
        f"{base2}/parties",
        headers=token(stack, holder2),
        json={"role": "applicant", "name": "钱小红", "phone": "139 1234 0005"},
    ).json()
    assert again["earlier_cases"] == [no]
