"""A request body over its route's limit is a 413 ``message_too_large`` problem, whether it
declares its length or not; a send may be larger than any other body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from mailbridge.config_api.app import create_app
from mailbridge.config_api.domain.outgoing import MAX_REQUEST_BYTES, MAX_SEND_REQUEST_BYTES


@pytest.fixture
def app() -> FastAPI:
    async def no_container() -> object:
        raise AssertionError("the body is refused before any handler needs the container")

    return create_app(no_container)  # type: ignore[arg-type]


async def send(
    app: FastAPI, method: str, path: str, content: bytes | AsyncIterator[bytes]
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        headers = {"content-type": "application/json"}
        return await client.request(method, path, content=content, headers=headers)


async def chunks(size: int, chunk: int = 256 * 1024) -> AsyncIterator[bytes]:
    for _ in range(size // chunk):
        yield b" " * chunk


def assert_too_large(answer: httpx.Response) -> None:
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "message_too_large"


async def test_a_declared_length_over_the_limit_is_refused(app: FastAPI) -> None:
    assert_too_large(await send(app, "PUT", "/bridge/agents/a1", b" " * (MAX_REQUEST_BYTES + 1)))


async def test_a_chunked_body_is_counted_and_refused_past_the_limit(app: FastAPI) -> None:
    assert_too_large(await send(app, "PUT", "/bridge/agents/a1", chunks(2 * MAX_REQUEST_BYTES)))


async def test_a_send_over_its_own_limit_is_refused(app: FastAPI) -> None:
    path, over = "/bridge/agents/a1/messages", MAX_SEND_REQUEST_BYTES + 256 * 1024
    assert_too_large(await send(app, "POST", path, chunks(over)))
    assert_too_large(await send(app, "POST", path, b" " * over))
