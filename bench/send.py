"""Benchmark: the mail-worker's send throughput against two raw ceilings on the same mail servers.

``uv run python bench/send.py [--messages 300] [--mailboxes 20] [--json]``

Starts an embedded nats-server and PostgreSQL, the local mail stack (real Postfix submission in
front of Dovecot), config-api, policy (every send asks it first) and ONE mail-worker. Measures,
in the same run, to the same Postfix and Dovecot:

1. one mailbox: ``SendMessage`` commands published on NATS until every ``message.sent`` event is
   back (command → policy → SMTP 250 → the Sent copy → event), against two raw loops on reused
   connections: **SMTP only** (aiosmtplib), and **protocol-equivalent**: the same SMTP submission
   plus the IMAP APPEND of the Sent copy (aioimaplib), the protocol work the product must do;
2. ``--mailboxes`` mailboxes in parallel (their commands interleaved, as agents sending side by
   side would publish them), against as many raw senders of each kind in parallel.

Prints sends/s of each, both ratios (the target, ≥ 0.8, is on the protocol-equivalent one), and
the CPU per send of every process involved in each window (the worker, nats-server, policy,
config-api, PostgreSQL, Postfix, Dovecot, and ``bench``: this script, the raw clients or the
commands' publisher), so a reader sees where the time goes; the worker's own is the figure that
moves least when other work shares the machine. ``--json``: the same report on stdout. A
measurement, not a test: exits 0 whether or not the targets are met. Everything it starts is
stopped at the end, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aioimaplib
import aiosmtplib
import nats
from harness import (  # bench/harness.py, beside this script
    PASSWORD,
    WORKER,
    Mailbox,
    code_under_test,
    cpu_by_part,
    cpu_spent,
    create_mailboxes,
    scratch_dir,
    start_mail_system,
)
from nats.aio.msg import Msg

from mailbridge.devstack.certs import client_ssl_context
from mailbridge.devstack.mailstack import MailStackEndpoints
from mailbridge.shared.messages import MessageSent, SendMessage

TARGET = 0.8


SENT = "Sent"  # the folder the raw protocol-equivalent ceiling appends its copies to

Rate = Callable[[], Awaitable[float]]


@dataclass(frozen=True)
class Stack:
    nats_url: str
    mail: MailStackEndpoints
    mailboxes: list[Mailbox]
    recipient: str
    data: Path
    services: dict[str, int]  # name → pid

    def cpu(self) -> dict[str, float]:
        return cpu_by_part(self.data, self.services, alone={"bench": os.getpid()})


def start(exits: ExitStack, data: Path, mailboxes: int) -> Stack:
    wanted = {"config-api", "policy", WORKER}
    mail = start_mail_system(exits, data, services=wanted, sink=sys.stderr)
    boxes = asyncio.run(create_mailboxes(mail, mailboxes))
    recipient = mail.mail_stack.create_mailbox("sink", PASSWORD)
    pids = mail.system.supervisor.pids()
    return Stack(mail.nats_url, mail.mail_stack.endpoints, boxes, recipient, data, pids)


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


async def raw(stack: Stack, boxes: list[Mailbox], per_box: int, *, sent_copy: bool) -> float:
    """A ceiling: per mailbox one aiosmtplib connection, reused for all its messages, and with
    ``sent_copy`` one aioimaplib session too, appending each message to Sent as the worker does."""
    started = time.perf_counter()
    await asyncio.gather(*(_raw_sender(stack, box, per_box, sent_copy) for box in boxes))
    return len(boxes) * per_box / (time.perf_counter() - started)


async def _raw_sender(stack: Stack, box: Mailbox, count: int, sent_copy: bool) -> None:
    mail = stack.mail
    smtp = aiosmtplib.SMTP(hostname=mail.host, port=mail.smtp_starttls_port, start_tls=True,
                           tls_context=client_ssl_context(mail.ca_file))  # fmt: skip
    await smtp.connect()
    await smtp.login(box.address, PASSWORD)
    imap = await _imap_session(stack, box) if sent_copy else None
    for n in range(count):
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            box.address,
            stack.recipient,
            f"raw {n}",
        )
        message.set_content("benchmark")
        await smtp.send_message(message)
        if imap is not None:
            appended = await imap.append(bytes(message), mailbox=SENT, flags="(\\Seen)")
            assert appended.result == "OK", appended
    await smtp.quit()
    if imap is not None:
        await imap.logout()


async def _imap_session(stack: Stack, box: Mailbox) -> aioimaplib.IMAP4_SSL:
    mail = stack.mail
    imap = aioimaplib.IMAP4_SSL(host=mail.host, port=mail.imap_port,
                                ssl_context=client_ssl_context(mail.ca_file))  # fmt: skip
    await imap.wait_hello_from_server()
    assert (await imap.login(box.address, PASSWORD)).result == "OK"
    await imap.create(SENT)  # NO when it exists (the worker made it): either way it is there
    return imap


async def compare(
    name: str, stack: Stack, sends: int, worker: Rate, ceilings: dict[str, Rate]
) -> dict[str, Any]:
    """One case: each ceiling, then the worker, each window's CPU per send of every part."""
    rates: dict[str, float] = {}
    cpu_ms: dict[str, dict[str, float]] = {}
    for label, measured in {**ceilings, "worker": worker}.items():
        before = stack.cpu()
        rates[label] = await measured()
        spent = cpu_spent(before, stack.cpu())
        cpu_ms[label] = {part: round(s * 1000 / sends, 2) for part, s in sorted(spent.items())}
    ratios = {label: round(rates["worker"] / rates[label], 2) for label in ceilings}
    return {
        "case": name,
        "sends": sends,
        "per_s": {label: round(rate, 1) for label, rate in rates.items()},
        "ratio": ratios,
        "verdict": "PASS" if ratios["protocol"] >= TARGET else "MISS",
        "worker_cpu_ms_per_send": cpu_ms["worker"][WORKER],
        "cpu_ms_per_send": cpu_ms,
    }


async def measure(stack: Stack, messages: int) -> list[dict[str, Any]]:
    one, many = stack.mailboxes[:1], stack.mailboxes
    per_box = max(1, messages // len(many))
    await through_worker(stack, one, 10)  # warm-up: imports, the first logins, JIT-free but cold
    cases = []
    for name, boxes, count in (("one mailbox", one, messages),
                               (f"{len(many)} mailboxes", many, per_box)):  # fmt: skip
        ceilings: dict[str, Rate] = {
            "smtp": functools.partial(raw, stack, boxes, count, sent_copy=False),
            "protocol": functools.partial(raw, stack, boxes, count, sent_copy=True),
        }
        worker = functools.partial(through_worker, stack, boxes, count)
        cases.append(await compare(name, stack, count * len(boxes), worker, ceilings))
    return cases


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
    report = {"code": code_under_test(), "cases": rows}
    if args.json:
        print(json.dumps(report))
        return
    print_report(report)


def print_report(report: dict[str, Any]) -> None:
    code = report["code"]
    print(f"\nsend throughput, same Postfix and Dovecot, same run (2 cores shared by everything);"
          f" code {code['commit']}{' (dirty)' if code['dirty'] else ''}")  # fmt: skip
    for case in report["cases"]:
        rate, ratio = case["per_s"], case["ratio"]
        print(f"\n  {case['case']}: {case['sends']} sends")
        print(f"    per s: SMTP only {rate['smtp']}, SMTP + Sent copy {rate['protocol']},"
              f" worker {rate['worker']}")  # fmt: skip
        print(f"    worker / SMTP only {ratio['smtp']:.2f}; worker / protocol-equivalent"
              f" {ratio['protocol']:.2f} (target ≥ {TARGET}) {case['verdict']}")  # fmt: skip
        parts = sorted({p for window in case["cpu_ms_per_send"].values() for p in window})
        print("    CPU ms per send " + "".join(f"{p:>13}" for p in parts))
        for label, window in case["cpu_ms_per_send"].items():
            cells = "".join(f"{window.get(p, 0.0):>13.2f}" for p in parts)
            print(f"      {label + ' window':<14}{cells}")


if __name__ == "__main__":
    main()
