"""What an OAuth grant changes in config-api: an authorization fills in the address a config was
saved without (before the automatic test, which needs it), the worker's credentials of an OAuth
mailbox carry no secret, and a disconnect says what became of the grant."""

from __future__ import annotations

from typing import Any

import pytest

from mailbridge.config_api.domain.email_config import AgentIn
from mailbridge.config_api.handlers import agents, connection_test, email_config
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import (
    GrantAuthorized,
    GrantRevocationReply,
    Message,
    Provider,
    TestConnection,
)
from tests.factories import BODY, OPERATOR, SEALER
from tests.fakes.config_api import FakeConfigRepository, RecordingPublisher, RecordingRevoker
from tests.fakes.policy_service import FakePolicyService

GOOGLE = {"provider": "google", "client_id": "google-id", "client_secret": "google-secret"}
MICROSOFT = {"provider": "microsoft", "client_id": "ms-id", "client_secret": "ms-secret"}
IMAP = {"provider": "imap", "email": "a@fastmail.com", "preset": "fastmail", "password": "pw"}


async def saved(body: dict[str, Any]) -> FakeConfigRepository:
    repo = FakeConfigRepository()
    await agents.register_agent(
        "a1", AgentIn(org_id="acme", client_org_id="emea"), repo=repo, principal=OPERATOR
    )
    await email_config.save_email_config(
        "a1", BODY.validate_python(body), repo=repo, sealer=SEALER, principal=OPERATOR,
        policy=FakePolicyService(),
    )  # fmt: skip
    return repo


def authorized(email: str, provider: Provider = Provider.GOOGLE) -> GrantAuthorized:
    return GrantAuthorized(agent_id="a1", provider=provider, email=email)


class EmailAtPublish(RecordingPublisher):
    """Notes the config's address as each command goes out."""

    def __init__(self, repo: FakeConfigRepository) -> None:
        super().__init__()
        self.repo, self.emails_seen = repo, list[str | None]()

    async def publish(self, message: Message) -> None:
        self.emails_seen.append(self.repo.configs["a1"].email)
        await super().publish(message)


async def test_an_authorization_stores_the_confirmed_address_before_the_test_runs() -> None:
    repo = await saved(GOOGLE)
    commands = EmailAtPublish(repo)

    await connection_test.test_after_authorization(
        authorized("ada@gmail.example"), repo=repo, commands=commands
    )

    assert commands.emails_seen == ["ada@gmail.example"]
    assert [type(m) for m in commands.published] == [TestConnection]
    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)
    assert reply.credentials is not None and reply.credentials.email == "ada@gmail.example"


async def test_an_address_saved_with_the_config_is_kept() -> None:
    repo = await saved({**GOOGLE, "email": "saved@gmail.example"})

    await connection_test.test_after_authorization(
        authorized("saved@gmail.example"), repo=repo, commands=RecordingPublisher()
    )
    await connection_test.test_after_authorization(
        authorized("other@gmail.example"), repo=repo, commands=RecordingPublisher()
    )

    assert repo.configs["a1"].email == "saved@gmail.example"


async def test_an_oauth_config_without_an_address_is_not_authorized_yet() -> None:
    """Its address comes with its first authorization: until then, "Click Authorize"."""
    repo = await saved(MICROSOFT)
    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)
    assert reply.error is not None and reply.error.code is ErrorCode.OAUTH_NOT_AUTHORIZED


@pytest.mark.parametrize("body", [GOOGLE, MICROSOFT], ids=["google", "microsoft"])
async def test_an_oauth_mailboxs_credentials_name_it_and_its_orgs_and_hold_no_secret(
    body: dict[str, Any],
) -> None:
    repo = await saved({**body, "email": "ada@example.com"})

    reply = await email_config.get_credentials("a1", repo=repo, sealer=SEALER)

    assert reply.credentials is not None
    assert reply.credentials.model_dump(exclude_none=True, exclude_defaults=True) == {
        "provider": Provider(body["provider"]),
        "email": "ada@example.com",
        "agent_id": "a1",
        "org_id": "acme",
        "client_org_id": "emea",
    }
    assert body["client_secret"] not in reply.model_dump_json()


async def test_disconnecting_an_oauth_mailbox_says_what_the_broker_did() -> None:
    repo = await saved(MICROSOFT)
    note = "Microsoft has no per-grant revocation: the tokens were erased."
    revoker = RecordingRevoker(GrantRevocationReply(revoked=True, note=note))

    view = await email_config.delete_email_config(
        "a1", repo=repo, principal=OPERATOR, revoker=revoker
    )

    assert revoker.revoked == ["a1"]
    assert view.revocation is not None
    assert view.revocation.model_dump() == {
        "revoked": True,
        "revoked_at_provider": False,
        "note": note,
    }


async def test_a_broker_that_does_not_answer_leaves_the_grant_said_unrevoked() -> None:
    repo = await saved(GOOGLE)

    view = await email_config.delete_email_config(
        "a1", repo=repo, principal=OPERATOR, revoker=RecordingRevoker(None)
    )

    assert view.revocation is not None
    assert (view.revocation.revoked, view.revocation.revoked_at_provider) == (False, False)
    assert view.revocation.note is not None and "did not answer" in view.revocation.note
    assert "a1" not in repo.configs  # disconnected all the same


async def test_disconnecting_an_imap_mailbox_has_no_revocation() -> None:
    repo, revoker = await saved(IMAP), RecordingRevoker()
    view = await email_config.delete_email_config(
        "a1", repo=repo, principal=OPERATOR, revoker=revoker
    )
    assert view.revocation is None and revoker.revoked == []
