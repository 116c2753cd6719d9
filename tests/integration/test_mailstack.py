"""The local mail stack, exercised with the client libraries the product uses.

Real Dovecot and Postfix, verified TLS against the per-run CA only, SMTP AUTH on
both submission ports, delivery through Postfix into Dovecot, and a clean stop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import aiosmtplib
import pytest

from mailbridge.devstack.mailstack import MailStack, MailStackEndpoints
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)

DELIVERY_DEADLINE = 30.0


@pytest.fixture(scope="module")
def mail_stack() -> Iterator[MailStack]:
    # Not pytest's tmp_path: its parents are mode 0700 and the servers' users must traverse.
    data_dir = Path(tempfile.mkdtemp(prefix="mailbridge-mailstack-"))
    stack = MailStack(data_dir)
    began = time.monotonic()
    stack.start()
    log.info("MailStack.start() took %.2fs", time.monotonic() - began)
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def trust_only(endpoints: MailStackEndpoints) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(endpoints.ca_file))
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    return context


async def imap_client(endpoints: MailStackEndpoints) -> aioimaplib.IMAP4_SSL:
    client = aioimaplib.IMAP4_SSL(
        host=endpoints.host, port=endpoints.imap_port, ssl_context=trust_only(endpoints)
    )
    await client.wait_hello_from_server()
    return client


async def create_mailbox(stack: MailStack, local_part: str, password: str) -> str:
    return await asyncio.to_thread(stack.create_mailbox, local_part, password)


async def test_imap_login_over_verified_tls_and_status_counts(mail_stack: MailStack) -> None:
    endpoints = mail_stack.endpoints
    address = await create_mailbox(mail_stack, "reader", "reader-secret")
    for number, seen in enumerate((True, False, False)):
        await asyncio.to_thread(
            mail_stack.seed_message,
            address,
            subject=f"Seeded {number}",
            body="Hello from the seed.",
            seen=seen,
        )

    client = await imap_client(endpoints)
    login = await client.login(address, "reader-secret")
    assert login.result == "OK", login.lines
    status = await client.status("INBOX", "(MESSAGES UNSEEN)")
    assert status.result == "OK", status.lines
    text = b" ".join(line for line in status.lines if isinstance(line, bytes)).decode()
    assert re.search(r"MESSAGES 3\b", text), text
    assert re.search(r"UNSEEN 2\b", text), text
    await client.logout()


async def test_imap_refuses_a_certificate_outside_the_stack_ca(mail_stack: MailStack) -> None:
    endpoints = mail_stack.endpoints
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(
            endpoints.host, endpoints.imap_port, ssl=ssl.create_default_context()
        )


async def test_imap_refuses_a_wrong_password(mail_stack: MailStack) -> None:
    address = await create_mailbox(mail_stack, "locked", "right-secret")
    client = await imap_client(mail_stack.endpoints)
    login = await client.login(address, "wrong-secret")
    assert login.result == "NO", login.lines
    await client.logout()


async def smtp_connect(endpoints: MailStackEndpoints, *, implicit_tls: bool) -> aiosmtplib.SMTP:
    context = trust_only(endpoints)
    if implicit_tls:
        client = aiosmtplib.SMTP(
            hostname=endpoints.host,
            port=endpoints.smtp_tls_port,
            use_tls=True,
            tls_context=context,
        )
        await client.connect()
        return client
    client = aiosmtplib.SMTP(
        hostname=endpoints.host,
        port=endpoints.smtp_starttls_port,
        start_tls=False,
        tls_context=context,
    )
    await client.connect()
    await client.ehlo()
    assert not client.supports_extension("auth"), "AUTH must not be offered before STARTTLS"
    await client.starttls()
    return client


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["starttls", "implicit-tls"])
async def test_smtp_auth_accepts_the_password_and_refuses_a_wrong_one(
    mail_stack: MailStack, implicit_tls: bool
) -> None:
    address = await create_mailbox(mail_stack, f"sender-{int(implicit_tls)}", "smtp-secret")

    client = await smtp_connect(mail_stack.endpoints, implicit_tls=implicit_tls)
    response = await client.login(address, "smtp-secret")
    assert response.code == 235
    await client.quit()

    client = await smtp_connect(mail_stack.endpoints, implicit_tls=implicit_tls)
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        await client.login(address, "wrong-secret")
    assert refused.value.code == 535
    await client.quit()


async def test_submitted_message_arrives_in_the_recipients_inbox(mail_stack: MailStack) -> None:
    sender = await create_mailbox(mail_stack, "alice", "alice-secret")
    recipient = await create_mailbox(mail_stack, "bob", "bob-secret")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = "Delivered through Postfix"
    message.set_content("Hello Bob.")

    client = await smtp_connect(mail_stack.endpoints, implicit_tls=False)
    await client.login(sender, "alice-secret")
    await client.send_message(message)
    await client.quit()

    async def arrived() -> bool:
        return await asyncio.to_thread(mail_stack.count_messages, recipient) >= 1

    await eventually(arrived, what="the message in Bob's inbox", timeout=DELIVERY_DEADLINE)
    assert await asyncio.to_thread(mail_stack.count_messages, recipient) == 1

    imap = await imap_client(mail_stack.endpoints)
    assert (await imap.login(recipient, "bob-secret")).result == "OK"
    await imap.select("INBOX")
    fetched = await imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    headers = b"".join(line for line in fetched.lines if isinstance(line, bytes | bytearray))
    assert b"Delivered through Postfix" in headers
    await imap.logout()


def start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid``, or None when no such process exists."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[19]


def processes_mentioning(needle: str) -> list[str]:
    """ps lines whose command line, or whose environment (Postfix's MAIL_CONFIG), has needle."""
    listing = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in listing.splitlines():
        pid = line.split(maxsplit=1)[0]
        try:
            environment = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            environment = b""
        if needle in line or needle.encode() in environment:
            found.append(line.strip())
    return found


async def test_a_second_stack_runs_alongside_and_stops_without_leftovers(
    mail_stack: MailStack,
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="mailbridge-mailstack-"))
    try:
        second = MailStack(data_dir)
        endpoints = await asyncio.to_thread(second.start)
        assert endpoints.imap_port != mail_stack.endpoints.imap_port
        pids = await asyncio.to_thread(second.process_ids)
        commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids}
        assert any(b"dovecot" in command for command in commands.values()), commands
        assert any(b"master" in command for command in commands.values()), commands
        started = {pid: start_time(pid) for pid in pids}
        assert processes_mentioning(str(data_dir))

        await asyncio.to_thread(second.stop)

        survivors = [pid for pid, began in started.items() if start_time(pid) == began]
        assert survivors == [], {pid: commands[pid] for pid in survivors}
        assert processes_mentioning(str(data_dir)) == []
        assert second.process_ids() == set()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    # The first stack is unaffected.
    address = await create_mailbox(mail_stack, "survivor", "still-here")
    client = await imap_client(mail_stack.endpoints)
    assert (await client.login(address, "still-here")).result == "OK"
    await client.logout()
