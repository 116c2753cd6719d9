"""mime.build parses each address list once and caches header classes: the same envelope and the
same bytes as the shared parser over all three lists and the standard library's own registry."""

from __future__ import annotations

import email.policy

import pytest

from mailbridge.mail_worker.domain import mime
from mailbridge.shared.addresses import parse_recipients
from mailbridge.shared.messages import Attachment, SendMessage
from tests.fakes.clock import FixedClock

TRICKY = SendMessage(
    agent_id="a1",
    command_id="cmd_tricky",
    to=['Ada <ada@x.example>, "Doe, J" <j@y.example>', "ADA@X.example"],
    cc=["c@z.example", "J@Y.example"],
    bcc=["d@w.example", "ada@x.example"],
    subject="Grüße, and a long subject " * 4,
    text="hello",
    html="<p>hello</p>",
    attachments=[Attachment(filename="a.txt", content_type="text/plain", content_base64="aGk=")],
)


def test_the_envelope_is_the_shared_parse_of_to_cc_and_bcc_together() -> None:
    built = mime.build(TRICKY, sender="s@x.example", now=FixedClock().now())
    everyone = parse_recipients([*TRICKY.to, *TRICKY.cc, *TRICKY.bcc])
    assert built.recipients == [r.envelope for r in everyone]
    assert built.recipients == ["ada@x.example", "j@y.example", "c@z.example", "d@w.example"]


def test_the_bytes_are_those_of_the_standard_header_registry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    single_part = TRICKY.model_copy(update={"html": None, "attachments": []})  # no random boundary
    built = mime.build(single_part, sender="s@x.example", now=FixedClock().now())
    monkeypatch.setattr(mime, "_POLICY", email.policy.SMTP.clone(max_line_length=998))
    standard = mime.build(single_part, sender="s@x.example", now=FixedClock().now())
    assert built.as_bytes() == standard.as_bytes()
