"""Settings detection on fakes of its DNS and autoconfig: which source answers, in which order,
what each answer says, what is kept, and that a lookup that hangs still answers in time."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from mailbridge.config_api.adapters.detection_cache import MemoryDetectionCache
from mailbridge.config_api.domain.detection import DetectedSettings, ServiceRecord, nothing_found
from mailbridge.config_api.handlers.detection import autoconfig_urls, detect_settings
from mailbridge.config_api.ports import DetectionSources
from mailbridge.shared.presets import MICROSOFT_WARNING
from tests.fakes.detection import FakeAutoconfig, FakeMailDns
from tests.support.config_api_app import api_client, container, problem

DOMAIN = "acme.example"
EMAIL = f"jo@{DOMAIN}"
AUTOCONFIG, WELL_KNOWN = autoconfig_urls(DOMAIN, EMAIL)


def document(imap_host: str, username: str = "%EMAILADDRESS%") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1"><emailProvider id="{DOMAIN}">
  <incomingServer type="imap"><hostname>{imap_host}</hostname><port>993</port>
    <socketType>SSL</socketType><username>{username}</username></incomingServer>
  <outgoingServer type="smtp"><hostname>smtp.{DOMAIN}</hostname><port>587</port>
    <socketType>STARTTLS</socketType><username>{username}</username></outgoingServer>
</emailProvider></clientConfig>""".encode()


def srv(target: str, port: int, priority: int = 0, weight: int = 1) -> ServiceRecord:
    return ServiceRecord(priority, weight, port, target)


class World:
    def __init__(self) -> None:
        self.dns, self.autoconfig = FakeMailDns(), FakeAutoconfig()
        self.cache = MemoryDetectionCache(ttl_seconds=300, max_entries=100)

    async def detect(self, email: str = EMAIL, within: float = 5.0) -> DetectedSettings:
        sources = DetectionSources(dns=self.dns, autoconfig=self.autoconfig)
        return await detect_settings(email, sources=sources, cache=self.cache, within=within)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_known_domain_is_its_preset_without_asking_dns(world: World) -> None:
    found = await world.detect("Jo.Doe@GMail.com")
    assert (found.source, found.preset, found.suggest_oauth) == ("preset", "gmail", "google")
    assert found.imap is not None and found.imap.host == "imap.gmail.com"
    assert found.username == "Jo.Doe@GMail.com"
    assert world.dns.queries == []


async def test_a_microsoft_365_tenant_is_known_by_its_mx_and_offered_oauth(world: World) -> None:
    world.dns.mx[DOMAIN] = ["acme-example.mail.protection.outlook.com"]
    found = await world.detect()
    assert (found.source, found.preset, found.suggest_oauth) == ("mx", "microsoft365", "microsoft")
    assert found.smtp is not None and found.smtp.host == "smtp.office365.com"
    assert MICROSOFT_WARNING in found.notes
    assert world.autoconfig.fetched == []


@pytest.mark.parametrize(
    ("mx", "preset"),
    [
        ("mx.zoho.com", "zoho"),
        ("mx2.zoho.eu", "zoho-eu"),
        ("mx.zoho.in", "zoho-in"),
        ("mx.zoho.com.au", "zoho-au"),
        ("mx.zoho.jp", "zoho-jp"),
        ("aspmx.l.google.com", "gmail"),
        ("smtp.google.com", "gmail"),
        ("aspmx2.googlemail.com", "gmail"),
        ("in1-smtp.messagingengine.com", "fastmail"),
    ],
)
async def test_a_hosted_domain_gets_its_providers_preset(
    world: World, mx: str, preset: str
) -> None:
    world.dns.mx[DOMAIN] = [mx]
    assert (await world.detect()).preset == preset


async def test_the_most_preferred_mx_that_names_a_provider_counts(world: World) -> None:
    world.dns.mx[DOMAIN] = ["filter.mailguard.example", "aspmx.l.google.com", "mx.zoho.eu"]
    assert (await world.detect()).preset == "gmail"


async def test_an_unknown_mx_leaves_it_to_autoconfig_over_srv(world: World) -> None:
    world.dns.mx[DOMAIN] = [f"mx.{DOMAIN}"]
    world.autoconfig.documents[AUTOCONFIG] = document(f"imap.{DOMAIN}", "%EMAILLOCALPART%")
    world.dns.srv[f"_imaps._tcp.{DOMAIN}"] = [srv(f"srv-imap.{DOMAIN}", 993)]
    found = await world.detect()
    assert (found.source, found.preset, found.suggest_oauth) == ("autoconfig", None, None)
    assert found.imap is not None and found.imap.model_dump() == {
        "host": f"imap.{DOMAIN}", "port": 993, "security": "ssl"
    }  # fmt: skip
    assert found.username == "jo"


async def test_the_autoconfig_host_is_believed_over_the_well_known_path(world: World) -> None:
    world.autoconfig.documents[AUTOCONFIG] = document("first.acme.example")
    world.autoconfig.documents[WELL_KNOWN] = document("second.acme.example")
    found = await world.detect()
    assert found.imap is not None and found.imap.host == "first.acme.example"


async def test_the_well_known_path_answers_when_the_autoconfig_host_does_not(
    world: World,
) -> None:
    world.autoconfig.documents[WELL_KNOWN] = document("imap.%EMAILDOMAIN%")
    found = await world.detect()
    assert found.imap is not None and found.imap.host == f"imap.{DOMAIN}"
    assert AUTOCONFIG.endswith("config-v1.1.xml?emailaddress=jo%40acme.example")


async def test_srv_records_answer_last_by_priority_then_implicit_tls(world: World) -> None:
    world.dns.srv |= {
        f"_imap._tcp.{DOMAIN}": [srv("starttls.acme.example", 143, priority=0)],
        f"_imaps._tcp.{DOMAIN}": [srv("tls.acme.example.", 993, priority=10)],
        f"_submissions._tcp.{DOMAIN}": [srv("heavy.acme.example", 465, weight=5)],
        f"_submission._tcp.{DOMAIN}": [srv("tied.acme.example", 587)],
    }
    found = await world.detect()
    assert found.source == "srv" and found.imap is not None and found.smtp is not None
    assert (found.imap.host, found.imap.port, found.imap.security) == (
        "starttls.acme.example", 143, "starttls"
    )  # fmt: skip
    assert (found.smtp.host, found.smtp.security) == ("heavy.acme.example", "ssl")
    assert found.username == EMAIL


async def test_an_srv_target_of_dot_means_the_service_is_not_offered(world: World) -> None:
    world.dns.srv |= {
        f"_imaps._tcp.{DOMAIN}": [srv(".", 0)],
        f"_imap._tcp.{DOMAIN}": [srv(f"imap.{DOMAIN}", 143)],
    }
    found = await world.detect()
    assert found.imap is not None and found.imap.security == "starttls"
    assert found.smtp is None


async def test_nothing_found_is_source_none_with_a_note(world: World) -> None:
    found = await world.detect()
    assert (found.source, found.imap, found.smtp, found.username) == ("none", None, None, None)
    assert found.notes and DOMAIN in found.notes[0]


async def test_a_domain_that_does_not_exist_is_not_looked_up_further(world: World) -> None:
    world.dns.missing.add(DOMAIN)
    found = await world.detect()
    assert found.source == "none" and "does not exist" in found.notes[0]
    assert (world.dns.queries, world.autoconfig.fetched) == ([DOMAIN], [])


async def test_a_resolver_that_does_not_answer_ends_the_lookup_uncached(world: World) -> None:
    world.dns.unavailable = True
    assert (await world.detect()).source == "none"
    world.dns.unavailable = False
    world.dns.mx[DOMAIN] = ["aspmx.l.google.com"]
    assert (await world.detect()).source == "mx"


async def test_a_lookup_that_hangs_answers_within_its_bound(world: World) -> None:
    world.autoconfig.stalls = True
    started = time.monotonic()
    found = await world.detect(within=0.2)
    assert time.monotonic() - started < 1.0
    assert found.source == "none" and "too long" in found.notes[0]


async def test_a_finding_serves_every_address_at_its_domain(world: World) -> None:
    world.autoconfig.documents[AUTOCONFIG] = document(f"imap.{DOMAIN}", "%EMAILLOCALPART%")
    await world.detect()
    asked = len(world.dns.queries)
    again = await world.detect(f"ada@{DOMAIN}")
    assert (again.source, again.username) == ("autoconfig", "ada")
    assert len(world.dns.queries) == asked


def test_the_cache_forgets_after_its_time_and_beyond_its_size() -> None:
    now = [0.0]
    cache = MemoryDetectionCache(ttl_seconds=10, max_entries=2, now=lambda: now[0])
    for domain in ("a.example", "b.example", "c.example"):
        cache.put(domain, nothing_found(domain))
    assert cache.get("a.example") is None and cache.get("c.example") is not None
    now[0] = 10.0
    assert cache.get("c.example") is None


# --- the route -------------------------------------------------------------------------------

DETECT = "/bridge/email-presets/detect"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    hosted = FakeMailDns(mx={"contoso.com": ["contoso-com.mail.protection.outlook.com"]})
    fakes = container(mail_dns=hosted)
    async with api_client(fakes) as client:
        yield client


async def test_the_route_answers_what_was_found(api: httpx.AsyncClient) -> None:
    answer = await api.get(DETECT, params={"email": "support@contoso.com"})
    assert answer.status_code == 200
    assert answer.json() | {"notes": []} == {
        "email": "support@contoso.com",
        "source": "mx",
        "preset": "microsoft365",
        "imap": {"host": "outlook.office365.com", "port": 993, "security": "ssl"},
        "smtp": {"host": "smtp.office365.com", "port": 587, "security": "starttls"},
        "username": "support@contoso.com",
        "suggest_oauth": "microsoft",
        "notes": [],
    }


@pytest.mark.parametrize("email", ["not-an-address", "jo@", "jo@localhost", "jo@a..example"])
async def test_an_invalid_address_is_a_422_problem(api: httpx.AsyncClient, email: str) -> None:
    answer = await api.get(DETECT, params={"email": email})
    assert (answer.status_code, problem(answer)["code"]) == (422, "invalid_input")


async def test_the_route_needs_a_key(api: httpx.AsyncClient) -> None:
    api.headers.pop("Authorization")
    answer = await api.get(DETECT, params={"email": "support@contoso.com"})
    assert answer.status_code == 401
