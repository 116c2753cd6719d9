"""Benchmark: the mail-worker's send throughput against raw aiosmtplib on the same SMTP sink.

``uv run python bench/send.py [--messages 300] [--mailboxes 20] [--json]``

Starts an embedded nats-server and PostgreSQL, the local mail stack (real Postfix submission in
front of Dovecot), config-api, policy (every send asks it first) and ONE mail-worker. Measures,
in the same run, to the same Postfix:

1. one mailbox: ``SendMessage`` commands published on NATS until every ``message.sent`` event is
   back (command → SMTP 250 → event), against a raw aiosmtplib loop reusing one connection;
2. ``--mailboxes`` mailboxes in parallel (their commands interleaved, as agents sending side by
   side would publish them), against as many raw senders in parallel.

Prints sends/s of each and the ratios (target ≥ 0.8), and the worker's own CPU time per send (a
figure that moves less than throughput when other work shares the machine). A measurement, not a
test: exits 0 whether or not the targets are met. Everything it starts is stopped at the end,
Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import nats
from harness import (  # bench/harness.py, beside this script
    PASSWORD,
    Mailbox,
    cpu_seconds,
    create_mailboxes,
    scratch_dir,
    start_mail_system,
)
from nats.aio.msg import Msg

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStackEndpoints
from mailbridge.shared.messages import MessageSent, SendMessage

TARGET = 0.8


@dataclass(frozen=True)
class Stack:
    nats_url: str
    mail: MailStackEndpoints
    mailboxes: list[Mailbox]
    recipient: str
    worker_pid: int


def start(exits: ExitStack, data: Path, mailboxes: int) -> Stack:
    wanted = {"config-api", "policy", "mail-worker"}
    mail = start_mail_system(exits, data, services=wanted, sink=sys.stderr)
    boxes = asyncio.run(create_mailboxes(mail, mailboxes))
    recipient = mail.mail_stack.create_mailbox("sink", PASSWORD)
    return Stack(mail.nats_url, mail.mail_stack.endpoints, boxes, recipient, mail.worker_pid)


async def through_worker(stack: Stack, boxes: list[Mailbox], per_box: int) -> float:
    """Sends/s from publishing the commands to the last ``message.sent`` event."""
    client = await nats.connect(stack.nats_url)
    js = client.jetstream()
    # round robin over the mailboxes, as their agents would send side by side
    expected = {
        f"cmd_{b.agent_id}_{i}_{time.monotonic_ns()}": b for i in range(per_box) for b in boxes
    }
    done = asyncio.Event()
    seen: set[str] = set()

    async def sent(msg: Msg) -> None:
        seen.add(MessageSent.model_validate_json(msg.data).command_id)
        if expected.keys() <= seen:
            done.set()

    await client.subscribe(MessageSent.subscription(), cb=sent)
    started = time.perf_counter()
    for command_id, box in expected.items():
        command = SendMessage(agent_id=box.agent_id, command_id=command_id, to=[stack.recipient],
                              subject=command_id, text="benchmark")  # fmt: skip
        await js.publish(command.nats_subject(), command.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": command_id})  # fmt: skip
    await asyncio.wait_for(done.wait(), timeout=600)
    elapsed = time.perf_counter() - started
    await client.close()
    return len(expected) / elapsed


async def raw(stack: Stack, boxes: list[Mailbox], per_box: int) -> float:
    """The ceiling: one aiosmtplib connection per mailbox, reused for all its messages."""
    started = time.perf_counter()
    await asyncio.gather(*(_raw_sender(stack, box, per_box) for box in boxes))
    return len(boxes) * per_box / (time.perf_counter() - started)


async def _raw_sender(stack: Stack, box: Mailbox, count: int) -> None:
    mail = stack.mail
    smtp = aiosmtplib.SMTP(hostname=mail.host, port=mail.smtp_starttls_port, start_tls=True,
                           tls_context=client_ssl_context(mail.ca_file))  # fmt: skip
    await smtp.connect()
    await smtp.login(box.address, PASSWORD)
    for n in range(count):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            box.address,
            stack.recipient,
            f"raw {n}",
        )
        message.set_content("benchmark")
        await smtp.send_message(message)
    await smtp.quit()


async def compare(
    name: str,
    stack: Stack,
    sends: int,
    worker: Callable[[], Awaitable[float]],
    ceiling: Callable[[], Awaitable[float]],
) -> dict[str, float | str]:
    raw_rate = await ceiling()
    cpu_before = cpu_seconds(stack.worker_pid)
    worker_rate = await worker()
    cpu_ms = (cpu_seconds(stack.worker_pid) - cpu_before) * 1000 / sends
    ratio = worker_rate / raw_rate
    return {"case": name, "raw_per_s": round(raw_rate, 1), "worker_per_s": round(worker_rate, 1),
            "ratio": round(ratio, 2), "verdict": "PASS" if ratio >= TARGET else "MISS",
            "worker_cpu_ms_per_send": round(cpu_ms, 2)}  # fmt: skip


async def measure(stack: Stack, messages: int) -> list[dict[str, float | str]]:
    one, many = stack.mailboxes[:1], stack.mailboxes
    per_box = max(1, messages // len(many))
    await through_worker(stack, one, 10)  # warm-up: imports, the first logins, JIT-free but cold
    single = await compare(
        "one mailbox",
        stack,
        messages,
        lambda: through_worker(stack, one, messages),
        lambda: raw(stack, one, messages),
    )
    parallel = await compare(
        f"{len(many)} mailboxes",
        stack,
        per_box * len(many),
        lambda: through_worker(stack, many, per_box),
        lambda: raw(stack, many, per_box),
    )
    return [single, parallel]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds the ExitStack: every server started here is stopped


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="bench/send.py")
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with ExitStack() as exits:
        data = scratch_dir(exits, "mailbridge-send-")
        stack = start(exits, data, args.mailboxes)
        rows = asyncio.run(measure(stack, args.messages))
    if args.json:
        print(json.dumps(rows))
        return
    print("\nsend throughput, same Postfix sink, same run (2 cores shared by everything):")
    for row in rows:
        print(f"  {row['case']:<14} raw {row['raw_per_s']:>7}/s   worker {row['worker_per_s']:>7}/s"
              f"   ratio {row['ratio']:.2f} (target ≥ {TARGET})  {row['verdict']}"
              f"   worker CPU {row['worker_cpu_ms_per_send']} ms/send")  # fmt: skip


if __name__ == "__main__":
    main()
