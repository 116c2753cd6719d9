"""The Email tab's sessions through the real app and routes, on fakes: a platform's backend opens
a link with its API key, the page (a browser without a key) exchanges the link's token for the
session cookie and works with that one agent only, on the routes the tab uses, with its CSRF
token on every change; the session expires, is renewed, and ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mailbridge.config_api.domain.api_keys import StoredKey, new_key
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.domain.ui_sessions import COOKIE, CSRF_HEADER
from mailbridge.config_api.entrypoints.http.connection import until
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.messages import FlowStatus, OAuthFlowView, Provider
from tests.factories import IMAP_JSON
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import AnsweringResults, FakeOAuthBroker
from tests.support.config_api_app import (
    OPERATOR,
    OneKey,
    api_client,
    browser_client,
    container,
    problem,
)

LIFETIME = timedelta(minutes=15)
FLOW_ENDS = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
GLOBEX = new_key()  # an org key of another org than agent a1's


class OperatorAndGlobexKeys:
    async def find(self, key_id: str) -> StoredKey | None:
        if key_id == GLOBEX.key_id:
            return StoredKey(GLOBEX.key_id, "globex", "globex", GLOBEX.secret_hash, revoked=False)
        return await OneKey().find(key_id)


PUBLIC = "http://127.0.0.1:8080"  # the default MAILBRIDGE_PUBLIC_BASE_URL
CONFIG = "/bridge/agents/a1/email-config"
GOOGLE = {"provider": "google", "client_id": "google-id", "client_secret": "google-secret"}


class SnapshotOnly:
    """The live feed: the snapshot, then the stream ends."""

    async def follow(
        self, agent_id: str, agent: AgentIn, last_event_id: str | None, snapshot: str
    ) -> AsyncIterator[str]:
        yield f"event: snapshot\ndata: {snapshot}\n\n"


@dataclass
class Tab:
    """The platform's backend (``api``, with the operator key) and the Email tab's page
    (``browser``, no key), on one set of fakes; every answer either got is in ``answers``."""

    api: httpx.AsyncClient
    browser: httpx.AsyncClient
    clock: FixedClock
    broker: FakeOAuthBroker
    answers: list[str] = field(default_factory=list)

    async def record(self, response: httpx.Response) -> None:
        await response.aread()
        self.answers.append(f"{response.headers}\n{response.text}")

    async def link(self, agent_id: str = "a1") -> dict[str, Any]:
        answer = await self.api.post(f"/bridge/agents/{agent_id}/ui-sessions")
        assert answer.status_code == 201, answer.text
        link: dict[str, Any] = answer.json()
        return link

    async def exchange(self, token: str, **headers: str) -> httpx.Response:
        return await self.browser.post(
            "/ui/sessions/exchange", json={"token": token}, headers=headers
        )

    async def open(self) -> dict[str, Any]:
        """A session opened as the page opens it; its CSRF token is sent from then on."""
        answer = await self.exchange(token_of(await self.link()))
        assert answer.status_code == 200, answer.text
        session: dict[str, Any] = answer.json()
        self.browser.headers[CSRF_HEADER] = session["csrf_token"]
        return session


def pending_flow(flow_id: str, agent_id: str) -> OAuthFlowView:
    return OAuthFlowView(
        flow_id=flow_id, agent_id=agent_id, provider=Provider.GOOGLE,
        status=FlowStatus.PENDING, expires_at=FLOW_ENDS,
    )  # fmt: skip


def token_of(link: dict[str, Any]) -> str:
    fragment = urlsplit(link["url"]).fragment
    assert fragment.startswith("session=")
    return fragment.removeprefix("session=")


def cookie_of(answer: httpx.Response) -> str:
    [cookie] = answer.headers.get_list("set-cookie")
    assert cookie.startswith(f"{COOKIE}=")
    return cookie


async def build_tab(**overrides: Any) -> AsyncIterator[Tab]:
    clock, broker = FixedClock(), FakeOAuthBroker()
    results = AnsweringResults({"agent_id": "a1", "ok": True, "inbox_total": 3, "unread": 1})
    fakes = container(
        clock=clock, oauth=broker, results=results, live=SnapshotOnly(),
        keys=OperatorAndGlobexKeys(), **overrides,
    )  # fmt: skip
    async with api_client(fakes) as api, browser_client(fakes) as browser:
        (await api.put("/bridge/agents/a2", json={"org_id": "acme"})).raise_for_status()
        tab = Tab(api, browser, clock, broker)
        for client in (api, browser):
            client.event_hooks["response"].append(tab.record)
        yield tab


@pytest.fixture
async def tab() -> AsyncIterator[Tab]:
    async for built in build_tab():
        yield built


# Opening the tab ----------------------------------------------------------------------------


async def test_a_link_opens_the_agents_email_tab_with_its_token_in_the_fragment(tab: Tab) -> None:
    link = await tab.link()
    assert link["url"].startswith(f"{PUBLIC}/ui/agents/a1/email#session=")
    assert len(token_of(link)) >= 43  # 256 random bits
    assert link["expires_at"] == (tab.clock.now() + LIFETIME).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("key", "agent_id", "status"),
    [(None, "a1", 401), (GLOBEX.token, "a1", 404), (OPERATOR.token, "nobody", 404)],
)
async def test_a_link_needs_a_key_that_reaches_the_agent(
    tab: Tab, key: str | None, agent_id: str, status: int
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    answer = await tab.browser.post(f"/bridge/agents/{agent_id}/ui-sessions", headers=headers)
    assert answer.status_code == status


async def test_the_exchange_answers_the_session_and_sets_its_cookie(tab: Tab) -> None:
    (
        await tab.api.put("/bridge/agents/a1", json={"org_id": "acme", "name": "Support"})
    ).raise_for_status()
    answer = await tab.exchange(token_of(await tab.link()))

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["agent_id"], body["agent_name"]) == ("a1", "Support")
    assert body["csrf_token"] and answer.headers["cache-control"] == "no-store"
    cookie = cookie_of(answer)
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=900"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # served over http here


async def test_over_https_the_cookie_is_secure() -> None:
    settings = ConfigApiSettings.model_construct(public_base_url="https://mail.example")
    async for tab in build_tab(settings=settings):
        answer = await tab.exchange(token_of(await tab.link()))
        assert "; secure" in cookie_of(answer).lower()


async def test_a_links_token_is_exchanged_once(tab: Tab) -> None:
    token = token_of(await tab.link())
    assert (await tab.exchange(token)).status_code == 200
    again = await tab.exchange(token)
    assert (again.status_code, problem(again)["code"]) == (401, "unauthorized")
    assert "used already" in problem(again)["title"]


async def test_a_link_not_exchanged_in_time_is_refused(tab: Tab) -> None:
    token = token_of(await tab.link())
    tab.clock.current += LIFETIME
    assert (await tab.exchange(token)).status_code == 401


async def test_an_exchange_from_another_origin_is_refused(tab: Tab) -> None:
    answer = await tab.exchange(token_of(await tab.link()), Origin="https://evil.example")
    assert (answer.status_code, problem(answer)["code"]) == (403, "unauthorized")


async def test_a_page_reloaded_reads_its_session_again(tab: Tab) -> None:
    opened = await tab.open()
    answer = await tab.browser.get("/ui/sessions/current")
    assert answer.status_code == 200 and answer.json() == opened


# What the session reaches -------------------------------------------------------------------

EMAIL_TAB_CALLS = [
    ("GET", "/bridge/email-presets", None),
    ("PUT", CONFIG, GOOGLE),
    ("POST", f"{CONFIG}/authorize", None),
    ("GET", "/bridge/oauth/flows/flow_1", None),
    ("PUT", CONFIG, IMAP_JSON),
    ("GET", CONFIG, None),
    ("POST", f"{CONFIG}/test", None),
    ("GET", f"{CONFIG}/events", None),
    ("DELETE", CONFIG, None),
]


async def email_tab_answers(tab: Tab) -> list[tuple[str, str, int]]:
    tab.broker.views["flow_1"] = pending_flow("flow_1", "a1")
    answers = []
    for method, path, body in EMAIL_TAB_CALLS:
        answer = await tab.browser.request(method, path, json=body)
        answers.append((method, path, answer.status_code))
    return answers


async def test_the_session_reaches_every_route_the_email_tab_uses(tab: Tab) -> None:
    await tab.open()
    answers = await email_tab_answers(tab)
    assert answers == [(method, path, 200) for method, path, _ in EMAIL_TAB_CALLS]
    assert tab.broker.asked, "the authorize call reached the broker"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/bridge/agents/a2/email-config"),
        ("PUT", "/bridge/agents/a2/email-config"),
        ("POST", "/bridge/agents/a2/email-config/test"),
        ("GET", "/bridge/oauth/flows/flow_2"),
    ],
)
async def test_another_agent_of_the_same_org_is_not_there_for_the_session(
    tab: Tab, method: str, path: str
) -> None:
    tab.broker.views["flow_2"] = pending_flow("flow_2", "a2")
    await tab.open()
    answer = await tab.browser.request(method, path, json=IMAP_JSON if method == "PUT" else None)
    assert (answer.status_code, problem(answer)["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/bridge/agents/a1"),
        ("POST", "/bridge/agents/a1/ui-sessions"),
        ("POST", "/bridge/agents/a1/messages"),
        ("GET", "/bridge/agents/a1/messages/cmd_1"),
        ("GET", "/bridge/orgs/acme/email-config"),
        ("DELETE", "/bridge/orgs/acme/client-orgs/acme-emea"),
    ],
)
async def test_every_other_bridge_route_refuses_the_session(
    tab: Tab, method: str, path: str
) -> None:
    await tab.open()
    body = {"org_id": "acme"} if path == "/bridge/agents/a1" else None
    answer = await tab.browser.request(method, path, json=body)
    assert (answer.status_code, problem(answer)["code"]) == (401, "unauthorized")


# CSRF and origin ----------------------------------------------------------------------------


@pytest.mark.parametrize("csrf", [None, "", "not-the-token"])
async def test_a_change_without_the_sessions_csrf_token_is_forbidden(
    tab: Tab, csrf: str | None
) -> None:
    await tab.open()
    if csrf is None:
        tab.browser.headers.pop(CSRF_HEADER)
    else:
        tab.browser.headers[CSRF_HEADER] = csrf
    for answer in (
        await tab.browser.put(CONFIG, json=IMAP_JSON),
        await tab.browser.post("/ui/sessions/renew"),
    ):
        assert (answer.status_code, problem(answer)["code"]) == (403, "unauthorized")
    assert (await tab.browser.get(CONFIG)).status_code == 200  # a read needs none


async def test_a_change_from_another_origin_is_forbidden_and_from_mailbridges_accepted(
    tab: Tab,
) -> None:
    await tab.open()
    foreign = await tab.browser.put(
        CONFIG, json=IMAP_JSON, headers={"Origin": "https://evil.example"}
    )
    assert (foreign.status_code, problem(foreign)["code"]) == (403, "unauthorized")
    own = await tab.browser.put(CONFIG, json=IMAP_JSON, headers={"Origin": PUBLIC})
    assert own.status_code == 200


async def test_an_api_key_needs_no_csrf_token_and_wins_over_a_cookie(tab: Tab) -> None:
    await tab.open()
    tab.api.cookies = tab.browser.cookies  # a backend that also holds the page's cookie
    answer = await tab.api.put("/bridge/agents/a2/email-config", json=IMAP_JSON)
    assert answer.status_code == 200


# Expiry, renewal, end ----------------------------------------------------------------------


async def test_an_expired_session_is_refused_saying_to_reopen_the_tab(tab: Tab) -> None:
    await tab.open()
    tab.clock.current += LIFETIME
    answer = await tab.browser.get(CONFIG)
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (401, "unauthorized")
    assert "expired" in body["title"]
    assert "reopen the Email tab from the platform" in body["title"]


async def test_renewing_slides_the_sessions_end_and_the_cookies(tab: Tab) -> None:
    await tab.open()
    tab.clock.current += timedelta(minutes=10)
    renewed = await tab.browser.post("/ui/sessions/renew")
    assert renewed.status_code == 200, renewed.text
    new_end = tab.clock.now() + LIFETIME
    assert renewed.json() == {"expires_at": new_end.isoformat().replace("+00:00", "Z")}
    assert "max-age=900" in cookie_of(renewed).lower()
    tab.clock.current += timedelta(minutes=10)  # past the first end, within the new one
    assert (await tab.browser.get(CONFIG)).status_code == 200


async def test_an_ended_session_is_refused_and_its_cookie_deleted(tab: Tab) -> None:
    await tab.open()
    secret = tab.browser.cookies[COOKIE]
    ended = await tab.browser.delete("/ui/sessions/current")
    assert ended.status_code == 204
    assert "max-age=0" in cookie_of(ended).lower()
    tab.browser.cookies.set(COOKIE, secret)  # kept anyway: the session itself is gone
    answer = await tab.browser.get(CONFIG)
    assert answer.status_code == 401 and "session has expired or was ended" in answer.text


async def test_a_page_whose_cookie_the_browser_dropped_is_told_to_reopen_the_tab(tab: Tab) -> None:
    await tab.open()
    tab.clock.current += LIFETIME
    tab.browser.cookies.clear()  # its Max-Age is over
    answer = await tab.browser.get("/ui/sessions/current")
    assert answer.status_code == 401
    assert "reopen the Email tab from the platform" in problem(answer)["title"]


async def test_a_forged_cookie_is_no_session(tab: Tab) -> None:
    tab.browser.cookies.set(COOKIE, "forged")
    answer = await tab.browser.get(CONFIG)
    assert (answer.status_code, problem(answer)["code"]) == (401, "unauthorized")
    assert "Email tab session" in problem(answer)["title"]


# Secrets ------------------------------------------------------------------------------------


async def test_no_answer_ever_holds_the_api_key(tab: Tab) -> None:
    await tab.open()
    await email_tab_answers(tab)
    await tab.browser.post("/ui/sessions/renew")
    await tab.browser.delete("/ui/sessions/current")
    _, _, key_secret = OPERATOR.token.split("_", 2)
    assert len(tab.answers) > len(EMAIL_TAB_CALLS)
    assert not [answer for answer in tab.answers if key_secret in answer]


async def test_a_live_feed_opened_with_a_session_ends_when_the_session_does() -> None:
    """The stream stops at the session's end and closes the feed (its subscriptions go); the
    browser's EventSource reconnects, and the renewed, or refused, session decides."""
    clock, deadline = FixedClock(), FixedClock().now() + timedelta(minutes=15)
    closed: list[bool] = []

    async def feed() -> AsyncIterator[str]:
        try:
            for event in ("snapshot", "status", "heartbeat", "status"):
                yield event
                if event == "status":
                    clock.current = deadline  # fifteen minutes later
        finally:
            closed.append(True)

    seen = [event async for event in until(deadline, feed(), clock)]

    assert seen == ["snapshot", "status"]
    assert closed == [True]
