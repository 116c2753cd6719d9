"""Inbound screening: only the trusted server's Authentication-Results is believed, and a From
that imitates the agent's own domain is flagged, with the reason."""

from __future__ import annotations

from typing import cast

import pytest
from pydantic import SecretStr

from mailbridge.mail_worker.domain import auth_results
from mailbridge.mail_worker.domain.lookalike import Sender, edits_within, lookalike
from mailbridge.mail_worker.domain.parse import parse
from mailbridge.mail_worker.domain.screening import ScreeningContext, screen
from mailbridge.mail_worker.handlers import read_imap_inbox
from mailbridge.mail_worker.handlers_api import poll_api_mailbox
from mailbridge.mail_worker.ports import (
    ApiMessage,
    FetchedBatch,
    FirstUid,
    PollLimits,
    ProviderMailbox,
    SyncedBatch,
)
from mailbridge.shared.messages import Credentials, MessageReceived, Provider
from mailbridge.shared.messages.screening import AuthVerdict, LookalikeReason, Screening

TRUSTED = "mx.acme.example"
OWN = "agent@paypal.com"
CONTEXT = ScreeningContext.of(TRUSTED, OWN)

# RFC 8601 Appendix B (its examples section), the header values as the RFC prints them.
RFC_B2 = "example.org 1; none"
RFC_B3 = "example.com;\r\n          spf=pass smtp.mailfrom=example.net"
RFC_B4 = (
    "example.com;\r\n          auth=pass (cram-md5) smtp.auth=sender@example.net;\r\n"
    "          spf=pass smtp.mailfrom=example.net"
)
RFC_B5 = (
    "example.com;\r\n          sender-id=fail header.from=example.com;\r\n"
    "          dkim=pass (good signature) header.d=example.com"
)
RFC_B6_TOP = (
    'example.com;\r\n      dkim=pass reason="good signature"\r\n'
    "        header.i=@mail-router.example.net;\r\n"
    '      dkim=fail reason="bad signature"\r\n        header.i=@newyork.example.com'
)
RFC_B6_BELOW = "example.net;\r\n      dkim=pass (good signature) header.i=@newyork.example.com"
RFC_B7 = (
    "foo.example.net (foobar) 1 (baz);\r\n"
    "    dkim (Because I like it) / 1 (One yay) = (wait for it) fail\r\n"
    "      policy (A dot can go here) . (like that) expired\r\n"
    "      (this surprised me) = (as I wasn't expecting it) 1362471462"
)


@pytest.mark.parametrize(
    ("header", "authserv_id", "results"),
    [
        (RFC_B2, "example.org", ()),
        (RFC_B3, "example.com", (("spf", "pass"),)),
        (RFC_B4, "example.com", (("auth", "pass"), ("spf", "pass"))),
        (RFC_B5, "example.com", (("sender-id", "fail"), ("dkim", "pass"))),
        (RFC_B6_TOP, "example.com", (("dkim", "pass"), ("dkim", "fail"))),
        (RFC_B6_BELOW, "example.net", (("dkim", "pass"),)),
        (RFC_B7, "foo.example.net", (("dkim", "fail"),)),
    ],
    ids=["B.2-none", "B.3", "B.4", "B.5", "B.6-top", "B.6-below", "B.7-comments"],
)
def test_the_rfc_examples_read_as_the_rfc_means_them(
    header: str, authserv_id: str, results: tuple[tuple[str, str], ...]
) -> None:
    assert auth_results.read(header) == auth_results.AuthenticationResults(authserv_id, results)


def test_the_multi_tiered_example_trusts_the_topmost_header_of_the_trusted_server() -> None:
    found = screen([RFC_B6_TOP, RFC_B6_BELOW], [], ScreeningContext.of("example.com", OWN))
    assert (found.authserv_id, found.dkim) == ("example.com", AuthVerdict.PASS)  # one good sig
    below = screen([RFC_B6_TOP, RFC_B6_BELOW], [], ScreeningContext.of("example.net", OWN))
    assert (below.authserv_id, below.dkim) == ("example.net", AuthVerdict.PASS)


def test_a_header_from_another_authserv_id_is_ignored() -> None:
    forged = "evil.example; spf=pass; dkim=pass; dmarc=pass"
    assert screen([forged], [], CONTEXT) == Screening()  # not checked: every verdict unknown


def test_nothing_is_trusted_when_no_authserv_id_is_configured() -> None:
    header = f"{TRUSTED}; spf=pass; dkim=pass; dmarc=pass"
    assert screen([header], [], ScreeningContext.of("", OWN)).authserv_id is None


def test_the_topmost_trusted_header_wins_over_a_forged_one_below() -> None:
    mine = f"{TRUSTED}; spf=fail smtp.mailfrom=paypal.com; dkim=none; dmarc=fail"
    forged = f"{TRUSTED}; spf=pass; dkim=pass; dmarc=pass"  # came with the message
    found = screen([mine, forged], [], CONTEXT)
    assert (found.spf, found.dkim, found.dmarc) == (
        AuthVerdict.FAIL,
        AuthVerdict.NONE,
        AuthVerdict.FAIL,
    )
    assert found.authserv_id == TRUSTED


def test_the_trusted_id_matches_in_any_case_and_quoted() -> None:
    found = screen(['"MX.Acme.Example" 1; dmarc=pass header.from=x'], [], CONTEXT)
    assert (found.authserv_id, found.dmarc) == (TRUSTED, AuthVerdict.PASS)


@pytest.mark.parametrize(
    "header",
    [
        f'{TRUSTED}; spf=pass reason="a; dkim=fail"; dkim=pass',  # ";" inside a quoted string
        f"{TRUSTED}; spf=pass (dkim=fail; (nested; comment)) smtp.mailfrom=x; dkim=pass",
        f"{TRUSTED}\r\n\t;\r\n spf\r\n =\r\n pass;dkim=pass",  # folding everywhere
        f"{TRUSTED}; SPF=Pass; DKIM/1=PASS",  # case, a method version
    ],
)
def test_comments_quoted_strings_and_folding_never_split_a_result(header: str) -> None:
    found = screen([header], [], CONTEXT)
    assert (found.spf, found.dkim) == (AuthVerdict.PASS, AuthVerdict.PASS), header


@pytest.mark.parametrize(
    "header",
    [
        "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=paypal.com; dkim=pass",  # no id at all
        f"{TRUSTED} spf=pass; dkim=pass",  # the id runs into the results
        f"({TRUSTED}); spf=pass",  # only a comment where the id belongs
        f'"{TRUSTED}',  # a quote left open
        f"{TRUSTED}; spf=(unclosed comment pass",
    ],
)
def test_a_header_without_a_readable_trusted_id_or_result_proves_nothing(header: str) -> None:
    found = screen([header], [], CONTEXT)
    assert found.spf is AuthVerdict.UNKNOWN and found.dkim is AuthVerdict.UNKNOWN, found


def test_a_word_rfc_8601_does_not_define_is_unknown_and_a_method_not_named_too() -> None:
    found = screen([f"{TRUSTED}; spf=maybe; dkim=hardfail"], [], CONTEXT)
    assert (found.spf, found.dkim, found.dmarc) == (
        AuthVerdict.UNKNOWN,
        AuthVerdict.FAIL,  # RFC 5451's word for fail
        AuthVerdict.UNKNOWN,
    )


@pytest.mark.parametrize(
    ("domain", "reason"),
    [
        ("paypa1.com", LookalikeReason.EDIT_DISTANCE),
        ("paypal.co", LookalikeReason.EDIT_DISTANCE),
        ("papyal.com", LookalikeReason.EDIT_DISTANCE),  # a transposition is one edit
        ("xn--pypal-4ve.com", LookalikeReason.PUNYCODE),  # p\u0430ypal.com
        ("XN--PYPAL-4VE.COM.", LookalikeReason.PUNYCODE),
        ("p\u0430yp\u0430l.com", LookalikeReason.CONFUSABLE_CHARACTERS),  # Cyrillic a
        ("payp\u0430l.c\u043em", LookalikeReason.CONFUSABLE_CHARACTERS),  # Cyrillic a and o
        ("paypal.c\u03bfm", LookalikeReason.CONFUSABLE_CHARACTERS),  # Greek omicron
        ("\u0440aypal.com", LookalikeReason.CONFUSABLE_CHARACTERS),  # Cyrillic er
        ("pay\u03c1al.com", LookalikeReason.CONFUSABLE_CHARACTERS),  # Greek rho
        ("\uff50aypal.com", LookalikeReason.CONFUSABLE_CHARACTERS),  # full-width p
    ],
)
def test_a_from_domain_imitating_the_agents_is_flagged_with_why(
    domain: str, reason: LookalikeReason
) -> None:
    found = lookalike(Sender("", domain), "paypal.com")
    assert found is not None and found.reason is reason, found
    assert (found.sender_domain, found.resembles) == (domain, "paypal.com")


def test_cyrillic_e_and_o_in_the_agents_own_kind_of_domain() -> None:
    found = lookalike(
        Sender("", "m\u0430ilbridg\u0435.\u0435x\u0430mpl\u0435"), "mailbridge.example"
    )
    assert found is not None and found.reason is LookalikeReason.CONFUSABLE_CHARACTERS
    assert "CYRILLIC SMALL LETTER IE" in found.detail  # the letter is named: on screen it is e


@pytest.mark.parametrize(
    "display_name",
    ["PayPal.com Support", "service@paypal.com", "www.paypal.com", "p\u0430yp\u0430l.com billing"],
)
def test_a_display_name_showing_the_agents_domain_from_elsewhere_is_flagged(
    display_name: str,
) -> None:
    found = lookalike(Sender(display_name, "evil.example"), "paypal.com")
    assert found is not None and found.reason is LookalikeReason.DISPLAY_NAME, found


@pytest.mark.parametrize(
    ("display_name", "domain"),
    [
        ("PayPal Service", "paypal.com"),  # the same domain
        ("service@paypal.com", "PAYPAL.COM."),
        ("", "mail.paypal.com"),  # a subdomain of the agent's
        ("Bob", "example.org"),  # unrelated
        ("Ada", "paypalmail.example"),  # far from it
        ("paypal.community news", "paypal.community"),  # a longer name is not the name
        ("paypal.com.evil", "x.example"),
        ("", "xn--zz-.com"),  # punycode that does not decode
        ("", ""),
    ],
)
def test_the_same_domain_and_unrelated_ones_are_not_flagged(display_name: str, domain: str) -> None:
    assert lookalike(Sender(display_name, domain), "paypal.com") is None


def test_a_short_domain_allows_no_edit_and_an_unknown_own_domain_checks_nothing() -> None:
    assert lookalike(Sender("", "acme.io"), "acne.io") is not None  # 7 letters: one edit
    assert lookalike(Sender("", "a.io"), "b.io") is None
    assert lookalike(Sender("paypal.com", "paypa1.com"), "") is None


def test_the_distance_is_optimal_string_alignment_within_its_limit() -> None:
    assert edits_within("paypal.com", "papyal.com", 2) == 1
    assert edits_within("kitten", "sitting", 3) == 3
    assert edits_within("a" * 253, "b" * 253, 2) == 3  # over the limit, found in a band


def test_the_parsed_event_carries_the_screening_of_its_headers_and_from() -> None:
    raw = (
        f"Authentication-Results: {TRUSTED}; spf=pass smtp.mailfrom=x; dkim=fail; dmarc=fail\r\n"
        "Authentication-Results: evil.example; dkim=pass; dmarc=pass\r\n"
        "From: =?utf-8?b?UGF5UGFs?= <billing@xn--pypal-4ve.com>\r\n"
        "Subject: Your account\r\n\r\nhi"
    ).encode()
    event = parse(raw, agent_id="a1", uid=1, uidvalidity=1, screening_context=CONTEXT)
    assert event.screening is not None
    assert (event.screening.spf, event.screening.dkim, event.screening.dmarc) == (
        AuthVerdict.PASS,
        AuthVerdict.FAIL,
        AuthVerdict.FAIL,
    )
    assert event.screening.lookalike_sender is not None
    assert event.screening.lookalike_sender.reason is LookalikeReason.PUNYCODE
    assert event.model_dump(mode="json", by_alias=True)["screening"]["authserv_id"] == TRUSTED


def test_a_second_from_mailbox_is_screened_too() -> None:
    raw = b"From: ceo@paypal.com, Billing <billing@paypa1.com>\r\n\r\nhi"
    event = parse(raw, agent_id="a1", uid=1, uidvalidity=1, screening_context=CONTEXT)
    assert event.screening is not None and event.screening.lookalike_sender is not None
    assert event.screening.lookalike_sender.sender_domain == "paypa1.com"


FORGED_AND_TRUSTED = (
    f"Authentication-Results: {TRUSTED}; spf=fail smtp.mailfrom=paypa1.com; dmarc=fail\r\n"
    "Authentication-Results: paypal.com; spf=pass; dkim=pass; dmarc=pass\r\n"
    "From: PayPal <service@paypa1.com>\r\nSubject: Verify\r\n\r\nhi"
).encode()


class _OneMessageInbox:
    async def fetch_new(
        self, credentials: Credentials, first_uid: FirstUid, limit: int, max_bytes: int
    ) -> FetchedBatch:
        return FetchedBatch(5, first_uid(5, 2), [(1, FORGED_AND_TRUSTED)])


class _OneMessageApi:
    async def first_sync(self, limits: PollLimits) -> SyncedBatch:
        return SyncedBatch([ApiMessage("18c2", FORGED_AND_TRUSTED, 1.0)], "p1")


def _assert_screened(event: MessageReceived) -> None:
    assert event.screening is not None
    assert (event.screening.authserv_id, event.screening.spf, event.screening.dmarc) == (
        TRUSTED,
        AuthVerdict.FAIL,
        AuthVerdict.FAIL,
    )
    assert event.screening.lookalike_sender is not None
    assert event.screening.lookalike_sender.reason is LookalikeReason.EDIT_DISTANCE


async def test_an_imap_read_screens_by_the_worker_setting_and_the_mailbox_domain() -> None:
    account = Credentials(provider=Provider.IMAP, email=OWN, password=SecretStr("pw"))
    limits = PollLimits(10, 10, 1_000_000, trusted_authserv_id=TRUSTED)
    read = await read_imap_inbox("a1", account, _OneMessageInbox(), None, limits)
    _assert_screened(read.events[0])


async def test_a_poll_through_a_provider_api_screens_alike() -> None:
    limits = PollLimits(10, 10, 1_000_000, trusted_authserv_id=TRUSTED)
    mailbox = cast(ProviderMailbox, _OneMessageApi())
    events, _ = await poll_api_mailbox("a1", mailbox, None, limits, CONTEXT)
    _assert_screened(events[0])
