"""config-api's HTTP edge in process: the real app and routes through ``httpx.ASGITransport``, on a
container of fakes. Auth, ``If-Match``, problem+json and field paths fail here in a second, not in
an e2e run (which proves the same against the real services)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from mailbridge.config_api.domain.api_keys import StoredKey
from tests.factories import IMAP_JSON
from tests.support.config_api_app import OneKey, api_client, container, problem

CONFIG = "/bridge/agents/a1/email-config"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(container()) as client:
        yield client


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
    first = (await api.put(CONFIG, json=IMAP_JSON)).headers["etag"]
    (await api.put(CONFIG, json=IMAP_JSON, headers={"If-Match": first})).raise_for_status()
    refused = await api.put(CONFIG, json=IMAP_JSON, headers={"If-Match": first})
    assert (refused.status_code, problem(refused)["code"]) == (412, "precondition_failed")


async def test_a_missing_agent_is_a_404_problem_with_a_hint(api: httpx.AsyncClient) -> None:
    answer = await api.get("/bridge/agents/nobody/email-config")
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (404, "not_found")
    assert body["hint"]


async def test_an_invalid_body_names_the_field_that_is_wrong(api: httpx.AsyncClient) -> None:
    answer = await api.put(CONFIG, json={**IMAP_JSON, "imap": {**IMAP_JSON["imap"], "port": 0}})
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (422, "invalid_input")
    assert ["body", "imap", "imap", "port"] in [e["loc"] for e in body["errors"]]


async def test_no_worker_answering_the_test_is_a_504(api: httpx.AsyncClient) -> None:
    (await api.put(CONFIG, json=IMAP_JSON)).raise_for_status()
    answer = await api.post(f"{CONFIG}/test")
    assert (answer.status_code, problem(answer)["code"]) == (504, "worker_unavailable")


async def test_readiness_answers_each_dependency(api: httpx.AsyncClient) -> None:
    answer = await api.get("/readyz")
    assert answer.json() == {"ready": True, "nats": True, "database": True}


class KeysOnADatabase(OneKey):
    """The key store, until PostgreSQL stops: then asyncpg's own errors, as the pool raises them."""

    error: Exception | None = None

    async def find(self, key_id: str) -> StoredKey | None:
        if self.error is not None:
            raise self.error
        return await super().find(key_id)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    ],
)
async def test_a_database_away_is_a_503_database_unavailable_never_a_500(error: Exception) -> None:
    keys = KeysOnADatabase()
    async with api_client(container(keys=keys)) as api:
        keys.error = error
        answer = await api.get(CONFIG)
    body = problem(answer)
    assert (answer.status_code, body["code"]) == (503, "database_unavailable")
    assert body["hint"] and answer.headers["retry-after"] == "5"


async def test_a_misspelt_query_parameter_is_refused_not_ignored(api: httpx.AsyncClient) -> None:
    """``?stauts=held`` would otherwise answer every send as if no filter were asked."""
    refused = await api.get("/bridge/agents/a1/messages", params={"stauts": "held"})
    assert (refused.status_code, problem(refused)["code"]) == (422, "invalid_input")
    assert "stauts" in str(problem(refused))
    listed = await api.get("/bridge/agents/a1/messages", params={"status": "held"})
    assert listed.status_code != 422, "a declared parameter passes the check"
