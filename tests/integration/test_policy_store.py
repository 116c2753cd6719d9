"""policy's handlers on the real PostgreSQL: sealed org apps, inheritance, and exact send limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from mailbridge.policy import handlers
from mailbridge.policy.adapters.approval import PostgresContacts, PostgresSendHolds
from mailbridge.policy.adapters.postgres import PostgresClientOrgs, PostgresOrgApps
from mailbridge.policy.adapters.quota import PostgresSendQuota
from mailbridge.shared import postgres
from mailbridge.shared.crypto import Sealer, SealingError, generate_key_spec, parse_keys
from mailbridge.shared.errors import ErrorCode, ErrorInfo
from mailbridge.shared.ids import new_id
from mailbridge.shared.messages import (
    AuthorizeSend,
    EffectivePolicy,
    GetEffectivePolicy,
    MessageSendFailed,
    OrgAppBanner,
    OrgEmailConfigView,
    Provider,
    PutClientOrg,
    PutOrgConfig,
    SendAuthorization,
    SendOutcome,
)

MIGRATIONS = Path(__file__).resolve().parents[2] / "services/policy/migrations"
SEALER = Sealer(parse_keys(generate_key_spec("k1")))
MICROSOFT = {"client_id": "app-1", "client_secret": "s3cret-value", "tenant_id": "contoso.com"}


@pytest.fixture
async def policy_pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    async with pool.acquire() as connection:
        await postgres.migrate(connection, "policy", MIGRATIONS)
    return pool


async def put_org(pool: asyncpg.Pool, org_id: str, body: dict[str, object]) -> OrgEmailConfigView:
    reply = await handlers.put_org_config(
        PutOrgConfig(org_id=org_id, body=body),
        apps=PostgresOrgApps(pool),
        sealer=SEALER,
    )
    assert reply.error is None, reply.error
    assert isinstance(reply.document, OrgEmailConfigView)
    return reply.document


async def effective(pool: asyncpg.Pool, org_id: str, **fields: object) -> EffectivePolicy:
    request = GetEffectivePolicy(agent_id="a1", org_id=org_id, **fields)  # type: ignore[arg-type]
    return await handlers.effective_policy(
        request, apps=PostgresOrgApps(pool), client_orgs=PostgresClientOrgs(pool), sealer=SEALER
    )


async def test_an_org_app_is_stored_sealed_and_shown_without_its_secret(
    policy_pool: asyncpg.Pool,
) -> None:
    org_id = new_id("org")
    shown = await put_org(policy_pool, org_id, {"microsoft": MICROSOFT})
    assert shown.microsoft is not None and shown.microsoft.has_client_secret is True
    assert "s3cret-value" not in shown.model_dump_json()
    sealed = await policy_pool.fetchval(
        "SELECT sealed_secret FROM policy.org_oauth_apps WHERE org_id = $1", org_id
    )
    assert "s3cret-value" not in sealed
    with pytest.raises(SealingError):  # moved to another org's row, it does not open
        SEALER.open(sealed, f"org_app:other-org:{Provider.MICROSOFT.value}")


async def test_an_omitted_secret_keeps_the_stored_one_and_a_missing_provider_is_removed(
    policy_pool: asyncpg.Pool,
) -> None:
    org_id = new_id("org")
    await put_org(
        policy_pool,
        org_id,
        {"microsoft": MICROSOFT, "google": {"client_id": "g", "client_secret": "gs"}},
    )
    renamed = {**MICROSOFT, "client_id": "app-2", "client_secret": None}
    shown = await put_org(policy_pool, org_id, {"microsoft": renamed})
    assert shown.google is None
    inherited = await effective(
        policy_pool, org_id, provider=Provider.MICROSOFT, include_secret=True
    )
    assert inherited.oauth_app == OrgAppBanner(
        provider=Provider.MICROSOFT, client_id="app-2", tenant_id="contoso.com", inherited=True
    )
    assert inherited.oauth_client_secret is not None
    assert inherited.oauth_client_secret.get_secret_value() == "s3cret-value"


async def test_a_new_app_without_a_secret_is_refused(policy_pool: asyncpg.Pool) -> None:
    reply = await handlers.put_org_config(
        PutOrgConfig(org_id=new_id("org"), body={"google": {"client_id": "g"}}),
        apps=PostgresOrgApps(policy_pool),
        sealer=SEALER,
    )
    assert reply.error is not None and reply.error.code is ErrorCode.INVALID_INPUT


async def test_an_agents_own_app_overrides_the_orgs(policy_pool: asyncpg.Pool) -> None:
    org_id = new_id("org")
    await put_org(policy_pool, org_id, {"microsoft": MICROSOFT})
    own = await effective(policy_pool, org_id, provider=Provider.MICROSOFT, agent_client_id="mine")
    assert own.oauth_app == OrgAppBanner(
        provider=Provider.MICROSOFT, client_id="mine", inherited=False
    )
    assert own.oauth_client_secret is None
    other_org = await effective(policy_pool, new_id("org"), provider=Provider.MICROSOFT)
    assert other_org.oauth_app is None


async def put_client_org(pool: asyncpg.Pool, org_id: str, body: dict[str, object]) -> str:
    client_org_id = new_id("client")
    reply = await handlers.put_client_org(
        PutClientOrg(org_id=org_id, client_org_id=client_org_id, body=body),
        client_orgs=PostgresClientOrgs(pool),
    )
    assert reply.error is None, reply.error
    return client_org_id


async def authorize(
    pool: asyncpg.Pool, org_id: str, client_org_id: str, agent_id: str, command_id: str
) -> SendAuthorization:
    request = AuthorizeSend(
        agent_id=agent_id, command_id=command_id, sender="agent@acme.com",
        recipients=["bob@acme.com"], org_id=org_id, client_org_id=client_org_id,
    )  # fmt: skip
    return await handlers.authorize_send(
        request, client_orgs=PostgresClientOrgs(pool), quota=PostgresSendQuota(pool),
        holds=PostgresSendHolds(pool), contacts=PostgresContacts(pool),
    )  # fmt: skip


async def test_thirty_concurrent_authorizations_with_a_limit_of_ten_allow_exactly_ten(
    policy_pool: asyncpg.Pool,
) -> None:
    org_id, agent_id = new_id("org"), new_id("agent")
    limits = {"max_per_hour": 10, "max_per_day": 100}
    client_org_id = await put_client_org(
        policy_pool, org_id, {"name": "Acme", "restrictions": limits}
    )
    answers = await asyncio.gather(
        *(authorize(policy_pool, org_id, client_org_id, agent_id, f"cmd-{i}") for i in range(30))
    )
    allowed = [a for a in answers if a.allowed]
    assert len(allowed) == 10
    assert {a.error.code for a in answers if a.error} == {ErrorCode.SEND_LIMIT_REACHED}
    again = await authorize(policy_pool, org_id, client_org_id, agent_id, "cmd-0")
    assert (again.allowed, again.reservation_id) == (answers[0].allowed, answers[0].reservation_id)


async def test_a_redelivered_command_reserves_once_and_a_failed_send_gives_its_unit_back(
    policy_pool: asyncpg.Pool,
) -> None:
    org_id, agent_id = new_id("org"), new_id("agent")
    restrictions = {"max_per_hour": 1}
    client_org_id = await put_client_org(
        policy_pool, org_id, {"name": "A", "restrictions": restrictions}
    )
    first = await authorize(policy_pool, org_id, client_org_id, agent_id, "cmd-a")
    redelivered = await authorize(policy_pool, org_id, client_org_id, agent_id, "cmd-a")
    assert first.allowed and redelivered.reservation_id == first.reservation_id
    assert not (await authorize(policy_pool, org_id, client_org_id, agent_id, "cmd-b")).allowed
    failed = MessageSendFailed(
        agent_id=agent_id, command_id="cmd-a", outcome=SendOutcome.FAILED,
        error=ErrorInfo.of(ErrorCode.AUTH_FAILED),
    )  # fmt: skip
    await handlers.release_after_failure(failed, quota=PostgresSendQuota(policy_pool))
    assert (await authorize(policy_pool, org_id, client_org_id, agent_id, "cmd-b")).allowed
