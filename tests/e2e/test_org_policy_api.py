"""The org routes and the policy banners as a client sees them: config-api forwarding to the real
policy service, org keys kept to their org, secrets write-only, the banners on an agent's config,
policy changes on the live feed, and an agent's page that still answers while policy is down."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from mailbridge.config_api.adapters.live import FEEDS
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem
from tests.e2e.databases import org_client
from tests.e2e.test_config_api import matching, sse_events

ORG_SECRET = "org-secret-" + new_id()
MICROSOFT_APP = {
    "client_id": "00000000-0000-0000-0000-0000000000aa",
    "client_secret": ORG_SECRET,
    "tenant_id": "acme.example",
}
CLIENT_ORG = {
    "name": "Acme EMEA",
    "email_domain": "acme.example",
    "restrictions": {"allowed_recipients": ["acme.example"], "max_per_day": 50},
}


async def new_agent(
    api: httpx.AsyncClient,
    org_id: str,
    config: dict[str, Any] | None,
    client_org: str | None = None,
) -> str:
    agent_id = new_id("agent")
    agent = {"org_id": org_id, "client_org_id": client_org, "name": "Support"}
    (await api.put(f"/bridge/agents/{agent_id}", json=agent)).raise_for_status()
    if config is not None:
        saved = await api.put(f"/bridge/agents/{agent_id}/email-config", json=config)
        assert saved.status_code == 200, saved.text
    return agent_id


async def shown(api: httpx.AsyncClient, agent_id: str) -> dict[str, Any]:
    answer = await api.get(f"/bridge/agents/{agent_id}/email-config")
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_an_org_key_reaches_its_own_org_and_another_org_reads_as_missing(
    system: RunningSystem,
) -> None:
    own_org, other_org = new_id("org"), new_id("org")
    async with org_client(system, own_org) as own, org_client(system, other_org) as other:
        put = await own.put(
            f"/bridge/orgs/{own_org}/email-config", json={"microsoft": MICROSOFT_APP}
        )
        client_org = await own.put(f"/bridge/orgs/{own_org}/client-orgs/emea", json=CLIENT_ORG)
        foreign = await other.get(f"/bridge/orgs/{own_org}/email-config")
        foreign_put = await other.put(f"/bridge/orgs/{own_org}/email-config", json={})
        foreign_client_org = await other.get(f"/bridge/orgs/{own_org}/client-orgs/emea")
        missing_client_org = await other.get(f"/bridge/orgs/{other_org}/client-orgs/emea")
        still = await own.get(f"/bridge/orgs/{own_org}/email-config")

    assert (put.status_code, client_org.status_code) == (200, 200), (put.text, client_org.text)
    for refused in (foreign, foreign_put, foreign_client_org):
        assert refused.status_code == 404, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "not_found"
    # another org's client org is indistinguishable from one that does not exist
    assert foreign_client_org.text == missing_client_org.text
    assert still.json()["microsoft"]["client_id"] == MICROSOFT_APP["client_id"]  # untouched


async def test_an_org_apps_secret_is_write_only_and_delete_clears_the_apps(
    api: httpx.AsyncClient,
) -> None:
    path = f"/bridge/orgs/{new_id('org')}/email-config"

    empty = await api.get(path)
    put = await api.put(path, json={"microsoft": MICROSOFT_APP})
    got = await api.get(path)
    kept = await api.put(path, json={"microsoft": MICROSOFT_APP | {"client_secret": None}})
    deleted = await api.delete(path)
    after = await api.get(path)

    assert empty.status_code == 200
    assert (empty.json()["microsoft"], empty.json()["google"]) == (None, None)
    for answer in (put, got, kept):
        assert answer.status_code == 200, answer.text
        assert answer.json()["microsoft"]["has_client_secret"] is True  # omitted: kept
        assert ORG_SECRET not in answer.text
    assert got.json()["microsoft"]["tenant_id"] == "acme.example"
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert after.json()["microsoft"] is None


async def test_client_orgs_round_trip_and_unknown_ones_are_404(api: httpx.AsyncClient) -> None:
    path = f"/bridge/orgs/{new_id('org')}/client-orgs/{new_id('client')}"

    put = await api.put(path, json=CLIENT_ORG)
    got = await api.get(path)
    deleted = await api.delete(path)
    gone, deleted_again = await api.get(path), await api.delete(path)
    refused = [
        await api.put(path, json={**CLIENT_ORG, "email_domain": "not a domain"}),
        await api.put(path, json={**CLIENT_ORG, "restrictions": {"max_per_day": False}}),
    ]

    assert put.status_code == 200, put.text
    assert got.json()["restrictions"]["max_per_day"] == 50
    assert "Sends limited to 50 per day" in got.json()["warnings"]
    assert deleted.status_code == 204
    assert [gone.json()["code"], deleted_again.json()["code"]] == ["not_found", "not_found"]
    for answer in refused:  # policy's own refusal, and a `false` that would have read as 0
        assert (answer.status_code, answer.json()["code"]) == (422, "invalid_input"), answer.text


async def test_an_agent_of_a_client_org_shows_its_banner_and_a_mailbox_outside_its_domain(
    api: httpx.AsyncClient,
) -> None:
    org_id, client_org_id = new_id("org"), new_id("client")
    (
        await api.put(f"/bridge/orgs/{org_id}/client-orgs/{client_org_id}", json=CLIENT_ORG)
    ).raise_for_status()
    imap = {
        "provider": "imap",
        "email": "ops@elsewhere.example",
        "preset": "fastmail",
        "password": "x",
    }
    agent_id = await new_agent(api, org_id, imap, client_org=client_org_id)

    view = await shown(api, agent_id)

    banner = view["client_org"]
    assert (banner["name"], banner["email_domain"]) == ("Acme EMEA", "acme.example")
    assert "Sends limited to 50 per day" in banner["warnings"]
    assert set(banner["warnings"]) <= set(view["warnings"])
    assert any("outside acme.example" in line for line in view["warnings"]), view["warnings"]
    assert view["org_oauth_app"] is None  # an IMAP mailbox has no OAuth app


async def test_an_oauth_config_inherits_the_orgs_app_unless_it_has_its_own(
    api: httpx.AsyncClient,
) -> None:
    org_id = new_id("org")
    without_app = {"provider": "microsoft", "email": "ops@acme.example"}
    refused = await api.put(
        f"/bridge/agents/{await new_agent(api, org_id, None)}/email-config", json=without_app
    )
    (
        await api.put(f"/bridge/orgs/{org_id}/email-config", json={"microsoft": MICROSOFT_APP})
    ).raise_for_status()
    inheriting = await new_agent(api, org_id, without_app)
    own_app = without_app | {
        "client_id": "own-app",
        "client_secret": "own-secret",
        "tenant_id": "common",
    }
    owning = await new_agent(api, org_id, own_app)

    inherited, own = await shown(api, inheriting), await shown(api, owning)

    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
    assert f"/bridge/orgs/{org_id}/email-config" in refused.json()["hint"]
    assert inherited["org_oauth_app"] == {
        "provider": "microsoft",
        "client_id": MICROSOFT_APP["client_id"],
        "tenant_id": "acme.example",
        "inherited": True,
    }
    assert (inherited["has_client_secret"], inherited["status"]) == (
        False,
        "awaiting_authorization",
    )
    assert own["org_oauth_app"]["inherited"] is False
    assert own["org_oauth_app"]["client_id"] == "own-app"
    for view in (inherited, own):
        assert ORG_SECRET not in json.dumps(view) and "own-secret" not in json.dumps(view)


async def test_the_live_feed_shows_its_client_orgs_changes_and_not_another_orgs_namesake(
    api: httpx.AsyncClient,
) -> None:
    org_id, other_org, client_org_id = new_id("org"), new_id("org"), new_id("client")
    agent_id = await new_agent(api, org_id, None, client_org=client_org_id)
    async with api.stream("GET", f"/bridge/agents/{agent_id}/email-config/events") as response:
        events = sse_events(response)
        await matching(events, {"snapshot": lambda _: True})
        namesake = f"/bridge/orgs/{other_org}/client-orgs/{client_org_id}"
        (await api.put(namesake, json=CLIENT_ORG)).raise_for_status()
        ours = f"/bridge/orgs/{org_id}/client-orgs/{client_org_id}"
        (await api.put(ours, json=CLIENT_ORG)).raise_for_status()
        first = (await matching(events, {"policy": lambda _: True}))["policy"]

    # the namesake's change came first on the same subject, and was not shown
    assert json.loads(first["data"])["org_id"] == org_id
    assert json.loads(first["data"])["client_org_id"] == client_org_id
    assert len(first["id"].split("-")) == len(FEEDS)  # a stream position per feed


async def test_with_policy_down_an_agents_page_still_answers_and_org_routes_say_why(
    api: httpx.AsyncClient, system: RunningSystem
) -> None:
    org_id = new_id("org")
    (
        await api.put(f"/bridge/orgs/{org_id}/email-config", json={"microsoft": MICROSOFT_APP})
    ).raise_for_status()
    agent_id = await new_agent(api, org_id, {"provider": "microsoft"}, client_org="emea")
    await asyncio.to_thread(system.supervisor.stop_service, "policy")
    try:
        started = time.monotonic()
        view = await shown(api, agent_id)
        took = time.monotonic() - started
        org = await api.get(f"/bridge/orgs/{org_id}/email-config")
    finally:
        await asyncio.to_thread(system.supervisor.start_service, "policy")
        await asyncio.to_thread(system.supervisor.wait_ready, 60)

    assert (view["status"], view["org_oauth_app"], view["client_org"]) == (
        "awaiting_authorization",
        None,
        None,
    )
    assert took < 5.0  # no responders is answered at once; the banners wait 1 s at most
    assert (org.status_code, org.json()["code"]) == (503, "worker_unavailable")
    assert "policy service" in org.json()["hint"]
