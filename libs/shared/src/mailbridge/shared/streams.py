"""JetStream streams of the contract, and their idempotent creation by the owning service."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

_DAY = 24 * 3600.0


@dataclass(frozen=True)
class StreamDefinition:
    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy
    max_age_seconds: float
    duplicate_window_seconds: float = 120.0

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            max_age=self.max_age_seconds,
            duplicate_window=self.duplicate_window_seconds,
        )


MAIL_CMD = StreamDefinition("MAIL_CMD", ("cmd.mail.>",), RetentionPolicy.WORK_QUEUE, 7 * _DAY)
MAIL_EVT = StreamDefinition("MAIL_EVT", ("evt.mail.>",), RetentionPolicy.LIMITS, 14 * _DAY)
CONFIG_EVT = StreamDefinition("CONFIG_EVT", ("evt.config.>",), RetentionPolicy.LIMITS, 14 * _DAY)
OAUTH_EVT = StreamDefinition("OAUTH_EVT", ("evt.oauth.>",), RetentionPolicy.LIMITS, 14 * _DAY)
POLICY_EVT = StreamDefinition("POLICY_EVT", ("evt.policy.>",), RetentionPolicy.LIMITS, 14 * _DAY)

ALL_STREAMS = (MAIL_CMD, MAIL_EVT, CONFIG_EVT, OAUTH_EVT, POLICY_EVT)


async def ensure_stream(js: JetStreamContext, definition: StreamDefinition) -> None:
    """Create the stream, or bring an existing one to this definition; safe from every replica."""
    config = definition.config()
    try:
        await js.stream_info(definition.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s", definition.name)
        return
    await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, definitions: tuple[StreamDefinition, ...]) -> None:
    for definition in definitions:
        await ensure_stream(js, definition)


def stream_for(subject: str) -> StreamDefinition:
    """The stream that captures a concrete command or event subject."""
    for definition in ALL_STREAMS:
        if any(_matches(pattern, subject) for pattern in definition.subjects):
            return definition
    raise LookupError(f"no stream captures {subject!r}")


def _matches(pattern: str, subject: str) -> bool:
    prefix = pattern.removesuffix(">")
    return subject.startswith(prefix) if pattern.endswith(">") else pattern == subject
