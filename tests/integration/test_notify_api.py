"""Notify's staff and webhook API as an attacker uses it: the app in process over ASGI, against a
real PostgreSQL schema with notify's migrations and directory rows."""

from __future__ import annotations

import secrets
from types import SimpleNamespace

import httpx
import pytest
from fastapi import HTTPException

from fengqiao.auth import Principal, hash_token, new_token
from fengqiao.outbox import unit_of_work
from fengqiao.settings import Settings
from notify import db
from notify.api import _own_delivery, leadership
from notify.app import MIGRATIONS, create_app
from notify.config import NotifySettings
from tests.integration.helpers import service_schema

BIGINT_MAX = 2**63 - 1


@pytest.fixture
async def pool(infra):
    async with service_schema(infra.dsn, "ntfapi", MIGRATIONS) as pool:
        await pool.execute(
            "INSERT INTO staff (staff_id, station, name, role) VALUES "
            "('KZ01-LD', 'KZ01', '李明', 'leader'), "
            "('KZ02-LD', 'KZ02', '周强', 'leader'), ('KZ01-P1', 'KZ01', '张伟', 'officer')"
        )
        yield pool


@pytest.fixture
def template_dir(tmp_path):
    """A deployment template folder (as docker-compose mounts one) and a file beside it that no
    request may ever read."""
    folder = tmp_path / "templates"
    (folder / "stations" / "KZ02" / "citizen").mkdir(parents=True)
    (folder / "stations" / "KZ02" / "citizen" / "result.txt").write_text(
        "【新村】{{ tracking_no }} 已办结 {{ survey_url }}", encoding="utf-8"
    )
    secret = tmp_path / "secret.env"
    secret.write_text("FENGQIAO_PII_KEYS=do-not-leak", encoding="utf-8")
    return SimpleNamespace(folder=folder, secret=secret)


@pytest.fixture
async def api(pool, template_dir):
    app = create_app(Settings(), NotifySettings(NOTIFY_TEMPLATE_DIR=str(template_dir.folder)))
    app.state.runtime = SimpleNamespace(pool=pool)  # what the lifespan would set, without consumers
    tokens = {}
    for name, role, station, staff_id in (
        ("kz01", "leader", "KZ01", "KZ01-LD"),
        ("kz02", "leader", "KZ02", "KZ02-LD"),
        ("officer", "officer", "KZ01", "KZ01-P1"),
        ("stationless", "leader", None, None),
        ("bureau", "bureau", None, None),
        ("integration", "integration", None, None),
    ):
        token = new_token()
        await pool.execute(
            "INSERT INTO api_tokens (token_id, token_hash, staff_id, station, role) VALUES ($1, $2, $3, $4, $5)",
            f"tok-{name}",
            hash_token(token),
            staff_id,
            station,
            role,
        )
        tokens[name] = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a bug answers 500, as in production
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        yield SimpleNamespace(client=client, app=app, tokens=tokens, secret=template_dir.secret)


async def failed_delivery(
    api, pool, station: str, channel: str = "sms", address: str = "+8613800138000", last_error: str | None = None
) -> int:
    queue = api.app.state.queue
    async with unit_of_work(pool) as (conn, outbox):
        await queue.enqueue(
            conn,
            outbox,
            event_source="/test",
            event_id=secrets.token_hex(4),
            channel=channel,
            audience="citizen" if channel == "sms" else "subscriber",
            recipient_key=queue.recipient_key(channel, address),
            address=address,
            body="正文",
            template="acknowledgement",
            tracking_no="FQ" + secrets.token_hex(4).upper(),
            station=station,
        )
    return await pool.fetchval(
        "UPDATE deliveries SET status = 'failed', failed_at = now(), last_error = $1 WHERE id = "
        "(SELECT max(id) FROM deliveries) RETURNING id",
        last_error,
    )


# -- finding 1: the template preview read any file -------------------------------------------------


async def test_the_template_preview_reads_no_file_outside_the_template_folder(api):
    c, kz01 = api.client, api.tokens["kz01"]
    outside = str(api.secret).lstrip("/")
    for params in (
        {"station": "/", "name": outside},  # the reviewer's request
        {"station": "../../", "name": api.secret.name},
        {"station": "KZ01", "name": "../" * 8 + outside},
        {"name": "profile.toml"},
        {"name": "citizen/../../secret.env"},
    ):
        r = await c.get("/api/v1/templates/preview", headers=kz01, params=params)
        assert r.status_code == 404, (params, r.text)
        assert "do-not-leak" not in r.text
    bureau = await c.get(
        "/api/v1/templates/preview", headers=api.tokens["bureau"], params={"station": "/", "name": outside}
    )
    assert bureau.status_code == 404 and "do-not-leak" not in bureau.text


async def test_a_template_preview_is_only_for_a_known_station_the_caller_may_see(api):
    c = api.client
    preview = lambda who, **params: c.get(
        "/api/v1/templates/preview",
        headers=api.tokens[who],
        params={"name": "citizen/result.txt", **params},
    )
    own = await preview("kz02")
    assert own.status_code == 200 and own.json()["station"] == "KZ02" and own.json()["text"].startswith("【新村】")
    other = await preview("kz01", station="KZ02")  # another station's templates and signature
    assert other.status_code == 404 and other.json()["detail"]["field"] == "station"
    assert (await preview("kz01", station="NOPE")).status_code == 404  # not in the directory
    assert (await preview("bureau", station="NOPE")).status_code == 404
    assert (await preview("bureau", station="KZ02")).json()["text"].startswith("【新村】")
    assert (await preview("bureau")).json()["station"] is None  # the deployment's own
    # Unknown names are refused before any loader sees them, and no environment is built for them.
    for i in range(50):
        assert (await preview("bureau", station=f"X{i}")).status_code == 404
    assert set(api.app.state.templates._envs) <= {None, "KZ02"}


# -- low: a station-role token without a station must not see every station -------------------------


async def test_a_station_role_token_without_a_station_sees_no_station(api, pool):
    kz02_delivery = await failed_delivery(api, pool, "KZ02")
    c, stationless = api.client, api.tokens["stationless"]
    # The platform may refuse such a token outright (401); notify refuses it in any case.
    r = await c.get("/api/v1/deliveries", headers=stationless)
    assert r.status_code in (401, 403) and str(kz02_delivery) not in r.text
    assert (await c.post(f"/api/v1/deliveries/{kz02_delivery}/resend", headers=stationless)).status_code in (401, 403)
    assert (
        await c.get(
            "/api/v1/templates/preview", headers=stationless, params={"name": "citizen/result.txt", "station": "KZ02"}
        )
    ).status_code in (401, 403)
    # Notify's own guard, whatever the platform's authentication lets through.
    principal = Principal(token_id="tok-stationless", role="leader", station=None, staff_id=None)
    with pytest.raises(HTTPException) as refused:
        await leadership(principal)
    assert refused.value.status_code == 403
    async with pool.acquire() as conn:
        assert await db.deliveries(conn, all_stations=False, station=None, status="failed") == []
        with pytest.raises(HTTPException) as hidden:
            await _own_delivery(conn, kz02_delivery, principal)
        assert hidden.value.status_code == 404
    # The others as before: their own station, or all for the bureau.
    assert [d["id"] for d in (await c.get("/api/v1/deliveries", headers=api.tokens["kz02"])).json()["deliveries"]] == [
        kz02_delivery
    ]
    assert (await c.get("/api/v1/deliveries", headers=api.tokens["kz01"])).json()["deliveries"] == []
    assert [
        d["id"] for d in (await c.get("/api/v1/deliveries", headers=api.tokens["bureau"])).json()["deliveries"]
    ] == [kz02_delivery]


# -- going further: another station's rows, odd identifiers ------------------------------------------


async def test_another_stations_delivery_is_not_found_and_odd_ids_are_refused_not_500(api, pool):
    c, kz01 = api.client, api.tokens["kz01"]
    kz02_delivery = await failed_delivery(api, pool, "KZ02")
    for action in ("resend", "dismiss"):
        assert (await c.post(f"/api/v1/deliveries/{kz02_delivery}/{action}", headers=kz01)).status_code == 404
        for odd in (BIGINT_MAX + 1, 10**30, 0, -1):
            r = await c.post(f"/api/v1/deliveries/{odd}/{action}", headers=kz01)
            assert r.status_code == 422, (odd, r.status_code, r.text)
        assert (await c.post(f"/api/v1/deliveries/{BIGINT_MAX}/{action}", headers=kz01)).status_code == 404
    r = await c.post("/api/v1/inbox/read", headers=kz01, json={"ids": [BIGINT_MAX + 1]})
    assert r.status_code == 422, r.text
    assert (await c.post("/api/v1/inbox/read", headers=kz01, json={"ids": [BIGINT_MAX]})).json()["marked"] == 0
    long_id = "KZ01-P1" + "x" * 100
    assert (
        await c.put(f"/api/v1/staff/{long_id}/contact", headers=kz01, json={"phone": "13577778888"})
    ).status_code == 422
    assert (
        await c.put("/api/v1/staff/KZ01-P1/contact", headers=api.tokens["kz02"], json={"phone": "13577778888"})
    ).status_code == 404
    for method in ("PUT", "DELETE"):  # a NUL would reach PostgreSQL, which refuses it: a 500
        r = await c.request(method, "/api/v1/staff/KZ01-P1%00/contact", headers=kz01, json={"phone": "13577778888"})
        assert r.status_code == 422, r.text
    assert (await c.delete("/api/v1/webhooks/wh_%00", headers=api.tokens["integration"])).status_code == 422
    # A subscription id is compared whole, not cut to a prefix.
    assert (await c.delete("/api/v1/webhooks/wh_" + "0" * 100, headers=api.tokens["integration"])).status_code == 422


# -- finding 8: webhooks to internal addresses -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/",
        "http://localhost:8083/api",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/",
        "http://172.16.5.5:9092/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://[::ffff:10.0.0.1]/",
        "http://[::ffff:127.0.0.1]:22/",
        "http://[fe80::1]/",
        "http://0.0.0.0:5432/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://2130706433/",  # 127.0.0.1 as one number
    ],
)
async def test_a_webhook_to_an_internal_address_is_refused_at_subscription(api, url):
    r = await api.client.post(
        "/api/v1/webhooks",
        headers=api.tokens["integration"],
        json={"name": "探测", "url": url, "event_types": ["fengqiao.case.*"]},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == "url"


async def test_a_webhook_to_a_public_address_is_accepted_and_the_allow_list_admits_named_hosts(api, pool, template_dir):
    r = await api.client.post(
        "/api/v1/webhooks",
        headers=api.tokens["integration"],
        json={"name": "分局平台", "url": "https://93.184.216.34/hook", "event_types": ["fengqiao.case.*"]},
    )
    assert r.status_code == 201, r.text
    allowed = create_app(Settings(), NotifySettings(WEBHOOK_ALLOWED_HOSTS="hooks.bureau.internal, 10.20.0.0/16"))
    allowed.state.runtime = SimpleNamespace(pool=pool)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=allowed), base_url="http://notify") as client:
        ok = await client.post(
            "/api/v1/webhooks",
            headers=api.tokens["integration"],
            json={"name": "内网平台", "url": "http://10.20.3.4:8080/hook", "event_types": ["fengqiao.case.*"]},
        )
        assert ok.status_code == 201, ok.text
        no = await client.post(
            "/api/v1/webhooks",
            headers=api.tokens["integration"],
            json={"name": "内网平台", "url": "http://10.21.3.4:8080/hook", "event_types": ["fengqiao.case.*"]},
        )
        assert no.status_code == 422 and no.json()["detail"]["field"] == "url"


async def test_a_failed_webhook_shows_a_reason_code_and_no_credentials_of_its_url(api, pool):
    """Rows from before the reason codes said which port answered how; the list shows none of it."""
    await failed_delivery(
        api,
        pool,
        "KZ01",
        channel="webhook",
        address="https://user:pw@93.184.216.34:8443/h/s3cr3t?key=s",
        last_error="webhook endpoint unreachable (ConnectError)",
    )
    await failed_delivery(
        api, pool, "KZ01", channel="webhook", address="https://93.184.216.34/h", last_error="webhook_rejected"
    )
    listed = (await api.client.get("/api/v1/deliveries", headers=api.tokens["kz01"])).json()["deliveries"]
    assert sorted((d["recipient"], d["last_error"]) for d in listed) == [
        ("https://93.184.216.34/…", "webhook_rejected"),
        ("https://93.184.216.34:8443/…", "webhook_failed"),
    ]
