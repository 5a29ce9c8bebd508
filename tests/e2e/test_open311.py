"""Open311 GeoReport v2: an Open311 client library from PyPI (georeport) lists services and reads
requests back, in JSON and XML, after one is created with the spec's form-encoded POST."""

from __future__ import annotations

import time

import httpx
import pytest
import requests
import xmltodict
from georeport import GeoReport

pytestmark = pytest.mark.e2e


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="module")
def created(stack) -> str:
    r = httpx.post(
        f"{stack['urls']['intake']}/open311/v2/requests.json",
        data={
            "api_key": stack["credentials"]["integration"]["token"],
            "jurisdiction_id": "KZ01",
            "service_code": "safety_hazard",
            "description": "矿工新村 5 号楼旁井盖缺失，晚上很危险",
            "address_string": "矿工新村 5 号楼",
            "lat": "39.9",
            "long": "116.4",
            "first_name": "明",
            "last_name": "李",
            "phone": "13800138000",
            "device_id": "app-123",
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body) == 1 and body[0]["service_request_id"].startswith("FQ")
    return body[0]["service_request_id"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_georeport_client_lists_services_and_reads_requests(stack, created, fmt):
    client = GeoReport(f"{stack['urls']['intake']}/open311/v2", jurisdiction="KZ01", output_format=fmt)
    services = as_list(client.get_service_list())
    assert {s["service_code"] for s in services} >= {"safety_hazard", "neighbor_dispute", "police_conduct"}
    assert next(s for s in services if s["service_code"] == "noise")["service_name"] == "噪声扰民"
    definition = client.get_service_definition("noise")
    assert definition["service_code"] == "noise"

    deadline = time.monotonic() + 10
    while True:
        request = client.get_service_request(created)
        if request["status_notes"] == "已分派" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert request["service_request_id"] == created and request["status"] == "open"
    assert request["status_notes"] == "已分派" and request["agency_responsible"] == "矿区派出所"
    assert request["service_code"] == "safety_hazard"
    listed = as_list(client.get_service_requests(service_request_id=created))
    assert [r["service_request_id"] for r in listed] == [created]
    # Reads are public, so they carry nothing personal.
    assert "description" not in request and "13800138000" not in str(listed) and "李" not in str(listed)


def test_creating_in_xml_and_errors_in_both_formats(stack):
    base = f"{stack['urls']['intake']}/open311/v2"
    key = stack["credentials"]["integration"]["token"]
    r = requests.post(
        f"{base}/requests.xml",
        data={"api_key": key, "jurisdiction_id": "KZ02", "service_code": "noise", "description": "夜市噪音到凌晨"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    request_id = xmltodict.parse(r.content)["service_requests"]["request"]["service_request_id"]
    assert request_id.startswith("FQ")

    no_key = requests.post(
        f"{base}/requests.json", data={"jurisdiction_id": "KZ01", "service_code": "noise", "description": "x"}
    )
    assert no_key.status_code == 403 and no_key.json()[0]["code"] == 403
    bad = requests.post(
        f"{base}/requests.xml",
        data={"api_key": key, "jurisdiction_id": "KZ01", "service_code": "ufo", "description": "x"},
    )
    assert bad.status_code == 400 and "service_code" in xmltodict.parse(bad.content)["errors"]["error"]["description"]
    assert requests.get(f"{base}/services.json", params={"jurisdiction_id": "ZZ99"}).status_code == 404
    assert requests.get(f"{base}/requests/FQ22222222.json", params={"jurisdiction_id": "KZ01"}).status_code == 404
    officer = stack["credentials"]["KZ01-P1"]["token"]  # a staff token is not an api_key
    assert (
        requests.post(
            f"{base}/requests.json",
            data={"api_key": officer, "jurisdiction_id": "KZ01", "service_code": "noise", "description": "x"},
        ).status_code
        == 403
    )
