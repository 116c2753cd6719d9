"""policy's part in approval before sending: whether a send waits, letting an approved one
through, and the contact history that ``first_contact`` reads.

A send is held by ``send_hold`` (asked by ``authorize_send`` after the recipient and sender rules
and before the quota, so a held send reserves nothing). ``approve_send`` reserves the quota when a
person approves; the send, queued again with its own ``command_id``, then passes ``send_hold`` if
its recipients are exactly those it was held with.
"""

from __future__ import annotations

import logging

from mailbridge.policy.domain import approval as rule
from mailbridge.policy.domain import restrictions as rules
from mailbridge.policy.ports import Contacts, SendHolds, SendQuota, StoredClientOrg
from mailbridge.policy.ports import StoredHold as Held
from mailbridge.shared.addresses import AddressError, Recipient, parse_one, parse_recipients
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.messages import (
    ApprovalMode,
    ApproveSend,
    AuthorizeSend,
    KnownContacts,
    KnownContactsReply,
    MessageReceived,
    MessageRejected,
    MessageSent,
    SendAuthorization,
    SendHold,
)

log = logging.getLogger(__name__)


async def send_hold(
    request: AuthorizeSend,
    client_org: StoredClientOrg | None,
    *,
    holds: SendHolds,
    contacts: Contacts,
) -> SendHold | None:
    """The hold the send needs (recorded), or None; the agent's own mode overrides its client
    org's. A send approved with these very recipients needs none."""
    mode = request.approval or (client_org.restrictions.approval if client_org else None)
    if mode is None or mode is ApprovalMode.OFF:
        return None
    recipients = _parsed(request.recipients)
    keys = tuple(sorted(r.key for r in recipients))
    stored = await holds.find(request.agent_id, request.command_id)
    if stored is not None and stored.approved and stored.recipients == keys:
        return None
    known = await contacts.known(request.agent_id, keys) if _reads_contacts(mode) else set()
    domain = _own_domain(client_org, request.sender)
    hold = rule.hold_needed(mode, recipients, domain=domain, contacts=known)
    if hold is not None:
        await holds.hold(Held(request.agent_id, request.command_id, keys, mode))
    return hold


def _reads_contacts(mode: ApprovalMode) -> bool:
    return mode is ApprovalMode.FIRST_CONTACT


def _parsed(recipients: list[str]) -> list[Recipient]:
    """The envelope as parsed; the worker built it with the same parser, so a failure here means
    a request that was not the worker's: every entry is then held as it is written."""
    try:
        return parse_recipients(recipients)
    except AddressError:
        return [Recipient("", entry, "") for entry in recipients]


def _own_domain(client_org: StoredClientOrg | None, sender: str) -> str | None:
    """What ``outside_domain`` compares with: the client org's domain, else the sender's own."""
    if client_org is not None and client_org.email_domain:
        return client_org.email_domain
    try:
        return parse_one(sender).domain
    except AddressError:
        return None


async def approve_send(
    request: ApproveSend,
    client_org: StoredClientOrg | None,
    *,
    holds: SendHolds,
    quota: SendQuota,
) -> SendAuthorization:
    """Reserve the held send's quota and let it through; a refusal (the limit) keeps it held.
    Approving again reserves nothing more: one command_id reserves once."""
    if await holds.find(request.agent_id, request.command_id) is None:
        error = ErrorInfo.of(ErrorCode.NOT_FOUND, "policy holds no such send.")
        return SendAuthorization(allowed=False, error=error)
    verdict = SendAuthorization(allowed=True)
    if client_org is not None:
        verdict = await reserved(request.agent_id, request.command_id, client_org, quota)
    if verdict.allowed:
        await holds.approve(request.agent_id, request.command_id)
    return verdict


async def reserved(
    agent_id: str, command_id: str, client_org: StoredClientOrg, quota: SendQuota
) -> SendAuthorization:
    """One unit of the client org's quota for the send, or the refusal."""
    reservation = await quota.reserve(
        agent_id, command_id, lambda used: rules.quota_refusal(client_org.restrictions, used)
    )
    if reservation.refusal is not None:
        return SendAuthorization(allowed=False, error=reservation.refusal)
    return SendAuthorization(allowed=True, reservation_id=reservation.reservation_id)


async def known_contacts(request: KnownContacts, *, contacts: Contacts) -> KnownContactsReply:
    """Those of the addresses asked that the agent wrote to or heard from (as asked, so the
    worker can match them to its messages); one that is no single address is never known."""
    keys = {address: rule.contact_key(address) for address in request.addresses}
    known = await contacts.known(request.agent_id, [k for k in keys.values() if k is not None])
    return KnownContactsReply(known=[a for a, key in keys.items() if key in known])


async def remember_written_to(event: MessageSent, *, contacts: Contacts) -> None:
    await contacts.record(event.agent_id, rule.contact_keys(event.accepted_recipients))


async def remember_heard_from(event: MessageReceived, *, contacts: Contacts) -> None:
    """The From of a received message, unless it imitates the agent's own domain: a look-alike
    sender must not become someone the agent may write to unasked."""
    screening = event.screening
    if event.from_ is None or (screening is not None and screening.lookalike_sender is not None):
        return
    if (key := rule.contact_key(event.from_)) is not None:
        await contacts.record(event.agent_id, [key])


async def release_after_rejection(event: MessageRejected, *, quota: SendQuota) -> bool:
    """A rejected or expired send is never sent: any unit an approval reserved for it (one whose
    decision never committed) goes back."""
    released = await quota.release(event.agent_id, event.command_id)
    if released:
        log.info("released the reservation of rejected %s", event.command_id)
    return released
