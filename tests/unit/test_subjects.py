from __future__ import annotations

import pytest

from mailbridge.shared import subjects
from mailbridge.shared.messages import SUBJECT_MESSAGES, OrgChanged, TestConnection
from mailbridge.shared.streams import ALL_STREAMS, MAIL_CMD, POLICY_EVT, stream_for


def test_a_command_renders_its_subject_from_its_agent_id() -> None:
    assert TestConnection(agent_id="a-1").nats_subject() == "cmd.mail.connection.test.v1.a-1"


def test_subscribing_replaces_the_id_with_a_wildcard() -> None:
    assert TestConnection.subscription() == "cmd.mail.connection.test.v1.*"


def test_org_events_take_their_id_from_the_org() -> None:
    assert OrgChanged(org_id="o1").nats_subject() == "evt.policy.org.changed.v1.o1"
    assert stream_for(OrgChanged(org_id="o1").nats_subject()) is POLICY_EVT


@pytest.mark.parametrize("bad", ["a.b", "*", ">", "a b", ""])
def test_an_id_that_would_break_the_subject_grammar_is_refused(bad: str) -> None:
    with pytest.raises(subjects.InvalidSubjectIdError):
        subjects.render(subjects.CMD_CONNECTION_TEST, bad)


@pytest.mark.parametrize("message", SUBJECT_MESSAGES, ids=lambda m: m.__name__)
def test_every_subject_follows_the_grammar_and_ends_in_its_id(message: type) -> None:
    parts = message.subject_template.split(".")
    assert parts[0] in {"cmd", "evt", "rpc"}
    assert parts[-2] == "v1"
    assert parts[-1] == "{id}"


@pytest.mark.parametrize(
    "message",
    [m for m in SUBJECT_MESSAGES if not m.subject_template.startswith("rpc.")],
    ids=lambda m: m.__name__,
)
def test_every_command_and_event_lands_in_exactly_one_stream(message: type) -> None:
    subject = subjects.render(message.subject_template, "x")
    assert stream_for(subject) in ALL_STREAMS
    assert (stream_for(subject) is MAIL_CMD) == subject.startswith("cmd.")
