"""Approval before sending, as rules: which recipients each mode holds (properties over
recipients, domains and contact sets), and the decision on a held send as a state machine
(approve, reject, expire: one decision, idempotent, never contradicted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.config_api.domain.approval import SendState, error_after, step
from mailbridge.config_api.domain.outgoing import Decision, SendStatus
from mailbridge.policy.domain.approval import contact_key, hold_needed, in_domain
from mailbridge.shared.addresses import Recipient, parse_recipients
from mailbridge.shared.errors import ErrorCode, MailbridgeError
from mailbridge.shared.messages import ApprovalMode
from tests.strategies import ascii_domains, dot_atoms, ordinary_mailboxes

recipient_lists = st.lists(ordinary_mailboxes, min_size=1, max_size=5).map(parse_recipients)
modes = st.sampled_from(list(ApprovalMode))


def held_keys(
    mode: ApprovalMode, recipients: list[Recipient], domain: str | None, contacts: set[str]
) -> set[str]:
    hold = hold_needed(mode, recipients, domain=domain, contacts=contacts)
    return {contact_key(address) or "" for address in (hold.recipients if hold else [])}


# Which recipients each mode holds ---------------------------------------------------------------


@given(recipient_lists, st.none() | ascii_domains, st.sets(st.text(max_size=8)))
def test_off_holds_nothing_and_always_holds_everyone(
    recipients: list[Recipient], domain: str | None, contacts: set[str]
) -> None:
    everyone = {r.key for r in recipients}
    assert held_keys(ApprovalMode.OFF, recipients, domain, contacts | everyone) == set()
    assert held_keys(ApprovalMode.OFF, recipients, domain, set()) == set()
    assert held_keys(ApprovalMode.ALWAYS, recipients, domain, everyone) == everyone


@given(recipient_lists, st.data())
def test_first_contact_holds_exactly_the_recipients_never_written_to_or_heard_from(
    recipients: list[Recipient], data: st.DataObject
) -> None:
    known = data.draw(st.sets(st.sampled_from([r.key for r in recipients])))
    strangers = {r.key for r in recipients} - known
    assert held_keys(ApprovalMode.FIRST_CONTACT, recipients, None, known) == strangers
    hold = hold_needed(ApprovalMode.FIRST_CONTACT, recipients, domain=None, contacts=known)
    assert (hold is None) == (not strangers)
    assert hold is None or hold.reason is ApprovalMode.FIRST_CONTACT


SPELLINGS = [str.upper, "Jo <{}>".format, '"Doe, Jo" <{}>'.format, "{}.".format]


@given(dot_atoms, ascii_domains, st.sampled_from(SPELLINGS))
def test_a_contact_is_known_however_its_address_is_spelt(
    local: str, domain: str, spelt: Callable[[str], str]
) -> None:
    contact = contact_key(f"{local}@{domain}")
    assert contact is not None
    written = parse_recipients([spelt(f"{local}@{domain}")])
    assert held_keys(ApprovalMode.FIRST_CONTACT, written, None, {contact}) == set()
    assert held_keys(ApprovalMode.FIRST_CONTACT, written, None, set()) == {contact}


@given(dot_atoms, ascii_domains, ascii_domains, st.sampled_from(["", "eu.", "a.b."]))
def test_outside_domain_holds_a_recipient_unless_at_the_domain_or_below_it(
    local: str, own: str, other: str, sub: str
) -> None:
    inside = parse_recipients([f"{local}@{sub}{own}"])
    assert held_keys(ApprovalMode.OUTSIDE_DOMAIN, inside, own, set()) == set()
    outside = parse_recipients([f"{local}@{other}"])
    expected = set() if in_domain(other, own) else {outside[0].key}
    assert held_keys(ApprovalMode.OUTSIDE_DOMAIN, outside, own, set()) == expected


@pytest.mark.parametrize(
    "domain",
    ["acme.com.evil.io", "notacme.com", "acme.co", "xn--acme-xyz.com", "acme.com-x.io"],
)
def test_a_domain_that_only_looks_like_the_client_orgs_is_outside(domain: str) -> None:
    recipients = parse_recipients([f"bob@{domain}"])
    assert held_keys(ApprovalMode.OUTSIDE_DOMAIN, recipients, "acme.com", set()) == {
        f"bob@{domain}"
    }


@given(recipient_lists)
def test_outside_domain_with_no_domain_to_compare_with_holds_everyone(
    recipients: list[Recipient],
) -> None:
    everyone = {r.key for r in recipients}
    assert held_keys(ApprovalMode.OUTSIDE_DOMAIN, recipients, None, everyone) == everyone


@given(modes, recipient_lists, st.none() | ascii_domains, st.data())
def test_what_is_held_is_among_the_recipients_and_knowing_more_contacts_never_holds_more(
    mode: ApprovalMode, recipients: list[Recipient], domain: str | None, data: st.DataObject
) -> None:
    keys = [r.key for r in recipients]
    fewer = data.draw(st.sets(st.sampled_from(keys)))
    more = fewer | data.draw(st.sets(st.sampled_from(keys)))
    held_with_fewer = held_keys(mode, recipients, domain, fewer)
    assert held_with_fewer <= set(keys)
    assert held_keys(mode, recipients, domain, more) <= held_with_fewer


# The decision on a held send --------------------------------------------------------------------

HELD = SendState(SendStatus.HELD)
decisions = st.sampled_from(list(Decision))
OUTCOMES = [SendStatus.QUEUED, SendStatus.SENT, SendStatus.FAILED, SendStatus.UNKNOWN]


def decided(state: SendState, wanted: Decision) -> tuple[SendState, bool]:
    """The state after asking for ``wanted``, and whether the ask changed it; a refused one
    (``not_held``) changes nothing."""
    try:
        after = step(state, wanted)
    except MailbridgeError as refused:
        if refused.code is not ErrorCode.NOT_HELD:
            raise
        return state, False
    return (after, True) if after is not None else (state, False)


@given(st.lists(decisions, min_size=1, max_size=8))
def test_the_first_decision_on_a_held_send_is_the_only_one_and_the_rest_change_nothing(
    asked: list[Decision],
) -> None:
    state, changes = HELD, 0
    for wanted in asked:
        state, changed = decided(state, wanted)
        changes += changed
    assert changes == 1
    assert state.decision is asked[0]
    queued_again = state.status is SendStatus.QUEUED
    assert queued_again == (asked[0] is Decision.APPROVED)  # only an approval sends it


@given(decisions)
def test_deciding_as_decided_already_is_answered_unchanged(wanted: Decision) -> None:
    once = step(HELD, wanted)
    assert once is not None
    assert step(once, wanted) is None


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_an_approved_send_stays_approved_whatever_its_sending_came_to(outcome: SendStatus) -> None:
    approved = SendState(outcome, Decision.APPROVED)
    assert step(approved, Decision.APPROVED) is None
    assert step(approved, Decision.EXPIRED) is None  # the expiry never touches it
    with pytest.raises(MailbridgeError, match="approved already"):
        step(approved, Decision.REJECTED)


@pytest.mark.parametrize("after", [Decision.REJECTED, Decision.EXPIRED])
def test_a_rejected_or_expired_send_can_never_be_approved(after: Decision) -> None:
    rejected = SendState(SendStatus.REJECTED, after)
    with pytest.raises(MailbridgeError) as refused:
        step(rejected, Decision.APPROVED)
    assert refused.value.code is ErrorCode.NOT_HELD
    assert step(rejected, Decision.REJECTED) is None  # rejecting again agrees


@pytest.mark.parametrize("status", [*OUTCOMES, SendStatus.BLOCKED])
@pytest.mark.parametrize("wanted", [Decision.APPROVED, Decision.REJECTED])
def test_a_send_never_held_cannot_be_decided(status: SendStatus, wanted: Decision) -> None:
    with pytest.raises(MailbridgeError, match="never held"):
        step(SendState(status), wanted)
    assert step(SendState(status), Decision.EXPIRED) is None


def test_only_an_expired_send_shows_an_error_approval_expired() -> None:
    expired = error_after(Decision.EXPIRED)
    assert expired is not None
    assert expired.code is ErrorCode.APPROVAL_EXPIRED
    assert error_after(Decision.REJECTED) is None
    assert error_after(Decision.APPROVED) is None
