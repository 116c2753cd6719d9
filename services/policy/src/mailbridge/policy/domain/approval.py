"""Which sends wait for a person: the approval rule of each mode, over parsed recipients.

Pure: the contacts (every address an agent wrote to or heard from) are read by the caller. An
address is compared by its ``Recipient.key`` (lowercase local part, IDNA domain), the form that
two spellings of one mailbox share, so ``Bob@Acme.com`` is the contact ``bob@acme.com``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from mailbridge.shared.addresses import AddressError, Recipient, parse_one
from mailbridge.shared.messages import ApprovalMode, SendHold


def hold_needed(
    mode: ApprovalMode,
    recipients: Sequence[Recipient],
    *,
    domain: str | None,
    contacts: Collection[str],
) -> SendHold | None:
    """The hold a send needs under ``mode``, naming the recipients it needs it for; None: it may
    go. ``outside_domain`` without a domain to compare with holds every recipient."""
    needing = [r for r in recipients if _needs(mode, r, domain, contacts)]
    if not needing:
        return None
    return SendHold(reason=mode, recipients=[r.envelope for r in needing])


def _needs(
    mode: ApprovalMode, recipient: Recipient, domain: str | None, contacts: Collection[str]
) -> bool:
    if mode is ApprovalMode.ALWAYS:
        return True
    if mode is ApprovalMode.FIRST_CONTACT:
        return recipient.key not in contacts
    if mode is ApprovalMode.OUTSIDE_DOMAIN:
        return domain is None or not in_domain(recipient.domain, domain)
    return False


def in_domain(recipient_domain: str, domain: str) -> bool:
    """The domain itself or one of its subdomains (``eu.acme.com`` is inside ``acme.com``)."""
    return recipient_domain == domain or recipient_domain.endswith("." + domain)


def contact_key(address: str) -> str | None:
    """The contact an address names; None for one that is not a single address (an event's
    From that cannot be parsed names nobody)."""
    try:
        return parse_one(address).key
    except AddressError:
        return None


def contact_keys(addresses: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(key for a in addresses if (key := contact_key(a)) is not None))
