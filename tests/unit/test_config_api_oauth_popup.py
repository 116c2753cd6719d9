"""The OAuth popup's pages, the broker faked: ``start`` binds the flow to the browser with a
cookie and redirects; ``callback`` answers the page that tells the flow's UI origin, and no other,
what happened, in the broker's words, without the code or the state."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from mailbridge.config_api.entrypoints.observability import AccessLogWithoutQuery
from mailbridge.config_api.settings import ConfigApiSettings
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    CompleteOAuthFlow,
    FlowStatus,
    OAuthFlowCompleted,
    OAuthFlowStarted,
    StartOAuthFlow,
)
from tests.fakes.config_api import FakeOAuthBroker
from tests.support.config_api_app import ADMIN, OAUTH_SETTINGS, api_client, container

START, CALLBACK = "/api/engine/oauth/start", "/api/engine/oauth/callback"
CODE, STATE_SECRET = "code-4Yq9-secret", "state-secret-Zr81"


@pytest.fixture
def broker() -> FakeOAuthBroker:
    return FakeOAuthBroker()


@pytest.fixture
async def api(broker: FakeOAuthBroker) -> AsyncIterator[httpx.AsyncClient]:
    """A browser: no API key."""
    async with api_client(container(settings=OAUTH_SETTINGS, oauth=broker)) as client:
        client.headers.pop("Authorization")
        yield client


# start ------------------------------------------------------------------------------------------


def cookies_set(answer: httpx.Response) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    for header in answer.headers.get_list("set-cookie"):
        jar.load(header)
    return jar


async def test_start_binds_the_flow_to_this_browser_and_redirects_to_the_provider(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    answer = await api.get(START, params={"flow": "flow_1"})

    assert (answer.status_code, answer.headers["location"]) == (302, broker.started.redirect_url)
    [request] = broker.asked
    assert isinstance(request, StartOAuthFlow) and request.flow_id == "flow_1"
    cookie = cookies_set(answer)["mb_oauth_flow_1"]
    assert cookie.value == request.browser_binding.get_secret_value()
    assert len(cookie.value) >= 43  # 256 random bits
    assert (cookie["path"], cookie["max-age"], cookie["samesite"]) == (
        "/api/engine/oauth",
        "600",
        "lax",
    )
    assert cookie["httponly"] and cookie["secure"]


async def test_the_cookie_is_not_secure_only_where_mailbridge_is_served_over_http() -> None:
    plain = ConfigApiSettings.model_construct(public_base_url="http://127.0.0.1:8080")
    async with api_client(container(settings=plain)) as client:
        answer = await client.get(START, params={"flow": "flow_1"})
    cookie = cookies_set(answer)["mb_oauth_flow_1"]
    assert cookie["httponly"] and not cookie["secure"]


async def test_a_start_the_broker_refuses_answers_the_page_in_its_words(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    opened = ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(
        "This sign-in was already opened in a browser.", "Click Authorize again."
    )
    broker.started = OAuthFlowStarted(flow_id="flow_1", error=opened)

    answer = await api.get(START, params={"flow": "flow_1"})

    assert answer.status_code == 400 and "text/html" in answer.headers["content-type"]
    assert "This sign-in was already opened in a browser." in answer.text
    assert result_of(answer) == {
        "type": "mailbridge:oauth", "flow_id": "flow_1", "status": "failed",
        "error": opened.model_dump(mode="json"),
    }  # fmt: skip
    assert target_of(answer) is None and "set-cookie" not in answer.headers


@pytest.mark.parametrize("flow", ["", "flow.1", "flow_*", "x" * 201, "flow>1"])
async def test_a_malformed_flow_id_never_reaches_the_broker(
    api: httpx.AsyncClient, broker: FakeOAuthBroker, flow: str
) -> None:
    answer = await api.get(START, params={"flow": flow})
    assert answer.status_code == 400 and "No such sign-in." in answer.text
    assert result_of(answer)["flow_id"] is None
    assert broker.asked == []


# callback ---------------------------------------------------------------------------------------


def result_of(page: httpx.Response) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="result">(.*?)</script>', page.text)
    assert found is not None, page.text
    result: dict[str, Any] = json.loads(found.group(1))
    return result


def target_of(page: httpx.Response) -> Any:
    """The origin the page's script posts its result to."""
    found = re.search(r"var target = (.*?);", page.text)
    assert found is not None, page.text
    return json.loads(found.group(1))


def completed(status: FlowStatus, *, error: ErrorInfo | None = None, **fields: Any) -> Any:
    return OAuthFlowCompleted(
        flow_id="flow_1", agent_id="a1", status=status.value, ui_origin=ADMIN, error=error,
        **fields,
    )  # fmt: skip


async def land(api: httpx.AsyncClient, **query: str) -> httpx.Response:
    """The provider's redirect back to the callback, in the browser that started the flow."""
    params = {"code": CODE, "state": f"flow_1.{STATE_SECRET}", "iss": "https://idp", **query}
    api.cookies.set("mb_oauth_flow_1", "the-binding")
    return await api.get(CALLBACK, params=params)


async def test_the_callback_page_posts_to_the_flows_origin_only_and_holds_no_code_or_state(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.completed = completed(FlowStatus.COMPLETED, email="ada@gmail.example")

    page = await land(api)

    assert page.status_code == 200
    assert '"status":"completed"' in page.text
    assert result_of(page) == {
        "type": "mailbridge:oauth",
        "flow_id": "flow_1",
        "status": "completed",
    }
    assert target_of(page) == ADMIN and '"*"' not in page.text
    assert "Signed in as ada@gmail.example." in page.text
    assert (
        CODE not in page.text and STATE_SECRET not in page.text and "the-binding" not in page.text
    )
    [request] = broker.asked
    assert isinstance(request, CompleteOAuthFlow)
    assert request.code is not None and request.code.get_secret_value() == CODE
    assert (request.flow_id, request.state, request.browser_binding, request.iss) == (
        "flow_1", f"flow_1.{STATE_SECRET}", "the-binding", "https://idp",
    )  # fmt: skip


async def test_the_page_runs_only_its_own_script_and_is_neither_cached_nor_referred(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.completed = completed(FlowStatus.COMPLETED)

    page = await land(api)

    policy = page.headers["content-security-policy"]
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce is not None and f'<script nonce="{nonce.group(1)}">' in page.text
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert 'BroadcastChannel("mailbridge:oauth")' in page.text and "window.close()" in page.text
    assert (await land(api)).headers["content-security-policy"] != policy  # a nonce each time


async def test_the_callback_deletes_the_flows_cookie(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.completed = completed(FlowStatus.COMPLETED)
    cookie = cookies_set(await land(api))["mb_oauth_flow_1"]
    assert (cookie.value, cookie["max-age"], cookie["path"]) == ("", "0", "/api/engine/oauth")


async def test_a_ui_origin_not_listed_is_never_posted_to(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.completed = completed(FlowStatus.COMPLETED).model_copy(
        update={"ui_origin": "https://evil.example"}
    )
    page = await land(api)
    assert target_of(page) is None and "evil.example" not in page.text


@pytest.mark.parametrize(
    ("status", "message", "status_code"),
    [
        (FlowStatus.FAILED, "This sign-in response was already used.", 400),
        (
            FlowStatus.FAILED,
            "The sign-in was started in another browser: start it again here.",
            400,
        ),
        (FlowStatus.FAILED, "The sign-in took longer than allowed and expired.", 400),
        (FlowStatus.CANCELLED, "Sign-in was cancelled at the provider.", 200),
    ],
)
async def test_the_page_says_the_brokers_words_and_posts_its_error(
    api: httpx.AsyncClient,
    broker: FakeOAuthBroker,
    status: FlowStatus,
    message: str,
    status_code: int,
) -> None:
    error = ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(message, "Click Authorize again.")
    broker.completed = completed(status, error=error)

    page = await land(api)

    assert page.status_code == status_code
    assert f'<p id="message">{message}</p>' in page.text
    assert result_of(page)["status"] == status.value
    assert result_of(page)["error"] == error.model_dump(mode="json")
    assert target_of(page) == ADMIN


async def test_markup_in_the_words_it_shows_is_escaped(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    sneaky = "The provider refused the sign-in (</script><img src=x onerror=alert(1)>&)."
    error = ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED).saying(sneaky)
    broker.completed = completed(FlowStatus.FAILED, error=error)

    page = await land(api, error="</script><img src=x onerror=alert(1)>&")

    assert "<img" not in page.text and page.text.count("</script>") == 2
    assert "&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&amp;" in page.text
    assert "\\u003c/script\\u003e\\u003cimg" in page.text
    assert result_of(page)["error"]["message"] == sneaky


@pytest.mark.parametrize("state", [None, "", "no-dot-but-*", "a b.c"])
async def test_a_redirect_without_a_state_of_ours_never_reaches_the_broker(
    api: httpx.AsyncClient, broker: FakeOAuthBroker, state: str | None
) -> None:
    params = {"code": CODE} if state is None else {"code": CODE, "state": state}
    page = await api.get(CALLBACK, params=params)
    assert page.status_code == 400 and "No such sign-in." in page.text
    assert broker.asked == [] and "set-cookie" not in page.headers


async def test_a_browser_without_the_cookie_sends_an_empty_binding(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.completed = completed(
        FlowStatus.FAILED, error=ErrorInfo.of(ErrorCode.OAUTH_NOT_AUTHORIZED)
    )
    params = {"code": CODE, "state": f"flow_1.{STATE_SECRET}"}
    await api.get(CALLBACK, params=params)
    [request] = broker.asked
    assert isinstance(request, CompleteOAuthFlow) and request.browser_binding == ""


async def test_a_broker_that_does_not_answer_keeps_the_cookie_for_a_retry(
    api: httpx.AsyncClient, broker: FakeOAuthBroker
) -> None:
    broker.down = True
    page = await land(api)
    assert page.status_code == 503 and "oauth-broker did not answer" in page.text
    assert "set-cookie" not in page.headers


def test_the_access_log_shows_the_callback_without_its_code() -> None:
    """uvicorn logs ``%s - "%s %s HTTP/%s" %d`` with the full path; the code must not reach it."""
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/engine/oauth/callback?code=c0de&state=s", "1.1", 200),
        None,
    )  # fmt: skip

    assert AccessLogWithoutQuery().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5000 - "GET /api/engine/oauth/callback HTTP/1.1" 200'
