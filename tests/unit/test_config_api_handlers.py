from __future__ import annotations

from typing import Any

import pytest

from mailbridge.config_api.domain.api_keys import Principal
from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.handlers import agents, connection_test, email_config, mailbox_status
from mailbridge.shared.errors import ErrorCode, ErrorInfo, MailbridgeError
from mailbridge.shared.messages import AgentUpdated, EmailConfigSaved, MailboxStatus, StatusChanged
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.clock import FixedClock
from tests.fakes.config_api import (
    AnsweringResults,
    FakeConfigRepository,
    RecordingPublisher,
    RecordingRevoker,
)
from tests.fakes.policy_service import FakePolicyService

POLICY = FakePolicyService()  # IMAP agents without a client org never ask it


def imap_body(password: str | None = "app-pw") -> Any:
    body: dict[str, Any] = {
        "provider": "imap",
        "email": "agent@example.com",
        "imap": {"host": "imap.example.com", "port": 993, "security": "ssl"},
        "smtp": {"host": "smtp.example.com", "port": 587, "security": "starttls"},
    }
    if password is not None:
        body["password"] = password
    return BODY.validate_python(body)


async def saved_agent(repo: FakeConfigRepository, agent_id: str = "a1") -> str:
    await agents.register_agent(agent_id, AgentIn(org_id="o1"), repo=repo, principal=OPERATOR)
    await email_config.save_email_config(
        agent_id, imap_body(), repo=repo, sealer=SEALER, principal=OPERATOR, policy=POLICY
    )
    return agent_id


async def test_saving_an_imap_config_seals_the_password_and_shows_configured() -> None:
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="o1"), repo=repo, principal=OPERATOR)

    view = await email_config.save_email_config(
        "a1", imap_body(), repo=repo, sealer=SEALER, principal=OPERATOR, policy=POLICY
    )

    assert (view.status, view.has_password) == (MailboxStatus.CONFIGURED, True)
    assert "app-pw" not in view.model_dump_json()
    sealed = repo.configs["a1"].sealed_secret
    assert sealed is not None
    assert SEALER.open(sealed, "a1") == "app-pw"
    assert [type(e) for e in repo.outbox] == [AgentUpdated, EmailConfigSaved, StatusChanged]


async def test_an_omitted_password_keeps_the_stored_one() -> None:
    repo = FakeConfigRepository()
    await saved_agent(repo)
    before = repo.configs["a1"].sealed_secret

    await email_config.save_email_config(
        "a1", imap_body(password=None), repo=repo, sealer=SEALER, principal=OPERATOR, policy=POLICY
    )

    assert repo.configs["a1"].sealed_secret == before
    assert repo.configs["a1"].version == 2


async def test_a_first_imap_save_without_a_password_is_refused() -> None:
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="o1"), repo=repo, principal=OPERATOR)
    with pytest.raises(MailbridgeError) as raised:
        await email_config.save_email_config(
            "a1",
            imap_body(password=None),
            repo=repo,
            sealer=SEALER,
            principal=OPERATOR,
            policy=POLICY,
        )
    assert raised.value.code is ErrorCode.INVALID_INPUT


async def test_a_passing_test_makes_the_mailbox_connected() -> None:
    repo, publisher = FakeConfigRepository(), RecordingPublisher()
    agent_id = await saved_agent(repo)
    results = AnsweringResults({"agent_id": agent_id, "ok": True, "inbox_total": 3, "unread": 2})

    result = await connection_test.run_connection_test(
        agent_id,
        principal=OPERATOR,
        repo=repo,
        commands=publisher,
        results=results,
        clock=FixedClock(),
        timeout=5,
    )

    assert result.ok
    assert publisher.published[0].nats_subject().startswith("cmd.mail.connection.test")
    assert results.expected == [publisher.published[0].command_id]  # type: ignore[attr-defined]
    assert repo.statuses[agent_id].status is MailboxStatus.CONNECTED


async def test_a_failed_test_sets_error_with_the_last_error_banner() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)
    failure = ErrorInfo.of(ErrorCode.AUTH_FAILED)
    results = AnsweringResults({"agent_id": agent_id, "ok": False, "error": failure})

    await connection_test.run_connection_test(
        agent_id,
        principal=OPERATOR,
        repo=repo,
        commands=RecordingPublisher(),
        results=results,
        clock=FixedClock(),
        timeout=5,
    )

    status = repo.statuses[agent_id]
    assert status.status is MailboxStatus.ERROR
    assert status.last_error is not None
    assert status.last_error.code == "auth_failed"
    assert status.last_error.source == "connection_test"


async def test_no_worker_in_time_is_worker_unavailable_and_leaves_the_status() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)
    with pytest.raises(MailbridgeError) as raised:
        await connection_test.run_connection_test(
            agent_id, principal=OPERATOR, repo=repo, commands=RecordingPublisher(), results=AnsweringResults(None),
            clock=FixedClock(), timeout=5,
        )  # fmt: skip
    assert raised.value.code is ErrorCode.WORKER_UNAVAILABLE
    assert repo.statuses[agent_id].status is MailboxStatus.CONFIGURED


async def test_testing_an_unconfigured_agent_is_refused() -> None:
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="o1"), repo=repo, principal=OPERATOR)
    with pytest.raises(MailbridgeError) as raised:
        await connection_test.run_connection_test(
            "a1", principal=OPERATOR, repo=repo, commands=RecordingPublisher(), results=AnsweringResults(None),
            clock=FixedClock(), timeout=5,
        )  # fmt: skip
    assert raised.value.code is ErrorCode.NOT_CONFIGURED


async def test_the_same_result_delivered_twice_changes_the_status_once() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)
    results = AnsweringResults({"agent_id": agent_id, "ok": True})
    result = await connection_test.run_connection_test(
        agent_id,
        principal=OPERATOR,
        repo=repo,
        commands=RecordingPublisher(),
        results=results,
        clock=FixedClock(),
        timeout=5,
    )
    changes_before = len(repo.outbox)

    await mailbox_status.record_test_result(result, repo=repo, clock=FixedClock())

    assert len(repo.outbox) == changes_before


async def test_credentials_open_the_sealed_password_for_the_worker() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)

    reply = await email_config.get_credentials(agent_id, repo=repo, sealer=SEALER)

    assert reply.credentials is not None
    assert reply.credentials.password is not None
    assert reply.credentials.password.get_secret_value() == "app-pw"
    assert "app-pw" not in repr(reply)
    assert reply.credentials.username == "agent@example.com"


async def test_deleting_returns_to_not_connected() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)

    revoker = RecordingRevoker()
    view = await email_config.delete_email_config(
        agent_id, repo=repo, principal=OPERATOR, revoker=revoker
    )

    assert view.status is MailboxStatus.NOT_CONNECTED
    assert agent_id not in repo.configs
    assert revoker.revoked == []  # an IMAP config has no grant to revoke


async def test_an_org_key_sees_another_orgs_agent_as_missing() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)
    with pytest.raises(MailbridgeError) as raised:
        await email_config.get_email_config(
            agent_id, repo=repo, principal=Principal("k", "other-org"), policy=POLICY
        )
    assert raised.value.code is ErrorCode.NOT_FOUND


async def test_an_org_key_cannot_take_over_another_orgs_agent() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)
    with pytest.raises(MailbridgeError) as raised:
        await agents.register_agent(
            agent_id, AgentIn(org_id="other-org"), repo=repo, principal=Principal("k", "other-org")
        )
    assert raised.value.code is ErrorCode.NOT_FOUND
    assert repo.agents[agent_id].org_id == "o1"


async def test_a_save_against_a_stale_version_is_refused_and_changes_nothing() -> None:
    repo = FakeConfigRepository()
    agent_id = await saved_agent(repo)  # version 1
    await email_config.save_email_config(
        agent_id, imap_body("second"), repo=repo, sealer=SEALER, principal=OPERATOR, policy=POLICY
    )

    with pytest.raises(MailbridgeError) as raised:
        await email_config.save_email_config(
            agent_id,
            imap_body("stale"),
            repo=repo,
            sealer=SEALER,
            principal=OPERATOR,
            policy=POLICY,
            expected_version=1,
        )

    assert raised.value.code is ErrorCode.PRECONDITION_FAILED
    sealed = repo.configs[agent_id].sealed_secret
    assert sealed is not None and SEALER.open(sealed, agent_id) == "second"


def test_a_preset_fills_the_servers_and_custom_needs_them() -> None:
    fastmail = BODY.validate_python(
        {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail"}
    )
    assert fastmail.imap.host == "imap.fastmail.com" and fastmail.smtp.port == 587
    zoho_eu = BODY.validate_python(
        {"provider": "imap", "email": "a@example.eu", "preset": "zoho-eu"}
    )
    assert zoho_eu.imap.host == "imap.zoho.eu"
    with pytest.raises(ValueError):
        BODY.validate_python({"provider": "imap", "email": "a@example.com", "preset": "custom"})
    with pytest.raises(ValueError):
        BODY.validate_python({"provider": "imap", "email": "a@example.com", "preset": "nope"})


@pytest.mark.parametrize(
    "server",
    [
        {"host": "imap.example.com", "port": 993, "security": "tls"},
        {"host": "imap.example.com", "port": 0, "security": "ssl"},
        {"host": "imap example.com", "port": 993, "security": "ssl"},
        {"host": "imap.example.com\r\nX: y", "port": 993, "security": "ssl"},
    ],
)
def test_bad_servers_are_refused(server: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BODY.validate_python(
            {"provider": "imap", "email": "a@example.com", "imap": server, "smtp": server}
        )


async def test_the_microsoft_365_preset_warns_that_password_sign_in_is_off() -> None:
    repo = FakeConfigRepository()
    await agents.register_agent("a1", AgentIn(org_id="o1"), repo=repo, principal=OPERATOR)
    body = BODY.validate_python(
        {"provider": "imap", "email": "a@contoso.com", "preset": "microsoft365", "password": "x"}
    )

    view = await email_config.save_email_config(
        "a1", body, repo=repo, sealer=SEALER, principal=OPERATOR, policy=POLICY
    )

    assert any("Microsoft OAuth" in warning for warning in view.warnings)
