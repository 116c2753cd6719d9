"""Base classes of every NATS message: frozen, tolerant readers, each bound to its subject.

A class carries its subject template; ``nats_subject()`` renders it from the payload's id field and
``subscription()`` turns the id into ``*``. ``dedupe_id()`` is what goes into ``Nats-Msg-Id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, SecretStr

from mailbridge.shared import subjects
from mailbridge.shared.clock import utc_now
from mailbridge.shared.ids import new_id

WireSecret = Annotated[
    SecretStr,
    PlainSerializer(lambda secret: secret.get_secret_value(), return_type=str, when_used="json"),
]
"""A secret that rpc replies carry in clear on the wire, while ``repr`` and logs mask it."""


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    subject_template: ClassVar[str]
    subject_key: ClassVar[str] = "agent_id"

    def nats_subject(self) -> str:
        return subjects.render(self.subject_template, str(getattr(self, self.subject_key)))

    @classmethod
    def subject_for(cls, subject_id: str) -> str:
        return subjects.render(cls.subject_template, subject_id)

    @classmethod
    def subscription(cls) -> str:
        return subjects.wildcard(cls.subject_template)

    def dedupe_id(self) -> str:
        return new_id("msg")


class Command(Message):
    """Work to do, imperative (``TestConnection``). ``command_id`` is the idempotency key."""

    agent_id: str
    command_id: str = Field(default_factory=lambda: new_id("cmd"))
    issued_at: AwareDatetime = Field(default_factory=utc_now)

    def dedupe_id(self) -> str:
        return self.command_id


class Event(Message):
    """A fact, past tense (``ConnectionTested``)."""

    event_id: str = Field(default_factory=lambda: new_id("evt"))
    occurred_at: AwareDatetime = Field(default_factory=utc_now)

    def dedupe_id(self) -> str:
        return self.event_id


class Request(Message):
    """A question that needs an answer now, over core NATS (``GetCredentials``)."""


class Reply(BaseModel):
    """The answer to a Request; not bound to a subject (it goes to the reply inbox)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def aware(value: datetime) -> datetime:
    """Refuse naive datetimes where a plain ``datetime`` sneaks in."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware (UTC)")
    return value
