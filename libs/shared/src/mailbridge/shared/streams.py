"""JetStream streams of the contract, their idempotent creation by the owning service, and how
many copies of each the cluster keeps.

A service creates its streams, KV buckets and object buckets through one ``ReplicatedJetStream``
(``shared.service.start`` builds it from ``MAILBRIDGE_STREAM_REPLICAS``). nats-py creates a KV or
object bucket as a stream through ``add_stream``, so overriding ``add_stream`` and
``update_stream`` there gives every one of them the same replica count, and no creation site has
to remember it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger(__name__)

_DAY = 24 * 3600.0
# JSStreamNameExistErr: "stream name already in use with a different configuration"
_NAME_IN_USE = 10058
RESCALE_SECONDS = 30.0  # a new or rescaled stream is ready within this, or start fails


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


class ReplicatedJetStream(JetStreamContext):
    """A JetStream context whose every created or updated stream has ``replicas`` copies.

    A bucket that exists with another count (made before the setting changed) cannot be created
    again as it is now, so its count is changed first: JetStream moves a stream to more or fewer
    replicas on update, while the service keeps running. Any other difference still fails as
    before, so a bucket is never opened silently with a configuration other than the one asked."""

    def __init__(self, connection: Client, replicas: int) -> None:
        super().__init__(connection)
        self.replicas = replicas

    async def add_stream(self, config: StreamConfig | None = None, **params: Any) -> StreamInfo:
        wanted = self._replicated(config, params)
        try:
            info = await super().add_stream(wanted)
        except BadRequestError as exc:
            if exc.err_code != _NAME_IN_USE or not await self._rescaled(wanted):
                raise
            info = await super().add_stream(wanted)
        if not _led(info):  # a new replicated stream answers its creation before electing
            await self._until(info, _led)
        return info

    async def update_stream(self, config: StreamConfig | None = None, **params: Any) -> StreamInfo:
        wanted = self._replicated(config, params)
        assert wanted.name is not None
        had = (await self.stream_info(wanted.name)).config.num_replicas or 1
        info = await super().update_stream(wanted)
        if had != self.replicas:  # only then: an unchanged stream may have a copy down
            log.info("stream %s: %s replicas -> %s", wanted.name, had, self.replicas)
            await self._until(info, self._all_current)
        return info

    def _replicated(self, config: StreamConfig | None, params: dict[str, Any]) -> StreamConfig:
        return (config or StreamConfig()).evolve(**{**params, "num_replicas": self.replicas})

    async def _rescaled(self, wanted: StreamConfig) -> bool:
        """Whether the existing stream had another replica count, now changed to ours."""
        assert wanted.name is not None
        existing = (await self.stream_info(wanted.name)).config
        if (existing.num_replicas or 1) == self.replicas:
            return False
        await self.update_stream(existing)
        return True

    def _all_current(self, info: StreamInfo) -> bool:
        """A leader, and every other copy current: a stream whose count just changed takes
        writes only then (a KV put in between times out)."""
        if info.cluster is None:  # a server not in a cluster: one copy is all there can be
            return self.replicas == 1
        followers = info.cluster.replicas or []
        return (
            _led(info) and len(followers) == self.replicas - 1 and all(f.current for f in followers)
        )

    async def _until(self, info: StreamInfo, ready: Callable[[StreamInfo], bool]) -> None:
        """Until the stream is ``ready`` for its service, which uses it right after; JetStream
        announces no such moment, so its stream info is asked again."""
        name, timeout = info.config.name, RESCALE_SECONDS
        assert name is not None
        async with asyncio.timeout(timeout):
            while not ready(info):
                await asyncio.sleep(0.1)
                info = await self.stream_info(name)


def _led(info: StreamInfo) -> bool:
    """Whether the stream has a leader to take writes (a lone server always leads its own)."""
    return info.cluster is None or info.cluster.leader is not None
