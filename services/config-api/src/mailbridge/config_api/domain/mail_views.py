"""What the read routes answer: a page of a folder, and one message as ``message.received``
has it (plus whether it was seen). The worker's replies, without their ``error`` (an error is
a problem+json answer instead)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mailbridge.shared.messages import FetchedMessage, MessageList, MessageReceived, MessageSummary


class MessagePage(BaseModel):
    model_config = ConfigDict(frozen=True)

    folder: str
    messages: list[MessageSummary]
    next_cursor: str | None = Field(description="for the next (older) page; null on the last")

    @classmethod
    def of(cls, reply: MessageList) -> MessagePage:
        return cls(folder=reply.folder, messages=reply.messages, next_cursor=reply.next_cursor)


class MessageView(BaseModel):
    model_config = ConfigDict(frozen=True)

    message_ref: str
    seen: bool
    message: MessageReceived | None = Field(
        description="parsed as in message.received; null when mailbridge cannot parse it"
        " (beyond its limits: read it raw)"
    )

    @classmethod
    def of(cls, reply: FetchedMessage) -> MessageView:
        return cls(message_ref=reply.message_ref, seen=reply.seen, message=reply.message)
