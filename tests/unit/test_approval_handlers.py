"""Approval before sending, in the handlers: policy holds without reserving, reserves when a person
approves and then lets exactly that send through; the contacts it learns; the mail-worker sends
nothing for a held send and keeps its content, out of the event, for the approval."""

from __future__ import annotations

from mailbridge.policy import handlers
from mailbridge.policy import handlers_approval as approval
from mailbridge.policy.ports import StoredClientOrg
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import (
    ApprovalMode,
    ApproveSend,
    AuthorizeSend,
    MessageHeld,
    MessageReceived,
    MessageSent,
    Restrictions,
    SendAuthorization,
    SendHold,
    SendMessage,
)
from mailbridge.shared.messages.screening import LookalikeReason, LookalikeSender, Screening
from tests.factories import send
from tests.fakes.mail_worker import FakePolicy, FakeSubmitter, MemoryContentStore, MemoryLedger
from tests.fakes.policy import MemoryClientOrgs, MemoryContacts, MemorySendHolds, MemorySendQuota

AGENT, ORG, CLIENT = "a1", "acme", "acme-emea"
NEW = "new.person@partner.org"


class Policy:
    """policy's stores in memory, with one client org whose rules a test chooses."""

    def __init__(self, approval_mode: ApprovalMode, **rules: object) -> None:
        self.client_orgs, self.quota = MemoryClientOrgs(), MemorySendQuota()
        self.holds, self.contacts = MemorySendHolds(), MemoryContacts()
        restrictions = Restrictions.model_validate({**rules, "approval": approval_mode})
        self.client_org = StoredClientOrg(ORG, CLIENT, "Acme", "acme.com", restrictions)
        self.client_orgs.client_orgs[(ORG, CLIENT)] = self.client_org

    async def authorize(self, *recipients: str, command_id: str = "cmd_1") -> SendAuthorization:
        request = AuthorizeSend(
            agent_id=AGENT, command_id=command_id, sender="agent@acme.com",
            recipients=list(recipients), org_id=ORG, client_org_id=CLIENT,
        )  # fmt: skip
        return await handlers.authorize_send(
            request, client_orgs=self.client_orgs, quota=self.quota, holds=self.holds,
            contacts=self.contacts,
        )  # fmt: skip

    async def approve(self, command_id: str = "cmd_1") -> SendAuthorization:
        request = ApproveSend(
            agent_id=AGENT, command_id=command_id, org_id=ORG, client_org_id=CLIENT
        )
        return await approval.approve_send(
            request, self.client_org, holds=self.holds, quota=self.quota
        )


async def test_a_held_send_reserves_nothing_and_an_approved_one_reserves_once() -> None:
    policy = Policy(ApprovalMode.FIRST_CONTACT, max_per_day=5)

    held = await policy.authorize(NEW)
    assert (held.allowed, held.error) == (False, None)
    assert held.hold == SendHold(reason=ApprovalMode.FIRST_CONTACT, recipients=[NEW])
    assert policy.quota.held == {}

    approved = await policy.approve()
    assert approved.allowed
    assert await policy.approve() == approved  # approving again reserves nothing more
    queued_again = await policy.authorize(NEW)
    assert queued_again == approved
    assert list(policy.quota.held) == [(AGENT, "cmd_1")]


async def test_an_approved_send_passes_only_with_the_recipients_it_was_held_with() -> None:
    policy = Policy(ApprovalMode.FIRST_CONTACT)
    await policy.authorize(NEW)
    await policy.approve()

    assert (await policy.authorize("New.Person@Partner.org")).allowed  # the same mailbox
    widened = await policy.authorize(NEW, "other@stranger.io")
    assert not widened.allowed
    assert widened.hold is not None
    assert (await policy.authorize(NEW, command_id="cmd_2")).hold is not None  # another send


async def test_an_approval_over_the_limit_is_refused_and_the_send_stays_held() -> None:
    policy = Policy(ApprovalMode.ALWAYS, max_per_day=0)
    await policy.authorize(NEW)

    refused = await policy.approve()

    assert refused.error is not None
    assert refused.error.code is ErrorCode.SEND_LIMIT_REACHED
    assert (await policy.authorize(NEW)).hold is not None


async def test_a_refused_recipient_is_blocked_not_held() -> None:
    policy = Policy(ApprovalMode.ALWAYS, allowed_recipients=["acme.com"])

    verdict = await policy.authorize(NEW)

    assert verdict.error is not None
    assert (verdict.error.code, verdict.hold) == (ErrorCode.RECIPIENT_NOT_ALLOWED, None)
    assert policy.holds.held == {}


async def test_an_agents_own_mode_overrides_its_client_orgs() -> None:
    policy = Policy(ApprovalMode.ALWAYS)
    request = AuthorizeSend(
        agent_id=AGENT, command_id="cmd_1", sender="agent@acme.com", recipients=[NEW],
        org_id=ORG, client_org_id=CLIENT, approval=ApprovalMode.OFF,
    )  # fmt: skip
    verdict = await handlers.authorize_send(
        request, client_orgs=policy.client_orgs, quota=policy.quota, holds=policy.holds,
        contacts=policy.contacts,
    )  # fmt: skip
    assert verdict.allowed


async def test_someone_written_to_or_heard_from_is_a_contact_but_not_a_look_alike() -> None:
    policy = Policy(ApprovalMode.FIRST_CONTACT)
    sent = MessageSent(
        agent_id=AGENT, command_id="cmd_0", message_id="<m@acme.com>", accepted_recipients=[NEW]
    )
    await approval.remember_written_to(sent, contacts=policy.contacts)
    heard = {"agent_id": AGENT, "uid": 1, "uidvalidity": 1}
    await approval.remember_heard_from(
        MessageReceived(**heard, **{"from": "Ann <Ann@Client.com>"}), contacts=policy.contacts
    )
    lookalike = LookalikeSender(
        reason=LookalikeReason.EDIT_DISTANCE, sender_domain="acme.co", resembles="acme.com",
        detail="one letter off",
    )  # fmt: skip
    await approval.remember_heard_from(
        MessageReceived(**heard, **{"from": "ceo@acme.co"}, screening=Screening(
            lookalike_sender=lookalike)), contacts=policy.contacts,
    )  # fmt: skip

    assert (await policy.authorize("NEW.person@partner.org")).allowed
    assert (await policy.authorize("ann@client.com", command_id="cmd_2")).allowed
    assert (await policy.authorize("ceo@acme.co", command_id="cmd_3")).hold is not None


async def test_the_worker_sends_nothing_for_a_held_send_and_keeps_its_content_out_of_the_event() -> (
    None
):
    hold = SendHold(reason=ApprovalMode.FIRST_CONTACT, recipients=[NEW])
    submitter, store = FakeSubmitter(), MemoryContentStore()
    command = SendMessage(agent_id=AGENT, to=[NEW], subject="Quote", text="the secret price")

    events = await send(
        command, submitter, MemoryLedger(), policy=FakePolicy(hold=hold), store=store
    )

    assert submitter.submitted == []
    [held] = events
    assert isinstance(held, MessageHeld)
    assert (held.command_id, held.hold) == (command.command_id, hold)
    assert "the secret price" not in held.model_dump_json()
    assert held.command.content_ref is not None
    assert b"the secret price" in store.objects[held.command.content_ref.name]
