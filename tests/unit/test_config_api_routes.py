"""config-api's HTTP edge in process: the real app and routes through ``httpx.ASGITransport``, on a
container of fakes. Auth, ``If-Match``, problem+json and field paths fail here in a second, not in
an e2e run (which proves the same against the real services)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, NoReturn

import httpx
import pytest

from mailbridge.config_api.app import create_app
from mailbridge.config_api.container import Container
from mailbridge.config_api.domain.api_keys import StoredKey, new_key
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import (
    AnsweringResults,
    FakeConfigRepository,
    RecordingPublisher,
    RecordingRevoker,
)
from tests.fakes.mail_worker import MemoryContentStore
from tests.fakes.policy_service import FakePolicyService

OPERATOR = new_key()
IMAP = {
    "provider": "imap",
    "email": "agent@example.com",
    "imap": {"host": "imap.example.com", "port": 993, "security": "ssl"},
    "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
    "password": "app-pw",
}
CONFIG = "/bridge/agents/a1/email-config"


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

    async def settle(self, *_: object) -> None:
        return None


class NoLiveFeed:
    def follow(self, *_: object) -> NoReturn:
        raise AssertionError("no live feed in these tests")


async def ready() -> dict[str, bool]:
    return {"nats": True, "database": True}


def container() -> Container:
    return Container(
        settings=ConfigApiSettings.model_construct(test_timeout_seconds=1.0),
        repo=FakeConfigRepository(),
        ledger=NoSends(),  # type: ignore[arg-type]
        content=MemoryContentStore(),
        policy=FakePolicyService(),
        commands=RecordingPublisher(),
        results=AnsweringResults(None),
        keys=OneKey(),
        revoker=RecordingRevoker(),
        live=NoLiveFeed(),  # type: ignore[arg-type]
        sealer=Sealer(parse_keys(generate_key_spec("k1"))),
        readiness=ready,
        clock=FixedClock(),
    )


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async def never_started() -> NoReturn:
        raise AssertionError("the lifespan does not run under ASGITransport")

    app = create_app(never_started)
    app.state.container = container()  # fakes: nothing connects
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {OPERATOR.token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        (await c.put("/bridge/agents/a1", json={"org_id": "acme"})).raise_for_status()
        yield c


def problem(answer: httpx.Response) -> dict[str, Any]:
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["status"] == answer.status_code
    return body


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Bearer mbk_unknown_secret"])
async def test_without_a_valid_key_a_route_answers_401(
    api: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    api.headers.pop("Authorization")
    answer = await api.get(CONFIG, headers=headers)
    assert (answer.status_code, problem(answer)["code"]) == (401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_stale_if_match_is_refused_with_412(api: httpx.AsyncClient) -> None:
    first = (await api.put(CONFIG, json=IMAP)).headers["etag"]
    (await api.put(CONFIG, json=IMAP, headers={"If-Match": first})).raise_for_status()
    refused = await api.put(CONFIG, json=IMAP, headers={"If-Match": first})
    assert (refused.status_code, problem(refused)["code"]) == (412, "precondition_failed")


async def test_a_missing_agent_is_a_404_problem_with_a_hint(api: httpx.AsyncClient) -> None:
    answer = await api.get("/bridge/agents/nobody/email-config")
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (404, "not_found")
    assert body["hint"]


async def test_an_invalid_body_names_the_field_that_is_wrong(api: httpx.AsyncClient) -> None:
    answer = await api.put(CONFIG, json={**IMAP, "imap": {**IMAP["imap"], "port": 0}})
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (422, "invalid_input")
    assert ["body", "imap", "imap", "port"] in [e["loc"] for e in body["errors"]]


async def test_no_worker_answering_the_test_is_a_504(api: httpx.AsyncClient) -> None:
    (await api.put(CONFIG, json=IMAP)).raise_for_status()
    answer = await api.post(f"{CONFIG}/test")
    assert (answer.status_code, problem(answer)["code"]) == (504, "worker_unavailable")


async def test_readiness_answers_each_dependency(api: httpx.AsyncClient) -> None:
    answer = await api.get("/readyz")
    assert answer.json() == {"ready": True, "nats": True, "database": True}
