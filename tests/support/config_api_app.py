"""config-api's real app and routes in process, through ``httpx.ASGITransport``, on a container
of fakes: for the tests of its HTTP edge. Nothing connects, and the lifespan never runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, NoReturn

import httpx
import httpx2
from fastapi import FastAPI
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from mailbridge.config_api.adapters.detection_cache import MemoryDetectionCache
from mailbridge.config_api.app import create_app
from mailbridge.config_api.container import Container
from mailbridge.config_api.domain.api_keys import StoredKey, new_key
from mailbridge.config_api.entrypoints import agent_mcp
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from tests.factories import IMAP_JSON
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import (
    AnsweringResults,
    FakeConfigRepository,
    FakeOAuthBroker,
    MemoryAgentTokens,
    MemoryAuditLog,
    MemoryUiSessions,
    OneMessageMailbox,
    RecordingPublisher,
    RecordingRevoker,
    SettlingLedger,
)
from tests.fakes.detection import FakeAutoconfig, FakeMailDns
from tests.fakes.mail_worker import MemoryContentStore
from tests.fakes.policy_service import FakePolicyService

OPERATOR = new_key()
BASE_URL = "http://api"
UI, ADMIN = "https://ui.example", "https://admin.example"
OAUTH_SETTINGS = ConfigApiSettings.model_construct(
    public_base_url="https://mail.example", ui_origins=f"{UI}, {ADMIN}/"
)
"""Served over HTTPS, with two UI origins that may be told the outcome of a sign-in."""


class OneKey:
    async def find(self, key_id: str) -> StoredKey | None:
        if key_id != OPERATOR.key_id:
            return None
        return StoredKey(OPERATOR.key_id, None, "ops", OPERATOR.secret_hash, revoked=False)


class NoSends:
    async def open(self, *_: object) -> NoReturn:
        raise AssertionError("no send in these tests")

    async def find(self, *_: object) -> None:
        return None

    async def listed(self, *_: object) -> list[object]:
        return []

    async def settle(self, *_: object) -> None:
        return None


class NoApprovals:
    async def hold(self, *_: object) -> NoReturn:
        raise AssertionError("no held send in these tests")

    decide = expire = hold


class NoLiveFeed:
    def follow(self, *_: object) -> NoReturn:
        raise AssertionError("no live feed in these tests")


class NoMailReader:
    async def list_messages(self, *_: object) -> NoReturn:
        raise AssertionError("no mailbox to read in these tests")

    get_message = mark_seen = list_messages


async def ready() -> dict[str, bool]:
    return {"nats": True, "database": True}


def container(**overrides: Any) -> Container:
    """A container of fakes; ``overrides`` replaces some (``settings=…``, ``oauth=…``)."""
    fakes = Container(
        settings=ConfigApiSettings.model_construct(test_timeout_seconds=1.0),
        repo=FakeConfigRepository(),
        ledger=NoSends(),  # type: ignore[arg-type]
        approvals=NoApprovals(),  # type: ignore[arg-type]
        content=MemoryContentStore(),
        policy=FakePolicyService(),
        commands=RecordingPublisher(),
        results=AnsweringResults(None),
        keys=OneKey(),
        agent_tokens=MemoryAgentTokens(),
        ui_sessions=MemoryUiSessions(),
        revoker=RecordingRevoker(),
        oauth=FakeOAuthBroker(),
        live=NoLiveFeed(),  # type: ignore[arg-type]
        sealer=Sealer(parse_keys(generate_key_spec("k1"))),
        readiness=ready,
        mail_dns=FakeMailDns(),
        autoconfig=FakeAutoconfig(),
        detections=MemoryDetectionCache(ttl_seconds=300, max_entries=100),
        mail=NoMailReader(),
        audit=MemoryAuditLog(),
        clock=FixedClock(),
    )
    return replace(fakes, **overrides)


def _client(fakes: Container, headers: dict[str, str]) -> httpx.AsyncClient:
    async def never_started() -> NoReturn:
        raise AssertionError("the lifespan does not run under ASGITransport")

    app = create_app(never_started)
    app.state.container = fakes
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers)


@asynccontextmanager
async def api_client(fakes: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on ``fakes``, with the operator key; agent ``a1`` of org ``acme``
    is registered."""
    async with _client(fakes, {"Authorization": f"Bearer {OPERATOR.token}"}) as c:
        (await c.put("/bridge/agents/a1", json={"org_id": "acme"})).raise_for_status()
        yield c


@asynccontextmanager
async def browser_client(fakes: Container) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on the same ``fakes`` without an API key, keeping its cookies: the
    Email tab's page in a browser."""
    async with _client(fakes, {}) as c:
        yield c


def problem(answer: httpx.Response) -> dict[str, Any]:
    """The problem+json body of an error answer."""
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == answer.status_code
    return body


@asynccontextmanager
async def mcp_session(fakes: Container, token: str) -> AsyncIterator[ClientSession]:
    """The SDK's own client, initialized, on config-api's MCP server in process (on ``fakes``),
    holding ``token``; the SDK's session manager runs for as long as the session."""
    app = FastAPI()
    serve = agent_mcp.mount(app)
    app.state.container = fakes
    transport = httpx2.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        serve(),
        httpx2.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as http,
        streamable_http_client(f"{BASE_URL}{agent_mcp.PATH}", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def agent_with_mailbox() -> tuple[Any, str, str]:
    """Fakes on which agent ``a1`` has a mailbox holding one message and an agent token, its
    sends settling at once: (fakes, token, actor)."""
    fakes = container(
        audit=MemoryAuditLog({"a1": "acme"}), ledger=SettlingLedger(), mail=OneMessageMailbox()
    )
    async with api_client(fakes) as operator:
        saved = await operator.put("/bridge/agents/a1/email-config", json=IMAP_JSON)
        saved.raise_for_status()
        made = (await operator.post("/bridge/agents/a1/agent-tokens")).json()
    return fakes, made["token"], f"agent-token:{made['token_id']}"
