"""The mail-worker's side of ``rpc.policy.send.authorize``, on FastStream's in-memory broker: a
policy that could not decide makes the send wait (a RetryableError, naked with at least the delay
policy asked for), never go out unchecked and never fail as refused."""

from __future__ import annotations

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from mailbridge.mail_worker.adapters.policy import NatsSendPolicy
from mailbridge.shared.bus import NatsBus
from mailbridge.shared.errors import ErrorCode, ErrorInfo, RetryableError
from mailbridge.shared.messages import AuthorizeSend, SendAuthorization

REQUEST = AuthorizeSend(
    agent_id="a1", command_id="c1", sender="a1@globex.com", recipients=["x@acme.com"],
    org_id="acme", client_org_id="globex",
)  # fmt: skip


def policy_answering(reply: SendAuthorization) -> NatsBroker:
    broker = NatsBroker()

    @broker.subscriber(AuthorizeSend.subscription(), queue="policy")
    async def send_authorize(_: AuthorizeSend) -> str:
        return reply.model_dump_json()

    return broker


async def test_an_undecided_send_waits_for_as_long_as_policy_asked() -> None:
    away = ErrorInfo.of(ErrorCode.DATABASE_UNAVAILABLE)
    async with TestNatsBroker(policy_answering(SendAuthorization.retry_later(away, 5.0))) as bus:
        with pytest.raises(RetryableError) as raised:
            await NatsSendPolicy(NatsBus(bus), timeout=1.0).authorize(REQUEST)
    assert raised.value.code is ErrorCode.DATABASE_UNAVAILABLE
    assert raised.value.retry_after_seconds == 5.0


async def test_an_allowed_send_is_answered_as_it_came() -> None:
    allowed = SendAuthorization(allowed=True, reservation_id="r1")
    async with TestNatsBroker(policy_answering(allowed)) as bus:
        decision = await NatsSendPolicy(NatsBus(bus), timeout=1.0).authorize(REQUEST)
    assert decision == allowed
