"""The shared address parser, for any text: recipients or AddressError, never another exception,
and what it answers reads back as the same recipients (:func:`fuzz.contracts.check_recipients`)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from fuzz import contracts
from mailbridge.shared.addresses import parse_recipients
from tests import strategies as s


@s.PROPERTIES
@given(st.lists(s.address_values, max_size=4))
@example(["Ada <ada@example.com"])  # the angle bracket left open
@example(["=[\t@@é,<."])  # once an IndexError deep in the standard library's parser
@example(["(@ :).<;"])  # once a TypeError
@example([f"{s.encoded_word('utf-8', 'B', s.INJECTED.encode(), True)} <ada@example.com>"])
def test_any_text_parses_to_recipients_or_address_error(values: list[str]) -> None:
    contracts.check_recipients(values)


@s.PROPERTIES
@given(st.lists(s.address_values, max_size=4))
@example(['"."@0.bücher'])  # once written back unquoted, ".@0.xn--bcher-kva", another address
@example(['"a..b"@example.com'])
def test_a_recipient_reads_back_from_its_header_and_can_be_allowlisted(values: list[str]) -> None:
    contracts.check_recipient_forms(values)


@s.PROPERTIES
@given(s.rule_entries)
@example("*.")
@example("@")
@example("*.bücher.example.")
def test_any_allowlist_entry_is_a_rule_or_address_error(entry: str) -> None:
    contracts.check_rule(entry)


@s.PROPERTIES
@given(st.lists(s.ordinary_mailboxes, min_size=1, max_size=5), st.sampled_from([", ", "; ", ","]))
def test_a_list_of_well_formed_addresses_is_every_one_of_them(
    mailboxes: list[str], separator: str
) -> None:
    one_value = parse_recipients([separator.join(mailboxes)])
    one_each = parse_recipients(mailboxes)
    assert [r.key for r in one_value] == [r.key for r in one_each]
    assert len(one_each) == len({m.rpartition("<")[2].rstrip(">").lower() for m in mailboxes})
