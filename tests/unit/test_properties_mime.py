"""The MIME builder, for any text in any field: invalid_input, or bytes that read back as exactly
the message meant, with no header line added (:func:`fuzz.contracts.check_build`)."""

from __future__ import annotations

import base64

from hypothesis import example, given, note

from fuzz import contracts
from mailbridge.mail_worker.domain import mime
from mailbridge.shared.messages import Attachment, SendMessage
from tests import strategies as s

ENCODED_B = s.encoded_word("utf-8", "B", s.INJECTED.encode(), True)


def command(**fields: object) -> SendMessage:
    base: dict[str, object] = {"to": ["ada@x.example"], "subject": "Hi", "text": "hello"}
    return SendMessage(agent_id="agent-1", command_id="cmd_example", **(base | fields))


@s.PROPERTIES
@given(s.send_commands())
@example(command(subject=ENCODED_B))  # CPython gh-121650: a real Bcc line on this Python
@example(command(subject="=?utf-8?Q?Hello=0D=0ABcc:_evil@evil.example?="))
@example(command(in_reply_to=f"<a@b.example> {ENCODED_B}"))
@example(command(in_reply_to="<a@b.example>", references=[f"<r@b.example>\r\nBcc: {ENCODED_B}"]))
@example(command(references=["<r@b.example> <s@b.example>", "<a@b.example>"]))
@example(command(in_reply_to="<a@b.example>", references=["<a@b.example>", "<r@b.example>"]))
@example(command(cc=[f"{ENCODED_B} <c@x.example>"], bcc=["Ada <ada@example.com"]))
@example(command(attachments=[Attachment(filename="utf-8''%0D%0ABcc", content_base64="aGk=")]))
@example(command(subject="x" * 1500, text="y" * 1500))
@example(command(subject="=?utf-8?B?-SGVsbG8NCkJjYzogZXZpbEBldmlsLmV4YW1wbGU?="))
def test_any_command_is_refused_as_invalid_input_or_built_as_meant(cmd: SendMessage) -> None:
    note(repr(cmd.model_dump(exclude_defaults=True)))
    contracts.check_build(cmd)


@s.PROPERTIES
@given(s.ordinary_commands())
@example(command(subject="Grüße aus Köln — " * 12))
@example(command(attachments=[Attachment(filename=" a.pdf", content_base64="aGk=")]))
def test_an_ordinary_command_is_built_never_refused(cmd: SendMessage) -> None:
    note(repr(cmd.model_dump(exclude_defaults=True)))
    mime.build(cmd, sender=contracts.SENDER, now=contracts.NOW)
    contracts.check_build(cmd)


def test_the_examples_are_the_known_attacks() -> None:
    assert base64.b64decode(ENCODED_B[10:-2]) == b"Hello\r\nBcc: evil@evil.example"
