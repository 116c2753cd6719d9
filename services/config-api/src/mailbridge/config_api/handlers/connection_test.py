"""Connection tests: run through a mail-worker and waited for, or started by an authorization."""

from __future__ import annotations

from datetime import timedelta

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.handlers.agents import load_configured
from mailbridge.config_api.handlers.mailbox_status import record_test_result
from mailbridge.config_api.ports import (
    CommandPublisher,
    ConfigRepository,
    TestResults,
)
from mailbridge.shared.clock import Clock
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import (
    ConnectionTested,
    GrantAuthorized,
    TestConnection,
)


async def run_connection_test(
    agent_id: str,
    *,
    principal: Principal,
    repo: ConfigRepository,
    commands: CommandPublisher,
    results: TestResults,
    clock: Clock,
    timeout: float,
) -> ConnectionTested:
    """Ask a mail-worker to test the mailbox and wait for its answer; record it as the status."""
    await load_configured(agent_id, repo, principal)
    command = TestConnection(agent_id=agent_id, expires_at=clock.now() + timedelta(seconds=timeout))
    results.expect(command.command_id)
    await commands.publish(command)
    result = await results.wait(command.command_id, timeout)
    if result is None:
        raise MailbridgeError(ErrorCode.WORKER_UNAVAILABLE)
    await record_test_result(result, repo=repo, clock=clock)
    return result


async def test_after_authorization(
    event: GrantAuthorized, *, repo: ConfigRepository, commands: CommandPublisher
) -> None:
    """A grant was authorized: run the automatic test whose result makes the mailbox connected.
    A config saved without an address takes the one the grant confirmed first, so that the
    worker's credentials (which need one) answer for it."""
    config, _ = await repo.load(event.agent_id)
    if config is None:
        return
    if config.email is None:
        await repo.fill_email(event.agent_id, event.provider, event.email)
    await commands.publish(TestConnection(agent_id=event.agent_id))
