"""Client-organization rules: the recipient bypass table, the sender's domain, limits, banners;
and the org requests that do not decode, which policy answers rather than leaving them to time out."""

from __future__ import annotations

from typing import Any

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from mailbridge.policy.domain import restrictions as rules
from mailbridge.policy.domain.restrictions import WindowCounts
from mailbridge.policy.entrypoints import nats as policy_nats
from mailbridge.shared.errors import ErrorCode
from mailbridge.shared.messages import (
    ClientOrgIn,
    PolicyDocumentReply,
    PutClientOrg,
    PutOrgConfig,
    Restrictions,
)

ALLOW = Restrictions(
    allowed_recipients=["allowed.com", "boss@partner.org", "*.acme.com", "bücher.example"]
)

ALLOWED = [
    "ALICE@ALLOWED.COM",
    "alice@allowed.com.",
    "Alice <alice@Allowed.Com>",
    '"Doe, Jane" <jane@allowed.com>',
    '"evil@x.io"@allowed.com',  # a quoted local part at an allowed domain is delivered there
    "Boss@Partner.Org",
    '"boss"@partner.org',
    "x@eu.acme.com",
    "x@a.b.acme.com",
    "leser@BÜCHER.example",
    "leser@xn--bcher-kva.example",
    "a@allowed.com, b@allowed.com",
    "a@allowed.com; b@allowed.com",
]
REFUSED = [
    '"ok@allowed.com" <evil@x.io>',
    "a@allowed.com, evil@x.io",
    "a@allowed.com; evil@x.io",
    "a@\u0430llowed.com",  # a Cyrillic a: a look-alike domain
    "other@partner.org",
    "x@acme.com",  # *.acme.com is subdomains only
    "x@evilacme.com",
    "x@allowed.com.evil.io",
    "a@b@allowed.com",
    "a@[10.0.0.1]",
]


@pytest.mark.parametrize("recipient", ALLOWED)
def test_an_allowed_recipient_in_any_spelling_passes(recipient: str) -> None:
    assert rules.recipient_refusal(ALLOW, [recipient]) is None


@pytest.mark.parametrize("recipient", REFUSED)
def test_a_recipient_outside_the_allowlist_is_refused(recipient: str) -> None:
    refusal = rules.recipient_refusal(ALLOW, ["ok@allowed.com", recipient])
    assert refusal is not None and refusal.code is ErrorCode.RECIPIENT_NOT_ALLOWED


def test_without_an_allowlist_any_address_passes_but_garbage_does_not() -> None:
    assert rules.recipient_refusal(Restrictions(), ["anyone@anywhere.io"]) is None
    assert rules.recipient_refusal(Restrictions(), ["not an address"]) is not None


@pytest.mark.parametrize(
    ("sender", "allowed"),
    [("agent@acme.com", True), ("Agent@ACME.com.", True), ("agent@eu.acme.com", False),
     ("agent@acme.com.evil.io", False), ("agent@\u0430cme.com", False)],
)  # fmt: skip
def test_the_sender_must_be_at_the_client_orgs_domain(sender: str, allowed: bool) -> None:
    refusal = rules.sender_refusal("acme.com", sender)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.code is ErrorCode.DOMAIN_NOT_ALLOWED


@pytest.mark.parametrize(
    ("used", "refused"),
    [(WindowCounts(9, 9), False), (WindowCounts(10, 10), True), (WindowCounts(3, 50), True)],
)
def test_one_more_send_must_fit_the_hour_and_the_day(used: WindowCounts, refused: bool) -> None:
    limits = Restrictions(max_per_hour=10, max_per_day=50)
    refusal = rules.quota_refusal(limits, used)
    assert (refusal is not None) is refused
    if refusal is not None:
        assert refusal.code is ErrorCode.SEND_LIMIT_REACHED


def test_each_restriction_reads_as_a_banner_line() -> None:
    body = ClientOrgIn.model_validate(
        {
            "name": "Acme",
            "email_domain": "ACME.com.",
            "restrictions": {"allowed_recipients": ["@Acme.com"], "max_per_day": 50},
        }
    )
    assert rules.warnings(body.email_domain, body.restrictions) == [
        "Sends only from addresses at acme.com",
        "Only recipients at acme.com",
        "Sends limited to 50 per day",
    ]


def test_an_address_outside_the_domain_is_warned_about() -> None:
    assert rules.domain_warning("acme.com", "agent@acme.com") == []
    assert rules.domain_warning("acme.com", "agent@gmail.com") == [
        "agent@gmail.com is outside acme.com: sends are refused until the address is fixed"
    ]


def test_an_allowlist_entry_that_is_not_an_address_or_domain_is_refused_at_save() -> None:
    with pytest.raises(ValueError, match="allowed_recipients"):
        Restrictions(allowed_recipients=["not a domain!"])


@pytest.mark.parametrize(
    ("rules_given", "line"),
    [
        (["acme.com"], "Only recipients at acme.com"),
        (["acme.com", "*.acme.eu", "cfo@bank.com"],
         "Only recipients at acme.com or *.acme.eu, or the address cfo@bank.com"),
        (["a@x.com", "b@y.com"], "Only sends to a@x.com or b@y.com"),
    ],
)  # fmt: skip
def test_an_allowlist_reads_as_one_sentence(rules_given: list[str], line: str) -> None:
    assert rules.warnings(None, Restrictions(allowed_recipients=rules_given)) == [line]


# A request that does not decode ---------------------------------------------------------------

JSON = {"content-type": "application/json"}
NEVER_REACHED: Any = None  # the container: a request that does not decode never gets to a handler


ORG_PUT, CLIENT_ORG_PUT = PutOrgConfig.subject_for("acme"), PutClientOrg.subject_for("emea")
SECRET = "s3cr" * 300


@pytest.mark.parametrize(
    ("subject", "payload", "named"),
    [
        (ORG_PUT, {"org_id": "acme", "body": {"microsoft": {"client_id": "c"}}},
         "request.body.microsoft.tenant_id: Field required"),
        (ORG_PUT, {"org_id": "acme", "body": {"google": {"client_id": "c", "client_secret": SECRET}}},
         "request.body.google.client_secret: Value should have at most 1024 items"),
        (CLIENT_ORG_PUT, {"org_id": "acme", "client_org_id": "emea", "body": {"name": "A", "x": 1}},
         "request.body.x: Extra inputs are not permitted"),
        (ORG_PUT, "{not json", "not JSON"),
    ],
)  # fmt: skip
async def test_an_org_request_that_does_not_decode_is_answered_invalid_input_naming_the_field(
    subject: str, payload: object, named: str
) -> None:
    broker = NatsBroker()
    policy_nats.register(broker, NEVER_REACHED)
    async with TestNatsBroker(broker) as connected:
        answer = await connected.request(payload, subject, timeout=1, headers=JSON)
    error = PolicyDocumentReply.model_validate_json(answer.body).error
    assert error is not None and error.code is ErrorCode.INVALID_INPUT
    assert named in error.message and SECRET not in error.message
