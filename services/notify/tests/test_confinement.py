"""Pure logic of notify's confinement: template lookups never leave the template folder and cache
only what exists at start; webhook addresses are public unless the deployment names them."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from jinja2 import TemplateNotFound

from notify.addresses import AddressRefused, WebhookPolicy, is_public
from notify.templates import BUILTIN, TemplateConfigError, Templates


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "templates"
    (root / "stations" / "KZ02" / "citizen").mkdir(parents=True)
    (root / "stations" / "KZ02" / "citizen" / "result.txt").write_text(
        "KZ02 的结果 {{ tracking_no }}", encoding="utf-8"
    )
    (tmp_path / "secret.env").write_text("do-not-leak", encoding="utf-8")
    return root


def test_no_station_or_name_leads_out_of_the_template_folder(folder):
    t = Templates(folder)
    secret = folder.parent / "secret.env"
    for station, name in (
        ("/", str(secret).lstrip("/")),
        ("../..", "secret.env"),
        ("KZ02", "../../../secret.env"),
        (None, "profile.toml"),
        ("KZ02/../..", "secret.env"),
    ):
        with pytest.raises(TemplateNotFound):
            t.preview(name, station)


def test_a_symbolic_link_out_of_the_folder_is_not_followed(folder):
    (folder / "citizen").mkdir()
    (folder / "citizen" / "more_info.txt").symlink_to(folder.parent / "secret.env")
    text = Templates(folder).preview("citizen/more_info.txt", None)
    assert "do-not-leak" not in text and text == Templates().preview("citizen/more_info.txt", None)


def test_overrides_still_apply_and_the_cache_holds_only_the_station_folders(folder):
    t = Templates(folder)
    assert t.preview("citizen/result.txt", "KZ02").startswith("KZ02 的结果")
    assert t.preview("citizen/result.txt", "KZ01") == Templates().preview("citizen/result.txt", "KZ01")
    for i in range(200):  # any string an event or a request may carry as a station
        t.render(
            "citizen/result.txt", station=f"S{i}/../x", station_name="某所", tracking_no="FQ1", text="", survey_url=""
        )
    assert set(t._envs) <= {None, "KZ02"}


def test_a_station_folder_that_is_no_station_code_stops_the_start(folder):
    (folder / "stations" / "..bad name").mkdir()
    with pytest.raises(TemplateConfigError, match="not a station code"):
        Templates(folder)


def test_only_built_in_names_render():
    with pytest.raises(TemplateNotFound):
        Templates().render("../etc/hostname", station=None, station_name="x")
    assert "citizen/result.txt" in BUILTIN


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::1",
        "64:ff9b::a00:1",
        "::127.0.0.1",
        "2001:db8::1",
        "198.18.0.1",
    ],
)
def test_internal_and_special_addresses_are_not_public(address):
    assert not is_public(ipaddress.ip_address(address))
    assert not WebhookPolicy.from_setting("").address_allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address):
    assert is_public(ipaddress.ip_address(address))


def test_the_allow_list_names_hosts_and_networks_and_nothing_more():
    policy = WebhookPolicy.from_setting(" hooks.bureau.internal. ,10.20.0.0/16, 127.0.0.1 ")
    check = lambda url: asyncio.run(policy.check(url))
    assert check("http://10.20.3.4:8080/x").address == ipaddress.ip_address("10.20.3.4")
    assert check("http://127.0.0.1:9/").port == 9
    assert check("http://[::ffff:127.0.0.1]/").host == "::ffff:127.0.0.1"  # mapped: judged as 127.0.0.1
    for url in ("http://10.21.0.1/", "http://127.0.0.2/", "http://[::1]/", "http://169.254.169.254/"):
        with pytest.raises(AddressRefused, match="address_not_allowed"):
            check(url)
    with pytest.raises(ValueError):
        WebhookPolicy.from_setting("not a host/66")


def test_names_are_resolved_and_every_address_must_be_allowed():
    answers = {
        "mixed.example": ["93.184.216.34", "10.0.0.5"],
        "public.example": ["93.184.216.34"],
        "hooks.bureau.internal": ["10.9.9.9"],
    }

    async def resolver(host, port):
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    policy = WebhookPolicy(frozenset({"hooks.bureau.internal"}), (), resolver=resolver)
    check = lambda url: asyncio.run(policy.check(url))
    assert str(check("https://public.example/hook").address) == "93.184.216.34"
    assert str(check("https://HOOKS.bureau.internal./x").address) == "10.9.9.9"  # named by the deployment
    with pytest.raises(AddressRefused, match="address_not_allowed"):
        check("https://mixed.example/hook")  # one internal answer is enough to refuse
    with pytest.raises(AddressRefused, match="unresolvable_host"):
        check("https://nowhere.example/")
    for url in ("ftp://public.example/", "http:///nohost", "http://[::1/"):
        with pytest.raises(AddressRefused, match="invalid_url"):
            check(url)
    # The real resolver: localhost is loopback, whatever the hosts file says it is.
    with pytest.raises(AddressRefused, match="address_not_allowed"):
        asyncio.run(WebhookPolicy().check("http://localhost:8083/"))
