"""IMAP/SMTP presets of the well-known providers (PROVIDERS.md), and which one fits an address."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailbridge.shared.messages import ServerEndpoint

MICROSOFT_WARNING = (
    "Microsoft 365 has disabled password sign-in for IMAP (basic auth) for most tenants; "
    "use Microsoft OAuth."
)


class Preset(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    imap: ServerEndpoint | None
    smtp: ServerEndpoint | None
    note: str | None = None
    warning: str | None = None
    oauth_alternative: str | None = Field(
        default=None, description="the OAuth provider to prefer for this host"
    )
    domains: tuple[str, ...] = ()


def _ssl(host: str, port: int = 993) -> ServerEndpoint:
    return ServerEndpoint(host=host, port=port, security="ssl")


def _starttls(host: str, port: int = 587) -> ServerEndpoint:
    return ServerEndpoint(host=host, port=port, security="starttls")


def _zoho(region: str, tld: str) -> Preset:
    return Preset(
        id=f"zoho-{region}" if region != "com" else "zoho",
        name=f"Zoho Mail ({tld})",
        imap=_ssl(f"imap.zoho.{tld}"),
        smtp=_starttls(f"smtp.zoho.{tld}"),
        note="Pick the region of the account's data centre; use an app password.",
        domains=("zoho.com", "zohomail.com") if region == "com" else (f"zohomail.{tld}",),
    )


PRESETS: tuple[Preset, ...] = (
    Preset(
        id="microsoft365",
        name="Microsoft 365 / Outlook",
        imap=_ssl("outlook.office365.com"),
        smtp=_starttls("smtp.office365.com"),
        warning=MICROSOFT_WARNING,
        oauth_alternative="microsoft",
        domains=("outlook.com", "hotmail.com", "live.com", "msn.com"),
    ),
    Preset(
        id="gmail",
        name="Google Workspace / Gmail",
        imap=_ssl("imap.gmail.com"),
        smtp=_starttls("smtp.gmail.com"),
        note="App passwords need 2-Step Verification; Google OAuth is the alternative.",
        oauth_alternative="google",
        domains=("gmail.com", "googlemail.com"),
    ),
    Preset(
        id="yahoo",
        name="Yahoo Mail",
        imap=_ssl("imap.mail.yahoo.com"),
        smtp=_ssl("smtp.mail.yahoo.com", 465),
        note="Use an app password.",
        domains=("yahoo.com", "ymail.com", "rocketmail.com"),
    ),
    _zoho("com", "com"),
    _zoho("eu", "eu"),
    _zoho("in", "in"),
    _zoho("au", "com.au"),
    _zoho("jp", "jp"),
    Preset(
        id="fastmail",
        name="Fastmail",
        imap=_ssl("imap.fastmail.com"),
        smtp=_starttls("smtp.fastmail.com"),
        note="Use an app password.",
        domains=("fastmail.com", "fastmail.fm"),
    ),
    Preset(
        id="icloud",
        name="iCloud Mail",
        imap=_ssl("imap.mail.me.com"),
        smtp=_starttls("smtp.mail.me.com"),
        note="Use an app-specific password.",
        domains=("icloud.com", "me.com", "mac.com"),
    ),
    Preset(id="custom", name="Custom", imap=None, smtp=None, note="Any IMAP/SMTP server."),
)

BY_ID = {preset.id: preset for preset in PRESETS}


def preset_for_domain(address: str) -> Preset | None:
    domain = address.rpartition("@")[2].lower().rstrip(".")
    return next((p for p in PRESETS if domain in p.domains), None)
