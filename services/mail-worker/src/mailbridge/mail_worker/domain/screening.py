"""The ``screening`` of a ``message.received`` event: what an agent runtime weighs before it acts.

From the message's Authentication-Results headers (raw text, top down) and its From mailboxes,
and a :class:`ScreeningContext`: whose Authentication-Results to believe (the operator's setting)
and the agent's own domain (its mailbox address's). The client org's domain is not compared: the
worker does not know it (credentials carry the client org's id only), and an agent's address is
normally in it.

- ``authserv_id``, ``spf``, ``dkim``, ``dmarc``: from the topmost header written by the trusted
  server (:mod:`.auth_results`); every other one is ignored, since any sender can write one.
  No trusted header: ``authserv_id`` null and every verdict ``unknown`` (not checked, which is
  not failed).
- ``lookalike_sender``: the first From mailbox that imitates the agent's domain
  (:mod:`.lookalike`), at most :data:`MAX_SENDERS` looked at.

Pure and bounded: any text gives a screening, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mailbridge.mail_worker.domain import auth_results
from mailbridge.mail_worker.domain.lookalike import Sender, lookalike
from mailbridge.shared.messages.screening import Screening

MAX_SENDERS = 10  # From may list several mailboxes; thousands would each be compared


@dataclass(frozen=True)
class ScreeningContext:
    trusted_authserv_id: str = ""  # empty: no Authentication-Results is believed
    own_domain: str = ""  # empty: no look-alike check

    @classmethod
    def of(cls, trusted_authserv_id: str, own_address: str) -> ScreeningContext:
        """For the mailbox at ``own_address``, believing ``trusted_authserv_id``."""
        _, at, domain = own_address.rpartition("@")
        return cls(trusted_authserv_id.strip(), domain if at else "")


NOT_SCREENED = ScreeningContext()


def screen(
    authentication_results: Sequence[str], senders: Sequence[Sender], context: ScreeningContext
) -> Screening:
    found = auth_results.trusted(authentication_results, context.trusted_authserv_id)
    imitation = next(
        (hit for sender in senders[:MAX_SENDERS] if (hit := lookalike(sender, context.own_domain))),
        None,
    )
    if found is None:
        return Screening(lookalike_sender=imitation)
    return Screening(
        authserv_id=context.trusted_authserv_id,  # the operator's spelling; matched case-blind
        spf=found.verdict("spf"),
        dkim=found.verdict("dkim"),
        dmarc=found.verdict("dmarc"),
        lookalike_sender=imitation,
    )
