"""One send is one trace, exported by every service it crosses to the operator's collector.

The stack is this module's own, its services exporting to an OTLP/HTTP receiver on loopback
(``MAILBRIDGE_OTLP_ENDPOINT``, batches at most 0.2 s old). A message sent through the real mail
stack must show up there as one trace: config-api's HTTP request, its outbox publish, the
mail-worker's consume, policy's answer to the worker's authorize rpc, the SMTP submission with the
server's answer, and the ``sent`` event's publish (consumed by config-api) — each span's parent in
the trace and from the service that handed the work over.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from nats.aio.client import Client

from mailbridge.devstack.mailstack import MailStack
from mailbridge.devstack.supervisor import ServiceProcess
from mailbridge.devstack.system import RunningSystem
from mailbridge.shared.messages import (
    AuthorizeSend,
    CheckHealth,
    MessageSent,
    SendMessage,
)
from tests.e2e.databases import own_system, stack_api, stack_bus
from tests.e2e.mailboxes import agent_with_mailbox, new_recipient
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver
from tests.support.waiting import eventually

api, bus = stack_api, stack_bus  # this module's stack's client fixtures

SERVICES = ("config-api", "policy", "oauth-broker", "mail-worker")
EXPORT_DELAY_SECONDS = 0.2
SEND_ROUTE = "POST /bridge/agents/{agent_id}/messages"
SMTP_SPAN = "smtp submit"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def stack(
    postgres_dsn: str, mail_stack: MailStack, receiver: OtlpReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningSystem]:  # fmt: skip
    exporting = {
        "MAILBRIDGE_OTLP_ENDPOINT": receiver.endpoint,
        "MAILBRIDGE_OTLP_EXPORT_DELAY_SECONDS": str(EXPORT_DELAY_SECONDS),
    }

    def export_spans(processes: list[ServiceProcess]) -> list[ServiceProcess]:
        return [dataclasses.replace(p, env={**p.env, **exporting}) for p in processes]

    with own_system(
        postgres_dsn, tmp_path_factory.mktemp("traces"), "tracedb",
        ca_file=mail_stack.endpoints.ca_file, arrange=export_spans,
    ) as system:  # fmt: skip
        yield system


@dataclasses.dataclass(frozen=True)
class Trace:
    """The spans of one trace as the receiver has them, and how they hang together."""

    spans: list[ReceivedSpan]

    def named(self, service: str, name: str) -> ReceivedSpan | None:
        return next((s for s in self.spans if (s.service, s.name) == (service, name)), None)

    def one(self, service: str, name: str) -> ReceivedSpan:
        found = self.named(service, name)
        assert found is not None, (service, name, self.outline())
        return found

    def parent(self, span: ReceivedSpan) -> ReceivedSpan | None:
        return next((s for s in self.spans if s.span_id == span.parent_span_id), None)

    def handed_over_by(self, span: ReceivedSpan) -> str | None:
        """The service of the nearest ancestor outside the span's own service."""
        parent = self.parent(span)
        while parent is not None and parent.service == span.service:
            parent = self.parent(parent)
        return parent.service if parent is not None else None

    def descends_from(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        parent = self.parent(span)
        while parent is not None and parent != ancestor:
            parent = self.parent(parent)
        return parent == ancestor

    def outline(self) -> list[tuple[str, str]]:
        return sorted((s.service, s.name) for s in self.spans)


async def test_one_send_is_one_trace_from_the_http_request_to_the_sent_event(
    api: httpx.AsyncClient, stack: RunningSystem, mail_stack: MailStack, receiver: OtlpReceiver
) -> None:
    agent = await agent_with_mailbox(api, mail_stack)
    recipient, _ = await new_recipient(mail_stack)
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {"traceparent": f"00-{trace_id}-{caller_span}-01"}
    body = {"to": [recipient], "subject": "traced subject", "text": "traced body"}
    answer = await api.post(f"/bridge/agents/{agent.agent_id}/messages", json=body, headers=headers)
    assert answer.status_code == 202, answer.text

    command = SendMessage.subject_for(agent.agent_id)
    authorize = AuthorizeSend.subject_for(agent.agent_id)
    sent = MessageSent.subject_for(agent.agent_id)
    expected = [
        ("config-api", SEND_ROUTE),
        ("config-api", f"{command} publish"),
        ("mail-worker", f"{command} process"),
        ("mail-worker", f"{authorize} publish"),
        ("policy", f"{authorize} process"),
        ("mail-worker", SMTP_SPAN),
        ("mail-worker", f"{sent} publish"),
        ("config-api", f"{sent} process"),
    ]

    async def complete() -> Trace | None:
        found = Trace(receiver.of_trace(trace_id))
        return found if all(found.named(*span) for span in expected) else None

    trace = await eventually(complete, what="the send's spans", wake=receiver.woken())

    request = trace.one("config-api", SEND_ROUTE)
    assert request.parent_span_id == caller_span  # the caller's trace, continued
    orphans = [s for s in trace.spans if s is not request and trace.parent(s) is None]
    assert orphans == [], "every span's parent is in the trace"

    assert trace.descends_from(trace.one("config-api", f"{command} publish"), request)
    consumed = trace.one("mail-worker", f"{command} process")
    assert trace.handed_over_by(consumed) == "config-api"
    decided = trace.one("policy", f"{authorize} process")
    assert trace.handed_over_by(decided) == "mail-worker"
    assert trace.descends_from(decided, consumed)
    submitted = trace.one("mail-worker", SMTP_SPAN)
    assert trace.parent(submitted) == consumed
    assert submitted.attributes["smtp.response.code"] == 250
    assert trace.descends_from(trace.one("mail-worker", f"{sent} publish"), consumed)
    assert trace.handed_over_by(trace.one("config-api", f"{sent} process")) == "mail-worker"

    shown = json.dumps([s.attributes for s in trace.spans])
    for secret in (recipient, agent.address, "traced subject", "traced body"):
        assert secret not in shown, f"{secret!r} is in a span's attributes"


async def test_every_service_exports_its_spans(bus: Client, receiver: OtlpReceiver) -> None:
    """oauth-broker is on no password account's send: its health rpc shows it exports too."""
    trace_id = secrets.token_hex(16)
    headers = {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}
    for service in SERVICES:
        question = CheckHealth(service=service)
        await bus.request(question.nats_subject(), question.model_dump_json().encode(),
                          timeout=10, headers=headers)  # fmt: skip

    async def exported() -> set[str] | None:
        services = {span.service for span in receiver.of_trace(trace_id)}
        return services if services >= set(SERVICES) else None

    await eventually(exported, what="a span from each service", wake=receiver.woken())
