"""The mailbox status (SPEC §3), changed by test results and by failures the mail plane reports.

Each change is a pure decision run by ``ConfigRepository.update_status`` under a row lock, in
the transaction that also writes its events to the outbox."""

from __future__ import annotations

from mailbridge.config_api.domain import status as transitions
from mailbridge.config_api.domain.email_config import (
    StatusRecord,
    StoredConfig,
)
from mailbridge.config_api.domain.status import MailboxEvent
from mailbridge.config_api.ports import (
    ConfigRepository,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.messages import (
    ConnectionTested,
    Event,
    LastError,
    MailboxStatus,
    StatusChanged,
)

StatusOutcome = tuple[StatusRecord, list[Event]] | None


async def record_test_result(
    result: ConnectionTested, *, repo: ConfigRepository, clock: Clock
) -> None:
    """Apply a test result to the status once, however many times it is delivered."""
    now = clock.now()

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or _already_recorded(status, result.command_id):
            return None
        new_status = StatusRecord(
            status=transitions.status_after_test(result),
            last_error=transitions.last_error_after_test(result, now),
            last_test=_summary_of(result),
        )
        return new_status, status_events(result.agent_id, status, new_status)

    await repo.update_status(result.agent_id, decide)


async def record_mailbox_event(
    event: MailboxEvent, *, repo: ConfigRepository, clock: Clock
) -> None:
    """An OAuth refresh failure, a revoked grant, or a send refused for its credentials: error."""
    error = transitions.error_after_event(event, clock.now())

    def decide(config: StoredConfig | None, status: StatusRecord) -> StatusOutcome:
        if config is None or error is None or _same_error(status, error):
            return None
        new_status = status.model_copy(update={"status": MailboxStatus.ERROR, "last_error": error})
        return new_status, status_events(event.agent_id, status, new_status)

    await repo.update_status(event.agent_id, decide)


def _same_error(status: StatusRecord, error: LastError) -> bool:
    """Already in error for the same reason: a redelivered event changes nothing."""
    shown = status.last_error
    return shown is not None and (shown.code, shown.source) == (error.code, error.source)


def _already_recorded(status: StatusRecord, command_id: str) -> bool:
    return status.last_test is not None and status.last_test.get("command_id") == command_id


def _summary_of(result: ConnectionTested) -> dict[str, object]:
    return result.model_dump(mode="json", exclude={"event_id"})


def status_events(agent_id: str, before: StatusRecord, after: StatusRecord) -> list[Event]:
    if before.status == after.status and before.last_error == after.last_error:
        return []
    return [
        StatusChanged(
            agent_id=agent_id,
            status=after.status,
            previous=before.status,
            last_error=after.last_error,
        )
    ]
