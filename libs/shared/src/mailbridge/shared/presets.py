"""IMAP/SMTP presets of the well-known providers (PROVIDERS.md), and which one fits an address.

A preset names the domains its provider's own addresses are at (``gmail.com``) and the MX hosts
that give away a domain of its customers (``aspmx.l.google.com`` for a Google Workspace domain).
Both are written as names: ``acme.com`` is that name alone, ``*.acme.com`` every name under it.
"""

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
    domains: tuple[str, ...] = Field(
        default=(),
        description="the provider's own mail domains (`*.acme.com`: every name under acme.com)",
    )
    mx_hosts: tuple[str, ...] = Field(
        default=(), description="MX hosts of the domains whose mail the provider hosts (`*.` too)"
    )
    files_sent_mail: bool = Field(
        default=False,
        description="its SMTP server files what it sends in Sent itself: mailbridge keeps no"
        " copy of its own, and finds a send whose answer was lost there",
    )


_MICROSOFT_DOMAINS = (
    "outlook.com", "hotmail.com", "live.com", "msn.com", "*.onmicrosoft.com",
    "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es",
    "live.co.uk", "live.fr", "live.de", "live.nl", "outlook.fr", "outlook.de",
)  # fmt: skip
_YAHOO_DOMAINS = (  # not yahoo.co.jp: Yahoo! JAPAN is another service
    "yahoo.com", "ymail.com", "rocketmail.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de",
    "yahoo.it", "yahoo.es", "yahoo.ca", "yahoo.com.au", "yahoo.co.in", "yahoo.com.br",
)  # fmt: skip
_FASTMAIL_DOMAINS = (
    "fastmail.com", "fastmail.fm", "fastmail.net", "fastmail.org", "fastmail.us",
    "fastmail.co.uk", "fastmail.de", "messagingengine.com",
)  # fmt: skip


def _ssl(host: str, port: int = 993) -> ServerEndpoint:
    return ServerEndpoint(host=host, port=port, security="ssl")


def _starttls(host: str, port: int = 587) -> ServerEndpoint:
    return ServerEndpoint(host=host, port=port, security="starttls")


def _zoho(region: str, tld: str) -> Preset:
    own = ("zoho.com", "zohomail.com") if region == "com" else (f"zoho.{tld}", f"zohomail.{tld}")
    return Preset(
        id=f"zoho-{region}" if region != "com" else "zoho",
        name=f"Zoho Mail ({tld})",
        imap=_ssl(f"imap.zoho.{tld}"),
        smtp=_starttls(f"smtp.zoho.{tld}"),
        note="Pick the region of the account's data centre; use an app password.",
        domains=own,
        mx_hosts=(f"*.zoho.{tld}",),  # mx.zoho.com is not under zoho.com.au, nor the reverse
    )


PRESETS: tuple[Preset, ...] = (
    Preset(
        id="microsoft365",
        name="Microsoft 365 / Outlook",
        imap=_ssl("outlook.office365.com"),
        smtp=_starttls("smtp.office365.com"),
        warning=MICROSOFT_WARNING,
        oauth_alternative="microsoft",
        domains=_MICROSOFT_DOMAINS,
        mx_hosts=("*.protection.outlook.com",),  # tenants' and Outlook.com's own
    ),
    Preset(
        id="gmail",
        name="Google Workspace / Gmail",
        imap=_ssl("imap.gmail.com"),
        smtp=_starttls("smtp.gmail.com"),
        note="App passwords need 2-Step Verification; Google OAuth is the alternative.",
        oauth_alternative="google",
        files_sent_mail=True,  # "sent messages will be automatically copied to [Gmail]/Sent Mail"
        domains=("gmail.com", "googlemail.com"),
        mx_hosts=("*.google.com", "*.googlemail.com"),  # aspmx.l.google.com, smtp.google.com
    ),
    Preset(
        id="yahoo",
        name="Yahoo Mail",
        imap=_ssl("imap.mail.yahoo.com"),
        smtp=_ssl("smtp.mail.yahoo.com", 465),
        note="Use an app password.",
        domains=_YAHOO_DOMAINS,
        mx_hosts=("*.yahoodns.net",),
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
        domains=_FASTMAIL_DOMAINS,
        mx_hosts=("*.messagingengine.com",),
    ),
    Preset(
        id="icloud",
        name="iCloud Mail",
        imap=_ssl("imap.mail.me.com"),
        smtp=_starttls("smtp.mail.me.com"),
        note="Use an app-specific password.",
        domains=("icloud.com", "me.com", "mac.com"),
        mx_hosts=("*.mail.icloud.com",),  # a custom domain in iCloud+
    ),
    Preset(id="custom", name="Custom", imap=None, smtp=None, note="Any IMAP/SMTP server."),
)

BY_ID = {preset.id: preset for preset in PRESETS}


def preset_for_domain(address: str) -> Preset | None:
    """The preset whose provider ``address`` (or a bare domain) is at."""
    domain = address.rpartition("@")[2]
    return next((p for p in PRESETS if _named(domain, p.domains)), None)


def preset_for_mx(host: str) -> Preset | None:
    """The preset whose provider an MX host belongs to."""
    return next((p for p in PRESETS if _named(host, p.mx_hosts)), None)


def _named(name: str, patterns: tuple[str, ...]) -> bool:
    bare = name.lower().rstrip(".")
    return any(
        bare.endswith(pattern[1:]) if pattern.startswith("*.") else bare == pattern
        for pattern in patterns
    )


def files_sent_mail(smtp_host: str) -> bool:
    """Whether the provider of this SMTP server files the mail it sends in Sent by itself
    (Gmail's does, for a Google Workspace domain too: the host is the same)."""
    host = smtp_host.lower().rstrip(".")
    return any(p.files_sent_mail and p.smtp is not None and p.smtp.host == host for p in PRESETS)
