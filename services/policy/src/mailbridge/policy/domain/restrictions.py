"""A client organization's rules, evaluated: who may be written to, from where, how often.

Pure functions over the stored restrictions; the quota itself is counted in the database (see
adapters/quota.py), here is only what counts as over the limit and how each rule reads in a banner.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailbridge.shared.addresses import (
    AddressError,
    RecipientRule,
    allowed_by,
    parse_one,
    parse_recipients,
)
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import Restrictions

_SHOWN_RULES = 5


@dataclass(frozen=True)
class WindowCounts:
    """Reserved sends of one agent in the last hour and the last 24 hours."""

    hour: int
    day: int


def recipient_refusal(restrictions: Restrictions, recipients: list[str]) -> ErrorInfo | None:
    """None when every recipient is allowed; with no allowlist, everyone is."""
    try:
        parsed = parse_recipients(recipients)
    except AddressError as exc:
        return ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED, str(exc))
    if not parsed:
        return ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED, "The message has no recipient.")
    if not restrictions.allowed_recipients:
        return None
    rules = [RecipientRule.parse(entry) for entry in restrictions.allowed_recipients]
    refused = [r.envelope for r in parsed if not allowed_by(rules, r)]
    if not refused:
        return None
    return ErrorInfo.of(ErrorCode.RECIPIENT_NOT_ALLOWED, f"Not allowed: {', '.join(refused)}.")


def sender_refusal(email_domain: str | None, sender: str) -> ErrorInfo | None:
    if email_domain is None or sender_in_domain(email_domain, sender):
        return None
    detail = f"{sender} is not an address at {email_domain}."
    return ErrorInfo.of(ErrorCode.DOMAIN_NOT_ALLOWED, detail)


def sender_in_domain(email_domain: str, sender: str) -> bool:
    try:
        return parse_one(sender).domain == email_domain
    except AddressError:
        return False


def quota_refusal(restrictions: Restrictions, used: WindowCounts) -> ErrorInfo | None:
    """One more send must fit both windows."""
    for limit, count, window in (
        (restrictions.max_per_hour, used.hour, "hour"),
        (restrictions.max_per_day, used.day, "24 hours"),
    ):
        if limit is not None and count >= limit:
            detail = f"{count} of {limit} sends used in the last {window}."
            return ErrorInfo.of(ErrorCode.SEND_LIMIT_REACHED, detail)
    return None


def warnings(email_domain: str | None, restrictions: Restrictions) -> list[str]:
    """Each rule as the line a person reads in the client-organization banner."""
    lines = []
    if email_domain:
        lines.append(f"Sends only from addresses at {email_domain}")
    if restrictions.allowed_recipients:
        lines.append(_recipients_line(restrictions.allowed_recipients))
    for limit, window in ((restrictions.max_per_hour, "hour"), (restrictions.max_per_day, "day")):
        if limit == 0:
            lines.append(f"Sending is switched off (0 per {window})")
        elif limit is not None:
            lines.append(f"Sends limited to {limit} per {window}")
    return lines


def domain_warning(email_domain: str | None, email: str | None) -> list[str]:
    """A config outside the client org's domain may be saved; the banner says sends will fail."""
    if not email_domain or not email or sender_in_domain(email_domain, email):
        return []
    return [f"{email} is outside {email_domain}: sends are refused until the address is fixed"]


def _recipients_line(entries: list[str]) -> str:
    """``Only recipients at acme.com or *.acme.eu, or the address cfo@bank.com``."""
    domains = [entry for entry in entries if "@" not in entry]
    addresses = [entry for entry in entries if "@" in entry]
    if not domains:
        return f"Only sends to {_listed(addresses)}"
    parts = []
    if domains:
        parts.append(f"at {_listed(domains)}")
    if addresses:
        noun = "the address" if len(addresses) == 1 else "the addresses"
        parts.append(f"{noun} {_listed(addresses)}")
    return "Only recipients " + ", or ".join(parts)


def _listed(items: list[str]) -> str:
    shown = items[:_SHOWN_RULES]
    more = len(items) - len(shown)
    if more:
        return ", ".join(shown) + f" and {more} more"
    return " or ".join(shown) if len(shown) <= 2 else ", ".join(shown[:-1]) + " or " + shown[-1]
