"""The Email tab in a real browser (Debian's chromium) against the running services, the real
local mail stack and the sandbox OAuth provider: what a person sees and does, end to end."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import BrowserContext, Page, expect

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.sandbox import SandboxProvider
from mailbridge.shared.ids import new_id
from tests.e2e.conftest import RunningSystem
from tests.e2e.email_tab import WAIT_MS, EmailTab, session_url
from tests.e2e.mailboxes import Agent
from tests.support.dns_server import DnsServer

ORG = "org-tab"


async def new_agent(api: httpx.AsyncClient, org: str = ORG, **agent: str) -> str:
    agent_id = new_id("agent")
    body = {"org_id": org, "name": f"Support bot {agent_id[-4:]}", **agent}
    (await api.put(f"/bridge/agents/{agent_id}", json=body)).raise_for_status()
    return agent_id


async def mailbox(mail_stack: MailStack, agent_id: str, *, total: int, unread: int) -> Agent:
    password = "app-" + new_id()
    address = await asyncio.to_thread(
        mail_stack.create_mailbox, agent_id.replace("_", "-"), password
    )
    for number in range(total):
        await asyncio.to_thread(
            mail_stack.seed_message,
            address, subject=f"message {number}", body="hi", seen=number >= unread,
        )  # fmt: skip
    return Agent(agent_id, address, password)


async def fill_custom_imap(
    tab: EmailTab, mail_stack: MailStack, agent: Agent, password: str
) -> None:
    mail = mail_stack.endpoints
    await tab.fill("Email address", agent.address)
    await tab.page.get_by_label("Provider").select_option("custom")
    await tab.fill_in("Incoming mail (IMAP)", "Host", mail.host)
    await tab.fill_in("Incoming mail (IMAP)", "Port", str(mail.imap_port))
    await (
        tab.page.get_by_role("group", name="Incoming mail (IMAP)")
        .get_by_label("Security")
        .select_option("ssl")
    )
    await tab.fill_in("Outgoing mail (SMTP)", "Host", mail.host)
    await tab.fill_in("Outgoing mail (SMTP)", "Port", str(mail.smtp_starttls_port))
    await tab.fill("App password", password)


async def test_a_preset_fills_the_servers_and_saving_makes_it_configured(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    tab = await EmailTab.open(browser_context, api, await new_agent(api))
    await tab.badge_shows("Not Connected")

    await tab.fill("Email address", "ada@fastmail.com")
    await tab.page.get_by_label("Provider").select_option("fastmail")
    await tab.fill("App password", "an-app-password")
    await tab.press("Save Configuration")

    await tab.badge_shows("Configured")
    imap = tab.page.get_by_role("group", name="Incoming mail (IMAP)")
    await expect(imap.get_by_label("Host")).to_have_value("imap.fastmail.com")
    await expect(imap.get_by_label("Port")).to_have_value("993")
    await expect(tab.field("App password")).to_have_value("")
    await expect(tab.field("App password")).to_have_attribute(
        "placeholder", "saved (leave empty to keep)"
    )


async def test_custom_servers_connect_live_with_the_mailboxs_counts(
    api: httpx.AsyncClient,
    system: RunningSystem,
    mail_stack: MailStack,
    browser_context: BrowserContext,
) -> None:
    agent = await mailbox(mail_stack, await new_agent(api), total=3, unread=2)
    tab = await EmailTab.open(browser_context, api, agent.agent_id)

    await fill_custom_imap(tab, mail_stack, agent, agent.password)
    await tab.press("Save Configuration")
    await tab.badge_shows("Configured")
    await tab.press("Test Connection")

    await tab.badge_shows("Connected")  # from the live stream: the page was never reloaded
    await tab.says("#result-email", agent.address)
    await tab.says("#result-total", "3")
    await tab.says("#result-unread", "2")
    await tab.says("#result-checks", "IMAP: ok")
    await tab.screenshot("connected")


async def test_a_wrong_password_shows_the_error_and_its_fix_then_the_right_one_connects(
    api: httpx.AsyncClient,
    system: RunningSystem,
    mail_stack: MailStack,
    browser_context: BrowserContext,
) -> None:
    agent = await mailbox(mail_stack, await new_agent(api), total=1, unread=1)
    tab = await EmailTab.open(browser_context, api, agent.agent_id)
    await fill_custom_imap(tab, mail_stack, agent, "not-the-password")
    await tab.press("Save Configuration")
    await tab.press("Test Connection")

    await tab.badge_shows("Error")
    await tab.says("#last-error", "Regenerate the app password")
    await tab.screenshot("error")

    await tab.fill("App password", agent.password)
    await tab.press("Save Configuration")
    await tab.press("Test Connection")
    await tab.badge_shows("Connected")
    await expect(tab.page.locator("#last-error")).to_be_hidden()


async def google_agent(
    api: httpx.AsyncClient, system: RunningSystem, sandbox: SandboxProvider
) -> tuple[str, str, str, str]:
    agent_id, suffix = await new_agent(api), secrets.token_hex(4)
    email, client_id, secret = f"tab-{suffix}@google.example", f"tab-{suffix}", f"s-{suffix}"
    callback = f"{system.base_url}/api/engine/oauth/callback"
    sandbox.admin.register_client("google", client_id, secret, [callback])
    sandbox.admin.add_user("google", email, inbox_total=5, unread=3)
    return agent_id, email, client_id, secret


async def saved_google_tab(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    context: BrowserContext,
) -> tuple[EmailTab, str]:
    agent_id, email, client_id, secret = await google_agent(api, system, sandbox)
    tab = await EmailTab.open(context, api, agent_id)
    await tab.choose("Google OAuth")
    await tab.fill("Mailbox address (optional: the sign-in confirms it)", email)
    await tab.fill("Client ID", client_id)
    await tab.fill("Client secret", secret)
    await tab.press("Save Configuration")
    await tab.badge_shows("Awaiting Authorization")
    return tab, email


async def authorize_in_popup(tab: EmailTab, *, allow: bool = True) -> Page:
    async with tab.page.context.expect_page() as opened:
        await tab.press("Authorize")
    popup = await opened.value
    await popup.wait_for_selector("button[value=allow]")
    if allow:
        async with popup.expect_event("close"):
            await popup.click("button[value=allow]")
    return popup


async def test_google_oauth_authorize_in_a_popup_connects_and_offers_reauthorize(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    tab, email = await saved_google_tab(api, system, sandbox, browser_context)
    await expect(tab.page.get_by_role("button", name="Re-authorize (Update Scopes)")).to_be_hidden()

    await authorize_in_popup(tab)

    await tab.badge_shows("Connected")
    await tab.says("#result-email", email)
    await tab.says("#result-total", "5")
    await tab.says("#result-unread", "3")
    await expect(
        tab.page.get_by_role("button", name="Re-authorize (Update Scopes)")
    ).to_be_visible()


async def test_closing_the_popup_says_authorization_was_cancelled(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    tab, _ = await saved_google_tab(api, system, sandbox, browser_context)

    popup = await authorize_in_popup(tab, allow=False)
    await popup.close()

    await tab.says("#flow-message", "Authorization was cancelled")
    await tab.badge_shows("Awaiting Authorization")


async def test_a_blocked_popup_offers_a_link_that_completes_the_same_flow(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    await browser_context.add_init_script("window.open = () => null;")  # the popup blocker
    tab, _ = await saved_google_tab(api, system, sandbox, browser_context)

    await tab.press("Authorize")
    await tab.says("#flow-message", "Allow popups for this site")
    async with browser_context.expect_page() as opened:
        await tab.page.get_by_role("link", name="open the sign-in here").click()
    signing_in = await opened.value
    await signing_in.click("button[value=allow]")

    await tab.badge_shows("Connected")
    await tab.says("#flow-message", "Signed in")


async def test_with_the_opener_cut_by_coop_the_page_learns_the_outcome_by_polling(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    """Microsoft's Cross-Origin-Opener-Policy leaves the popup without ``window.opener``; here the
    callback page also has no BroadcastChannel, so only ``GET /bridge/oauth/flows`` can tell."""
    await browser_context.add_init_script(
        "if (location.pathname === '/api/engine/oauth/callback') {"
        " Object.defineProperty(window, 'opener', {get: () => null});"
        " delete window.BroadcastChannel; }"
    )
    tab, _ = await saved_google_tab(api, system, sandbox, browser_context)

    await authorize_in_popup(tab)

    await tab.says("#flow-message", "Signed in")
    await tab.badge_shows("Connected")


async def test_a_message_from_another_origin_changes_nothing(
    api: httpx.AsyncClient,
    system: RunningSystem,
    sandbox: SandboxProvider,
    browser_context: BrowserContext,
) -> None:
    """The provider's page in the popup (another origin) forges the callback's message, with the
    right flow id: the tab must not take it."""
    tab, _ = await saved_google_tab(api, system, sandbox, browser_context)
    popup = await authorize_in_popup(tab, allow=False)
    flow_id = parse_qs(urlsplit(popup.url).query)["state"][0].split(".")[0]
    await tab.page.evaluate(
        "() => { window.heard = []; addEventListener('message', (e) => heard.push(e.origin)); }"
    )
    forged = {"type": "mailbridge:oauth", "flow_id": flow_id, "status": "completed"}

    await popup.evaluate("(m) => window.opener.postMessage(m, '*')", forged)

    await tab.page.wait_for_function("window.heard.length > 0")  # after the tab's own listener
    assert await tab.page.evaluate("window.heard") == [sandbox.base_url]
    await expect(tab.page.locator("#flow-message")).to_contain_text("Sign in to the mailbox")
    await tab.badge_shows("Awaiting Authorization")
    await popup.close()


async def test_the_org_app_and_client_org_banners_then_disconnect(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    org, client = f"org-{new_id()[-8:]}", "acme"
    shared = {
        "microsoft": {
            "client_id": "org-ms-app",
            "client_secret": "s",
            "tenant_id": "contoso.example",
        }
    }
    assert (await api.put(f"/bridge/orgs/{org}/email-config", json=shared)).status_code == 200
    client_org = {
        "name": "Acme Corp",
        "email_domain": "acme.example",
        "restrictions": {"allowed_recipients": ["acme.example"], "max_per_hour": 20},
    }
    answer = await api.put(f"/bridge/orgs/{org}/client-orgs/{client}", json=client_org)
    assert answer.status_code == 200, answer.text
    agent_id = await new_agent(api, org, client_org_id=client)
    tab = await EmailTab.open(browser_context, api, agent_id)

    await tab.choose("Microsoft OAuth")
    await tab.press("Save Configuration")

    await tab.badge_shows("Awaiting Authorization")
    await tab.says("#org-banner", "organization's Microsoft OAuth app (client org-ms-app) is used")
    await expect(tab.field("Client secret")).to_be_hidden()
    await tab.says("#client-org-banner", "Acme Corp, sending from @acme.example")
    await tab.says("#client-org-banner", "20")
    await tab.screenshot("banners")
    await tab.press("Disconnect")
    await tab.page.get_by_role("dialog").get_by_role("button", name="Disconnect").click()
    await tab.badge_shows("Not Connected")


async def test_a_session_is_for_one_agent_and_no_key_reaches_the_browser(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    mine, theirs = await new_agent(api), await new_agent(api)
    seen: list[str] = []
    browser_context.on("request", lambda request: seen.append(f"{request.url} {request.headers}"))
    tab = await EmailTab.open(browser_context, api, mine)

    other = await tab.page.evaluate(
        "(id) => fetch(`/bridge/agents/${id}/email-config`).then((r) => r.status)", theirs
    )
    org_route = await tab.page.evaluate(
        f"() => fetch('/bridge/orgs/{ORG}/email-config').then((r) => r.status)"
    )
    storage = await tab.page.evaluate(
        "() => JSON.stringify([document.cookie, {...localStorage}, {...sessionStorage}])"
    )
    html = await tab.page.content()

    assert (other, org_route) == (404, 401)
    key = system.operator_key
    for place in (storage, html, *seen):
        assert key not in place and "mbk_" not in place
    assert "#session=" not in tab.page.url  # the link's token left the address bar


async def test_an_expired_or_reused_link_is_refused_with_a_clear_page(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    agent_id = await new_agent(api)
    url = await session_url(api, agent_id)
    first = await browser_context.new_page()
    await first.goto(url)
    await expect(first.locator("#badge")).to_have_text("Not Connected", timeout=WAIT_MS)

    again = await browser_context.browser.new_context()  # type: ignore[union-attr]
    reused = await again.new_page()
    await reused.goto(url)

    await expect(reused.locator("#session-problem")).to_contain_text(
        "used already or has expired: reopen the Email tab from the platform", timeout=WAIT_MS
    )
    await again.close()


async def test_axe_finds_no_serious_or_critical_violation(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    tab = await EmailTab.open(browser_context, api, await new_agent(api))
    await tab.badge_shows("Not Connected")
    await tab.screenshot("not-connected")
    results = []
    for card in ("Email + Password", "Microsoft OAuth", "Google OAuth"):
        await tab.choose(card)
        results.append(await Axe().run(tab.page))

    serious = [
        (violation["id"], violation["help"])
        for result in results
        for violation in result.response["violations"]
        if violation["impact"] in {"serious", "critical"}
    ]
    assert serious == []


async def test_a_session_that_expires_while_the_tab_is_open_shows_a_clear_page(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    agent_id = await new_agent(api)
    tab = await EmailTab.open(browser_context, api, agent_id)
    await tab.badge_shows("Not Connected")
    connection = await asyncpg.connect(system.database_url)
    try:  # fifteen minutes pass with the tab left alone
        await connection.execute(
            "UPDATE config_api.ui_sessions SET expires_at = now() - interval '1 second'"
            " WHERE agent_id = $1",
            agent_id,
        )
    finally:
        await connection.close()

    await tab.page.reload()

    await tab.says("#session-problem", "session has expired")
    await tab.says("#session-problem", "reopen the Email tab from the platform")
    await expect(tab.page.get_by_role("button", name="Save Configuration")).to_be_disabled()


async def test_an_invalid_field_is_named_next_to_it(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    tab = await EmailTab.open(browser_context, api, await new_agent(api))
    await tab.fill("Email address", "ada@example.com")
    await tab.fill_in("Incoming mail (IMAP)", "Host", "imap.example.com")
    await tab.fill_in("Incoming mail (IMAP)", "Port", "70000")
    await tab.fill_in("Outgoing mail (SMTP)", "Host", "smtp.example.com")
    await tab.fill_in("Outgoing mail (SMTP)", "Port", "587")
    await tab.fill("App password", "an-app-password")

    await tab.press("Save Configuration")

    imap = tab.form.get_by_role("group", name="Incoming mail (IMAP)")
    await expect(imap.locator('.field-error[data-for="imap.port"]')).to_contain_text("65535")
    await expect(imap.get_by_label("Port")).to_have_attribute("aria-invalid", "true")
    await tab.badge_shows("Not Connected")


async def test_the_tab_fits_a_narrow_window_and_works_with_the_keyboard(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    tab = await EmailTab.open(browser_context, api, await new_agent(api))
    await tab.page.set_viewport_size({"width": 360, "height": 780})
    await tab.badge_shows("Not Connected")

    await tab.page.get_by_role("radio", name="Email + Password").focus()
    await tab.page.keyboard.press("ArrowRight")
    await tab.page.keyboard.press("ArrowRight")

    google = tab.page.get_by_role("radio", name="Google OAuth")
    await expect(google).to_be_focused()
    await expect(google).to_have_attribute("aria-checked", "true")
    await expect(tab.field("Client ID")).to_be_visible()
    overflow = await tab.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await tab.screenshot("narrow")


async def test_typing_the_address_offers_detected_settings_and_suggests_oauth(
    api: httpx.AsyncClient,
    system: RunningSystem,
    loopback_dns: DnsServer,
    browser_context: BrowserContext,
) -> None:
    domain = f"tab-{secrets.token_hex(3)}.example"
    loopback_dns.records[domain] = {
        "MX": [f"10 {domain.replace('.', '-')}.mail.protection.outlook.com."]
    }
    tab = await EmailTab.open(browser_context, api, await new_agent(api))

    await tab.fill("Email address", "ada@gmail.com")  # a known domain: no DNS at all
    await tab.says("#detected", "imap.gmail.com:993")
    await tab.says("#detected", "Google OAuth is recommended")
    await tab.press("Use these settings")
    await expect(tab.field("Provider")).to_have_value("gmail")
    imap = tab.form.get_by_role("group", name="Incoming mail (IMAP)")
    await expect(imap.get_by_label("Host")).to_have_value("imap.gmail.com")

    await tab.fill("Email address", f"ada@{domain}")  # its MX is Microsoft 365's
    await tab.says("#detected", "(mx)")
    await tab.says("#detected", "Microsoft OAuth is recommended")
    assert (domain, "MX") in loopback_dns.asked


async def test_the_microsoft_365_preset_warns_and_points_to_the_microsoft_oauth_card(
    api: httpx.AsyncClient, system: RunningSystem, browser_context: BrowserContext
) -> None:
    tab = await EmailTab.open(browser_context, api, await new_agent(api))

    await tab.field("Provider").select_option("microsoft365")

    await tab.says("#preset-note", "disabled password sign-in")
    await tab.press("Use Microsoft OAuth")
    microsoft = tab.page.get_by_role("radio", name="Microsoft OAuth")
    await expect(microsoft).to_have_attribute("aria-checked", "true")
    await expect(tab.field("Application (client) ID")).to_be_visible()
