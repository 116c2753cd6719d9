"""The Email tab as a person uses it, in chromium: open the platform's session link, pick a
method, fill the form by its labels, press the buttons, read what the page says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import BrowserContext, Locator, Page, expect

WAIT_MS = 60_000  # a connection test or a sign-in, through the real services
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".data" / "screenshots"  # one is in docs/


async def session_url(api: httpx.AsyncClient, agent_id: str) -> str:
    """What the platform's backend does with its API key: a link for one agent's tab."""
    answer = await api.post(f"/bridge/agents/{agent_id}/ui-sessions")
    assert answer.status_code == 201, answer.text
    return str(answer.json()["url"])


@dataclass
class EmailTab:
    page: Page

    @classmethod
    async def open(cls, context: BrowserContext, api: httpx.AsyncClient, agent_id: str) -> EmailTab:
        page = await context.new_page()
        await page.goto(await session_url(api, agent_id))
        tab = cls(page)
        await expect(page.locator("#tab")).to_have_attribute("aria-busy", "false")
        return tab

    async def badge_shows(self, label: str) -> None:
        await expect(self.page.locator("#badge")).to_have_text(label, timeout=WAIT_MS)

    async def choose(self, card: str) -> None:
        await self.page.get_by_role("radio", name=card).click()

    @property
    def form(self) -> Locator:
        """The form of the chosen method (the other two are hidden)."""
        return self.page.locator("form.method-form:not([hidden])")

    def field(self, label: str) -> Locator:
        return self.form.get_by_label(label, exact=True)

    async def fill(self, label: str, value: str) -> None:
        await self.field(label).fill(value)

    async def fill_in(self, group: str, label: str, value: str) -> None:
        """A field of the IMAP or SMTP server group (both have Host, Port and Security)."""
        await self.form.get_by_role("group", name=group).get_by_label(label).fill(value)

    async def press(self, button: str) -> None:
        await self.page.get_by_role("button", name=button, exact=True).click()

    async def says(self, selector: str, text: str) -> None:
        await expect(self.page.locator(selector)).to_contain_text(text, timeout=WAIT_MS)

    async def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
