"""The Authorize popup in a real browser (Debian's chromium): the callback page tells the window
that opened it, at the one UI origin the flow was begun from, and no other window."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from playwright.async_api import BrowserContext, Page

from mailbridge.devstack.sandbox import SandboxProvider
from tests.e2e.conftest import RunningSystem
from tests.e2e.oauth_agents import OAuthAgent, authorize, connected, oauth_agent

# What a window listens with: every message it is posted, and what its tabs broadcast.
LISTEN = """() => {
  window.received = [];
  window.broadcast = [];
  addEventListener("message", (e) => window.received.push({origin: e.origin, data: e.data}));
  new BroadcastChannel("mailbridge:oauth").onmessage = (e) => window.broadcast.push(e.data);
}"""


async def listening_window(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url)
    await page.evaluate(LISTEN)
    return page


async def allow_in_popup(opener: Page, agent: OAuthAgent, authorization_url: str) -> None:
    """Open the Authorize popup from ``opener``, sign in as the agent's mailbox, click Allow."""
    async with opener.context.expect_page() as opened:
        await opener.evaluate(
            "(url) => window.open(url, 'mailbridge-oauth', 'popup')", authorization_url
        )
    popup = await opened.value
    await popup.fill("input[name=email]", agent.email)
    async with popup.expect_event("close"):  # the callback page closes itself once it has told
        await popup.click("button[value=allow]")


def origin(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


async def test_the_opener_at_the_ui_origin_is_told_the_flow_completed(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    agent = await oauth_agent(api, system.base_url, sandbox, "google")
    tab = await listening_window(browser_context, f"{system.base_url}/healthz")
    begun = await authorize(api, agent, origin=origin(system.base_url))

    await allow_in_popup(tab, agent, begun["authorization_url"])

    await tab.wait_for_function("window.received.length > 0")
    [message] = await tab.evaluate("window.received")
    assert message["origin"] == origin(system.base_url)
    assert message["data"] == {
        "type": "mailbridge:oauth",
        "flow_id": begun["flow_id"],
        "status": "completed",
    }
    assert await tab.evaluate("window.broadcast") == [message["data"]]
    await connected(api, agent)


async def test_a_window_at_another_origin_is_told_nothing(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    """The popup opened from ``localhost`` (not a UI origin) for a flow begun at ``127.0.0.1``:
    the opener hears nothing, while a tab at the UI origin hears the broadcast."""
    agent = await oauth_agent(api, system.base_url, sandbox, "microsoft")
    ui_origin = origin(system.base_url)
    foreign = system.base_url.replace("127.0.0.1", "localhost")
    assert origin(foreign) != ui_origin
    elsewhere = await listening_window(browser_context, f"{foreign}/healthz")
    ui_tab = await listening_window(browser_context, f"{system.base_url}/healthz")
    begun = await authorize(api, agent, origin=ui_origin)

    await allow_in_popup(elsewhere, agent, begun["authorization_url"])

    await ui_tab.wait_for_function("window.broadcast.length > 0")
    assert (await ui_tab.evaluate("window.broadcast"))[0]["status"] == "completed"
    assert await ui_tab.evaluate("window.received") == []  # it did not open the popup
    assert await elsewhere.evaluate("window.received.concat(window.broadcast)") == []
    await connected(api, agent)
