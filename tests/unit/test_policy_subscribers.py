"""policy's rpc subscribers in process, on FastStream's in-memory broker and a container of the
proved in-memory stores: a client org is stored and answered with its event written beside it, and
a request that does not decode is answered ``invalid_input`` naming the field, never left to time
out."""

from __future__ import annotations

import json

import asyncpg
from faststream.nats import NatsBroker, TestNatsBroker
from prometheus_client import CollectorRegistry

from mailbridge.policy.container import Container
from mailbridge.policy.entrypoints import nats
from mailbridge.policy.entrypoints.metrics import PolicyMetrics
from mailbridge.shared.crypto import Sealer, generate_key_spec, parse_keys
from mailbridge.shared.messages import (
    AuthorizeSend,
    ClientOrgChanged,
    ClientOrgIn,
    ClientOrgView,
    PolicyDocumentReply,
    PutClientOrg,
    SendAuthorization,
)
from tests.fakes.policy import (
    MemoryClientOrgs,
    MemoryContacts,
    MemoryOrgApps,
    MemorySendHolds,
    MemorySendQuota,
)


def policy(client_orgs: MemoryClientOrgs, registry: CollectorRegistry | None = None) -> NatsBroker:
    broker = NatsBroker()
    container = Container(
        apps=MemoryOrgApps(),
        client_orgs=client_orgs,
        quota=MemorySendQuota(),
        holds=MemorySendHolds(),
        contacts=MemoryContacts(),
        sealer=Sealer(parse_keys(generate_key_spec("k1"))),
        metrics=PolicyMetrics(registry or CollectorRegistry()),
    )
    nats.register(broker, container)
    return broker


async def test_a_put_client_org_answers_the_stored_view_and_writes_its_event() -> None:
    client_orgs = MemoryClientOrgs()
    body = ClientOrgIn(name="Globex", email_domain="globex.com")
    request = PutClientOrg(org_id="acme", client_org_id="globex", body=body)
    async with TestNatsBroker(policy(client_orgs)) as broker:
        answer = await broker.request(request.model_dump(mode="json"), request.nats_subject())
    reply = PolicyDocumentReply.model_validate_json(answer.body)
    assert isinstance(reply.document, ClientOrgView)
    assert (reply.document.name, reply.document.email_domain) == ("Globex", "globex.com")
    assert [type(event) for event in client_orgs.outbox] == [ClientOrgChanged]


async def test_a_request_that_does_not_decode_is_answered_invalid_input() -> None:
    request = PutClientOrg(org_id="acme", client_org_id="globex", body=ClientOrgIn(name="Globex"))
    broken = json.loads(request.model_dump_json())
    broken["body"]["restrictions"] = {"max_per_hour": "many"}
    async with TestNatsBroker(policy(MemoryClientOrgs())) as broker:
        answer = await broker.request(broken, request.nats_subject())
    reply = PolicyDocumentReply.model_validate_json(answer.body)
    assert reply.document is None and reply.error is not None
    assert reply.error.code == "invalid_input"
    assert "max_per_hour" in reply.error.message


class ClientOrgsAway(MemoryClientOrgs):
    """The client orgs when policy's PostgreSQL is stopped: the pool's connection is refused."""

    async def get(self, org_id: str, client_org_id: str) -> None:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")


async def test_a_send_policy_cannot_check_for_its_database_is_answered_retry_never_allowed() -> (
    None
):
    registry = CollectorRegistry()
    request = AuthorizeSend(
        agent_id="a1", command_id="c1", sender="a1@globex.com", recipients=["x@acme.com"],
        org_id="acme", client_org_id="globex",
    )  # fmt: skip
    async with TestNatsBroker(policy(ClientOrgsAway(), registry)) as broker:
        answer = await broker.request(request.model_dump(mode="json"), request.nats_subject())
    reply = SendAuthorization.model_validate_json(answer.body)
    assert (reply.allowed, reply.undecided, reply.reservation_id) == (False, True, None)
    assert reply.error is not None and reply.error.code == "database_unavailable"
    decided = registry.get_sample_value(
        "mailbridge_policy_send_decisions_total", {"decision": "retry"}
    )
    assert decided == 1
