"""The worker's Gmail and Graph mailboxes against the sandbox provider, over real TLS: a send
arrives once and is filed in Sent, a reply threads, a large Gmail message is uploaded, polls
resume and resync without repeats, a lost answer is found among the sent mail, and a throttled
answer carries its Retry-After."""

from __future__ import annotations

import base64
import email

import pytest

from mailbridge.mail_worker.domain import mime
from mailbridge.mail_worker.domain.cursor import ApiCursor
from mailbridge.mail_worker.domain.screening import NOT_SCREENED
from mailbridge.mail_worker.handlers_api import poll_api_mailbox
from mailbridge.mail_worker.ports import OutcomeUnknownError, PollLimits, ProviderMailbox
from mailbridge.shared.errors import ErrorCode, RetryableError
from mailbridge.shared.messages import SendMessage
from tests.fakes.clock import FixedClock
from tests.integration import test_mail_worker_oauth_sandbox as worker_apis

# This module's sandbox, NATS and the worker's API clients, as the connection-test module has them.
sandbox, http, admin = worker_apis.sandbox, worker_apis.http, worker_apis.admin
nats_url, bus, apis, sandboxed = (
    worker_apis.nats_url, worker_apis.bus, worker_apis.apis, worker_apis.sandboxed,
)  # fmt: skip
Sandboxed = worker_apis.Sandboxed
PROVIDERS = worker_apis.PROVIDERS
LIMITS = PollLimits(backlog=2, batch=50, max_message_bytes=1_000_000)


def built(sender: str, to: str, command_id: str, **fields: object) -> mime.Outgoing:
    given = {"to": [to], "subject": "Hello", "text": "Hi there"} | fields
    command = SendMessage(agent_id="a1", command_id=command_id, **given)  # type: ignore[arg-type]
    return mime.build(command, sender=sender, now=FixedClock().now())


async def nothing() -> None:
    return None


def headers_of(stored: dict[str, object]) -> email.message.Message:
    return email.message_from_bytes(base64.b64decode(str(stored["raw_b64"])))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_send_arrives_once_with_its_headers_and_is_filed_in_sent(
    sandboxed: Sandboxed, provider: str
) -> None:
    sender, token = sandboxed.signed_in(provider)
    recipient, _ = sandboxed.signed_in("microsoft" if provider == "google" else "google")
    other = "microsoft" if provider == "google" else "google"
    message = built(sender, recipient, f"cmd-{provider}", bcc=[f"hidden-{recipient}"])
    async with sandboxed.mailbox(provider, token) as mailbox:
        await mailbox.send(message, nothing)
        assert await mailbox.find_sent(message.message_id)
    [arrived] = [m for m in sandboxed.admin.mailbox(other, recipient) if m["subject"] == "Hello"]
    assert arrived["message_id"] == message.message_id
    assert "Bcc" not in headers_of(arrived)
    [filed] = sandboxed.admin.mailbox(provider, sender, "sent")
    assert filed["message_id"] == message.message_id


async def test_a_gmail_reply_joins_the_thread_of_the_message_it_answers(
    sandboxed: Sandboxed,
) -> None:
    agent, token = sandboxed.signed_in("google")
    original = sandboxed.admin.deliver(
        "google", agent, sender="ada@example.com", subject="Question", message_id="<q1@example.com>"
    )
    reply = built(
        agent, "ada@example.com", "cmd-reply", subject="Question", in_reply_to="<q1@example.com>"
    )
    async with sandboxed.mailbox("google", token) as mailbox:
        await mailbox.send(reply, nothing)
    [inbox] = [m for m in sandboxed.admin.mailbox("google", agent) if m["id"] == original]
    [sent] = sandboxed.admin.mailbox("google", agent, "sent")
    assert sent["thread_id"] == inbox["thread_id"] and sent["in_reply_to"] == "<q1@example.com>"


async def test_a_large_gmail_message_is_uploaded_past_the_json_limit(sandboxed: Sandboxed) -> None:
    agent, token = sandboxed.signed_in("google")
    recipient, _ = sandboxed.signed_in("google")
    big = built(agent, recipient, "cmd-big", text="x" * 4_000_000)
    async with sandboxed.mailbox("google", token) as mailbox:
        await mailbox.send(big, nothing)
    [arrived] = [m for m in sandboxed.admin.mailbox("google", recipient) if m["subject"] == "Hello"]
    assert len(base64.b64decode(arrived["raw_b64"])) >= 4_000_000
    uploads = [r for r in sandboxed.admin.requests("google") if "/upload/" in r["path"]]
    assert [r["status"] for r in uploads] == [200]


async def poll(mailbox: ProviderMailbox, cursor: ApiCursor | None) -> tuple[list[str], ApiCursor]:
    events, after = await poll_api_mailbox("a1", mailbox, cursor, LIMITS, NOT_SCREENED)
    return [event.subject or "" for event in events], after


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_polls_deliver_the_backlog_then_new_mail_and_resync_without_repeats(
    sandboxed: Sandboxed, provider: str
) -> None:
    agent, token = sandboxed.signed_in(provider)  # 7 messages already there
    async with sandboxed.mailbox(provider, token) as mailbox:
        backlog, cursor = await poll(mailbox, None)
        assert len(backlog) == 2
        sandboxed.admin.deliver(provider, agent, sender="ada@example.com", subject="new 1")
        assert (await poll(mailbox, cursor))[0] == ["new 1"]
        _, cursor = await poll(mailbox, cursor)
        sandboxed.admin.deliver(provider, agent, sender="ada@example.com", subject="new 2")
        sandboxed.admin.expire_cursors(provider)
        resynced, cursor = await poll(mailbox, cursor)
        assert resynced == ["new 2"]
        assert (await poll(mailbox, cursor))[0] == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_dropped_answer_is_unknown_and_the_message_is_found_among_the_sent_mail(
    sandboxed: Sandboxed, provider: str
) -> None:
    agent, token = sandboxed.signed_in(provider)
    message = built(agent, "ada@example.com", f"cmd-drop-{provider}")
    sandboxed.admin.drop_after_send(provider)
    async with sandboxed.mailbox(provider, token) as mailbox:
        with pytest.raises(OutcomeUnknownError):
            await mailbox.send(message, nothing)
        assert await mailbox.find_sent(message.message_id)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_throttled_send_carries_the_providers_retry_after(
    sandboxed: Sandboxed, provider: str
) -> None:
    agent, token = sandboxed.signed_in(provider)
    sandboxed.admin.throttle(provider, "send", retry_after=7)
    async with sandboxed.mailbox(provider, token) as mailbox:
        with pytest.raises(RetryableError) as raised:
            await mailbox.send(built(agent, "ada@example.com", f"cmd-429-{provider}"), nothing)
    assert raised.value.code is ErrorCode.PROVIDER_THROTTLED
    assert raised.value.retry_after_seconds is not None and raised.value.retry_after_seconds >= 6
