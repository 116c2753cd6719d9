"""The browser of the browser tests: Debian's chromium, driven by Playwright over CDP.

Playwright's own browser download cannot work on an offline machine, so the tests launch the
system's chromium (``apt-get install chromium``, done by ``make install``) headless, with a fresh
profile each launch and every background service that would reach the network switched off."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.async_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
BROWSER_PACKAGES: dict[str, list[str]] = {CHROMIUM: ["chromium"]}
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


async def launch_chromium(playwright: Playwright) -> Browser:
    """A headless chromium with a fresh, throw-away profile (Playwright's ``launch`` makes one)."""
    return await playwright.chromium.launch(
        executable_path=CHROMIUM, args=list(CHROMIUM_ARGS), headless=True
    )
