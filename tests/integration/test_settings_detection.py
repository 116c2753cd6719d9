"""Settings detection through the route, on its real DNS and autoconfig adapters, against a DNS
server and an HTTPS autoconfig server of the test's own on loopback (``tests/support``).

The zone ``detect.example`` is the test's: its DNS server answers for it, and the autoconfig
server's certificate names every host one label under it (``autoconfig.detect.example``,
``wellknown.detect.example``), verified against the test's CA as any other would be.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mailbridge.config_api.adapters.detection_cache import MemoryDetectionCache
from mailbridge.config_api.bootstrap import detection_sources
from mailbridge.config_api.settings import ConfigApiSettings
from tests.support.autoconfig_server import AutoconfigServer, autoconfig_server
from tests.support.config_api_app import api_client, container
from tests.support.dns_server import DnsServer, Records, dns_server

ZONE = "detect.example"
CONFIG_PATH = "/mail/config-v1.1.xml"
WELL_KNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"
DNS_TIMEOUT = 0.5


def document(host: str, username: str = "%EMAILLOCALPART%") -> bytes:
    return f"""<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="{ZONE}">
<incomingServer type="imap"><hostname>{host}</hostname><port>993</port>
<socketType>SSL</socketType><username>{username}</username></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.{ZONE}</hostname><port>465</port>
<socketType>SSL</socketType><username>{username}</username></outgoingServer>
</emailProvider></clientConfig>""".encode()


def records() -> Records:
    """An unknown MX, autoconfig and SRV records for the zone; A records for its web hosts."""
    return {
        ZONE: {"MX": [f"10 mx.{ZONE}."]},
        f"autoconfig.{ZONE}": {"A": ["127.0.0.1"]},
        f"wellknown.{ZONE}": {"A": ["127.0.0.1"], "MX": [f"10 mx.{ZONE}."]},
        f"_imaps._tcp.{ZONE}": {"SRV": [f"0 1 993 srv-imap.{ZONE}."]},
        f"_submission._tcp.{ZONE}": {"SRV": [f"0 1 587 srv-smtp.{ZONE}."]},
        f"_submissions._tcp.{ZONE}": {"SRV": ["0 0 0 ."]},
        f"srv.{ZONE}": {"MX": [f"10 mx.{ZONE}."]},
        f"_imap._tcp.srv.{ZONE}": {"SRV": [f"5 1 143 mail.srv.{ZONE}."]},
        "gmail.com": {"MX": ["10 mx.zoho.eu."]},
        f"m365.{ZONE}": {"MX": ["0 m365-detect-example.mail.protection.outlook.com."]},
    }


class Detection:
    """The route on real adapters, and the servers they talk to."""

    def __init__(self, api: httpx.AsyncClient, dns: DnsServer, web: AutoconfigServer) -> None:
        self.api, self.dns, self.web = api, dns, web

    async def detect(self, email: str) -> dict[str, Any]:
        answer = await self.api.get("/bridge/email-presets/detect", params={"email": email})
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body


Start = Callable[..., Any]


@pytest.fixture
def start(tmp_path: Path) -> Start:
    @asynccontextmanager
    async def started(
        *, silent: bool = False, allow_private: bool = True
    ) -> AsyncIterator[Detection]:
        async with (
            dns_server(records(), silent=silent) as dns,
            autoconfig_server(tmp_path, ZONE) as web,
        ):
            settings = ConfigApiSettings.model_construct(
                dns_resolver=f"127.0.0.1:{dns.port}",
                detect_dns_timeout_seconds=DNS_TIMEOUT,
                detect_autoconfig_timeout_seconds=2.0,
                detect_timeout_seconds=4.0,
                allow_private_hosts=allow_private,
                tls_ca_file=web.ca_file,
            )
            mail_dns, autoconfig = detection_sources(settings, autoconfig_port=web.port)
            fakes = container(
                settings=settings,
                mail_dns=mail_dns,
                autoconfig=autoconfig,
                detections=MemoryDetectionCache(ttl_seconds=300, max_entries=100),
            )
            async with api_client(fakes) as api:
                yield Detection(api, dns, web)

    return started


async def test_a_known_domain_is_its_preset_before_its_mx(start: Start) -> None:
    async with start() as d:
        found = await d.detect("jo@gmail.com")
        assert (found["source"], found["preset"], found["suggest_oauth"]) == (
            "preset", "gmail", "google"
        )  # fmt: skip
        assert d.dns.asked == []


async def test_a_known_mx_is_believed_before_autoconfig_and_srv(start: Start) -> None:
    async with start() as d:
        d.web.documents[(f"autoconfig.m365.{ZONE}", CONFIG_PATH)] = document("imap.elsewhere")
        found = await d.detect(f"jo@m365.{ZONE}")
        assert (found["source"], found["preset"], found["suggest_oauth"]) == (
            "mx", "microsoft365", "microsoft"
        )  # fmt: skip
        assert found["imap"]["host"] == "outlook.office365.com"
        assert d.dns.asked == [(f"m365.{ZONE}", "MX")]
        assert d.web.requests == []


async def test_autoconfig_is_believed_before_srv_over_verified_tls(start: Start) -> None:
    async with start() as d:
        d.web.documents[(f"autoconfig.{ZONE}", CONFIG_PATH)] = document(f"imap.{ZONE}")
        found = await d.detect(f"ada@{ZONE}")
        assert found["source"] == "autoconfig"
        assert found["imap"] == {"host": f"imap.{ZONE}", "port": 993, "security": "ssl"}
        assert found["smtp"] == {"host": f"smtp.{ZONE}", "port": 465, "security": "ssl"}
        assert found["username"] == "ada"
        assert (f"autoconfig.{ZONE}", f"{CONFIG_PATH}?emailaddress=ada%40{ZONE}") in d.web.requests
        assert f"autoconfig.{ZONE}" in d.web.sni  # the host named, the address connected to


async def test_the_well_known_path_is_asked_of_the_domain_itself(start: Start) -> None:
    async with start() as d:
        d.web.documents[(f"wellknown.{ZONE}", WELL_KNOWN_PATH)] = document("imap.%EMAILDOMAIN%")
        found = await d.detect(f"jo@wellknown.{ZONE}")
        assert (found["source"], found["imap"]["host"]) == ("autoconfig", f"imap.wellknown.{ZONE}")


async def test_a_redirect_is_followed_to_https_through_the_guard(start: Start) -> None:
    async with start() as d:
        moved = f"https://wellknown.{ZONE}/moved.xml"
        d.web.redirects[(f"autoconfig.{ZONE}", CONFIG_PATH)] = moved
        d.web.documents[(f"wellknown.{ZONE}", "/moved.xml")] = document(f"moved.{ZONE}")
        found = await d.detect(f"jo@{ZONE}")
        assert (found["source"], found["imap"]["host"]) == ("autoconfig", f"moved.{ZONE}")


async def test_srv_records_answer_when_nothing_else_does(start: Start) -> None:
    async with start() as d:
        found = await d.detect(f"jo@{ZONE}")
        assert found["source"] == "srv"
        assert found["imap"] == {"host": f"srv-imap.{ZONE}", "port": 993, "security": "ssl"}
        assert found["smtp"] == {"host": f"srv-smtp.{ZONE}", "port": 587, "security": "starttls"}
        other = await d.detect(f"jo@srv.{ZONE}")
        assert other["imap"] == {"host": f"mail.srv.{ZONE}", "port": 143, "security": "starttls"}
        assert other["smtp"] is None


async def test_a_domain_that_does_not_exist_answers_none(start: Start) -> None:
    async with start() as d:
        found = await d.detect("jo@nowhere.example")
        assert (found["source"], found["imap"], found["username"]) == ("none", None, None)
        assert d.dns.asked == [("nowhere.example", "MX")]


async def test_a_resolver_that_never_answers_is_waited_for_a_bounded_time(start: Start) -> None:
    async with start(silent=True) as d:
        started = time.monotonic()
        found = await d.detect(f"jo@{ZONE}")
        assert time.monotonic() - started < DNS_TIMEOUT + 1.0
        assert found["source"] == "none"
        assert d.dns.asked  # it was asked, and never answered


async def test_a_private_address_is_refused_unless_allowed(start: Start) -> None:
    async with start(allow_private=False) as d:
        d.web.documents[(f"autoconfig.{ZONE}", CONFIG_PATH)] = document(f"imap.{ZONE}")
        found = await d.detect(f"jo@{ZONE}")
        assert found["source"] == "srv"  # autoconfig.detect.example is 127.0.0.1: not fetched
        assert d.web.requests == []
