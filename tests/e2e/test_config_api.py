"""config-api as a client uses it: keys and tenancy, optimistic concurrency, presets, sends with
idempotency, outcomes and status driven by events, and the live SSE feed. Real services, real
NATS and PostgreSQL, real Dovecot and Postfix."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
from nats.js import JetStreamContext

from mailbridge.devstack.environment import create_api_key
from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.processes import free_port
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    GrantRevoked,
    MessageSendFailed,
    MessageSent,
    Provider,
    SendOutcome,
)
from tests.e2e.conftest import RunningSystem
from tests.e2e.mailboxes import (
    Agent,
    agent_with_mailbox,
    imap_config,
    publish,
    run_test,
    shown_config,
)
from tests.support.waiting import eventually

MESSAGE = {"to": ["Ada <ada@example.com>"], "subject": "Hello", "text": "Hi Ada"}


async def test_without_a_valid_key_every_route_answers_401(system: RunningSystem) -> None:
    async with httpx.AsyncClient(base_url=system.base_url) as anonymous:
        missing = await anonymous.get("/bridge/agents/a1/email-config")
        forged = await anonymous.get(
            "/bridge/agents/a1/email-config", headers={"Authorization": "Bearer mbk_x_y"}
        )
    assert (missing.status_code, forged.status_code) == (401, 401)
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "unauthorized"


async def test_an_org_key_sees_its_own_agents_and_another_orgs_as_missing(
    api: httpx.AsyncClient, system: RunningSystem, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)  # in org-e2e
    own_key = create_api_key(system.supervisor.services[0], "--org", "org-e2e")
    other_key = create_api_key(system.supervisor.services[0], "--org", "org-other")
    path = f"/bridge/agents/{agent.agent_id}/email-config"
    async with httpx.AsyncClient(base_url=system.base_url) as client:
        own = await client.get(path, headers={"Authorization": f"Bearer {own_key}"})
        other = await client.get(path, headers={"Authorization": f"Bearer {other_key}"})
        missing = await client.get(
            "/bridge/agents/no-such-agent/email-config",
            headers={"Authorization": f"Bearer {other_key}"},
        )
    assert own.status_code == 200
    assert other.status_code == 404
    # indistinguishable from an agent that does not exist, but for the id it names
    assert other.text.replace(agent.agent_id, "X") == missing.text.replace("no-such-agent", "X")


async def test_a_stale_if_match_is_refused_with_412(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/email-config"
    first_etag = (await api.get(path)).headers["etag"]
    config = imap_config(mail_stack.endpoints, agent.address, agent.password)

    accepted = await api.put(path, json=config, headers={"If-Match": first_etag})
    refused = await api.put(path, json=config, headers={"If-Match": first_etag})
    refused_delete = await api.delete(path, headers={"If-Match": first_etag})

    assert accepted.status_code == 200
    assert accepted.headers["etag"] != first_etag
    assert (refused.status_code, refused.json()["code"]) == (412, "precondition_failed")
    assert refused_delete.status_code == 412
    assert (await api.get(path)).headers["etag"] == accepted.headers["etag"]


async def test_an_omitted_password_keeps_the_stored_one(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    config = imap_config(mail_stack.endpoints, agent.address, agent.password)
    del config["password"]

    saved = await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=config)

    assert saved.json()["has_password"] is True
    assert "password" not in saved.text.lower().replace("has_password", "")
    assert (await run_test(api, agent)).json()["ok"] is True  # Dovecot still accepts it


async def test_presets_list_the_providers_and_warn_about_microsoft(api: httpx.AsyncClient) -> None:
    presets = {p["id"]: p for p in (await api.get("/bridge/email-presets")).json()}
    assert {"microsoft365", "gmail", "yahoo", "zoho", "zoho-eu", "fastmail", "custom"} <= set(
        presets
    )
    assert "Microsoft OAuth" in presets["microsoft365"]["warning"]
    assert presets["zoho-eu"]["imap"]["host"] == "imap.zoho.eu"


async def test_the_same_idempotency_key_sends_once(
    api: httpx.AsyncClient, system: RunningSystem, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    key = {"Idempotency-Key": new_id()}

    first = await api.post(path, json=MESSAGE, headers=key)
    second = await api.post(path, json=MESSAGE, headers=key)
    reused = await api.post(path, json={**MESSAGE, "subject": "Other"}, headers=key)

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["command_id"] == second.json()["command_id"]
    assert reused.status_code == 422
    assert await _commands_queued(system, agent) == 1


async def _commands_queued(system: RunningSystem, agent: Agent) -> int:
    connection = await asyncpg.connect(system.postgres_dsn)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM config_api.outbox WHERE subject = $1",
            f"cmd.mail.message.send.v1.{agent.agent_id}",
        )
        return count
    finally:
        await connection.close()


async def test_header_injection_and_bad_addresses_are_refused(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    bad_bodies = [
        {**MESSAGE, "subject": "Hi\r\nBcc: victim@example.com"},
        {**MESSAGE, "to": ["ada@example.com\nBcc: victim@example.com"]},
        {**MESSAGE, "to": ["not an address"]},
        {**MESSAGE, "to": []},
        {**MESSAGE, "in_reply_to": "<a@b>\x00"},
    ]
    for body in bad_bodies:
        answer = await api.post(path, json=body)
        assert answer.status_code == 422, body
        assert answer.json()["code"] == "invalid_input"


async def test_a_send_follows_its_result_events(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    unreachable = imap_config(mail_stack.endpoints, agent.address, agent.password)
    unreachable["smtp"]["port"] = free_port()  # the real worker keeps retrying: only these events
    await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=unreachable)
    path = f"/bridge/agents/{agent.agent_id}/messages"
    sent_id = (await api.post(path, json=MESSAGE)).json()["command_id"]
    failed_id = (await api.post(path, json=MESSAGE)).json()["command_id"]
    assert (await api.get(f"{path}/{sent_id}")).json()["status"] == "queued"

    await publish(js, MessageSent(agent_id=agent.agent_id, command_id=sent_id, message_id="<m@x>"))
    refusal = ErrorInfo.of(ErrorCode.AUTH_FAILED)
    await publish(
        js,
        MessageSendFailed(
            agent_id=agent.agent_id, command_id=failed_id, outcome=SendOutcome.FAILED, error=refusal
        ),
    )

    sent = await eventually(
        lambda: _status_is(api, f"{path}/{sent_id}", "sent"), what="a sent send"
    )
    failed = await eventually(
        lambda: _status_is(api, f"{path}/{failed_id}", "failed"), what="a failed send"
    )
    assert sent["message_id"] == "<m@x>"
    assert failed["error"]["code"] == "auth_failed"

    async def errored() -> dict[str, Any] | None:  # the ledger is settled just before the badge
        shown = await shown_config(api, agent)
        return shown if shown["status"] == "error" else None

    # a send refused for its credentials turns the badge
    shown = await eventually(errored, what="the badge at error")
    assert shown["last_error"]["source"] == "send"


async def _status_is(api: httpx.AsyncClient, path: str, status: str) -> dict[str, Any] | None:
    found: dict[str, Any] = (await api.get(path)).json()
    return found if found["status"] == status else None


async def test_a_revoked_grant_turns_the_badge_to_error(
    api: httpx.AsyncClient, js: JetStreamContext, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)

    await publish(js, GrantRevoked(agent_id=agent.agent_id, provider=Provider.GOOGLE))

    async def errored() -> dict[str, Any] | None:
        shown = await shown_config(api, agent)
        return shown if shown["status"] == "error" else None

    shown = await eventually(errored, what="the badge at error")
    assert shown["last_error"]["code"] == "oauth_token_revoked"
    assert shown["last_error"]["hint"] == "Re-authorize."


async def sse_events(response: httpx.Response) -> AsyncIterator[dict[str, str]]:
    event: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(": ")
            event[field] = value


async def first_of_each(
    events: AsyncIterator[dict[str, str]], *kinds: str
) -> dict[str, dict[str, str]]:
    """The first event of each kind, in whatever order they come."""
    found: dict[str, dict[str, str]] = {}
    async with asyncio.timeout(15):
        async for event in events:
            found.setdefault(event.get("event", ""), event)
            if set(kinds) <= set(found):
                return found
    raise AssertionError(f"missing events: {set(kinds) - set(found)}")


async def matching(
    events: AsyncIterator[dict[str, str]], wanted: dict[str, Any]
) -> dict[str, dict[str, str]]:
    """For each kind, the first event whose data satisfies its predicate, in any arrival order."""
    found: dict[str, dict[str, str]] = {}
    async with asyncio.timeout(15):
        async for event in events:
            kind = event.get("event", "")
            if kind in wanted and kind not in found and wanted[kind](json.loads(event["data"])):
                found[kind] = event
            if found.keys() == wanted.keys():
                return found
    raise AssertionError(f"missing events: {set(wanted) - set(found)}")


async def test_the_live_feed_streams_status_and_test_results_and_resumes(
    api: httpx.AsyncClient, mail_stack: MailStack
) -> None:
    agent = await agent_with_mailbox(api, mail_stack, seen_flags=(False,))
    path = f"/bridge/agents/{agent.agent_id}/email-config/events"
    async with api.stream("GET", path) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        snapshot = (await first_of_each(events, "snapshot"))["snapshot"]
        assert json.loads(snapshot["data"])["status"] == "configured"
        await run_test(api, agent)
        # the save's own "configured" change may still be on its way through the outbox
        live = await matching(
            events,
            {"status": lambda data: data["status"] == "connected", "test_result": lambda _: True},
        )
    connected, tested = live["status"], live["test_result"]
    assert json.loads(tested["data"])["inbox_total"] == 1
    last_seen = max((connected, tested), key=lambda e: sum(map(int, e["id"].split("-"))))

    config = imap_config(mail_stack.endpoints, agent.address, "now-wrong")
    await api.put(f"/bridge/agents/{agent.agent_id}/email-config", json=config)  # → configured
    headers = {"Last-Event-ID": last_seen["id"]}
    async with api.stream("GET", path, headers=headers) as resumed:
        missed = (await first_of_each(sse_events(resumed), "status"))["status"]
    assert json.loads(missed["data"])["status"] == "configured"  # the one it missed, not older


async def test_metrics_count_requests_by_route(api: httpx.AsyncClient) -> None:
    await api.get("/bridge/email-presets")
    metrics = (await api.get("/metrics")).text
    assert 'route="/bridge/email-presets"' in metrics
